"""What the youth pages share: error pages, the form's values, the page context of a young person's form."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import FormMultiDict
from litestar.response import Template

from app.accounts.controllers import PRIVATE
from app.state import WebState

MAX_BODY = 16_384
INVALID_LINK = ("Ce lien n'est pas valide : il a peut-être été mal copié depuis l'e-mail. Ouvrez-le à nouveau depuis "
                "le message reçu, en entier.")


def error_page(status: int, message: str, action: tuple[str, str] | None = None) -> Template:
    context = {"status": status, "message": message, "action": action, "errors": {}}
    return Template("error.html", context=context, status_code=status, headers=PRIVATE)


def form_values(form: FormMultiDict) -> dict[str, Any]:
    values: dict[str, Any] = {key: form.get(key) for key in form}
    values.pop("_csrf_token", None)
    return values


def person_context(web: WebState, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    communes = web.postcodes.communes(str(values.get("postal_code") or "").strip())
    return {"values": values, "errors": errors, "communes": communes if len(communes) > 1 else ()}
