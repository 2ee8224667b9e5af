"""The partners' error envelope, API Engagement's: `{"ok": false, "code": …, "message": …}` (message in French)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response

# The path prefixes whose errors take this envelope: the key-authenticated API and the tracked links.
PARTNER_PATHS = ("/v0/", "/v2/")


class PartnerApiError(Exception):
    """Raised by the partner routes; turned into the envelope by `partner_api_error`."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}


def envelope(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"ok": False, "code": code, "message": message}, status_code=status_code, headers=headers,
                    media_type=MediaType.JSON)


def partner_api_error(_: Request[Any, Any, Any], error: PartnerApiError) -> Response[Any]:
    return envelope(error.status_code, error.code, error.message, error.headers)


def is_partner_path(path: str) -> bool:
    return path.startswith(PARTNER_PATHS)


# Litestar's own errors and the platform's outages, on a partner path: the same envelope, in French.
FAILURES: dict[int, tuple[str, str]] = {
    400: ("INVALID_QUERY", "Paramètres de requête invalides : vérifiez le nom, le type et la valeur des paramètres de "
                           "l'adresse."),
    401: ("UNAUTHORIZED", "Clé d'API manquante ou invalide : envoyez la clé de votre plateforme dans l'en-tête "
                          "x-api-key."),
    403: ("FORBIDDEN", "Cette action n'est pas autorisée avec votre clé d'API."),
    404: ("NOT_FOUND", "Cette adresse n'existe pas dans l'API : vérifiez le chemin demandé."),
    405: ("METHOD_NOT_ALLOWED", "Cette méthode HTTP n'est pas acceptée à cette adresse."),
    409: ("CONFLICT", "Cette demande n'a pas pu être enregistrée telle quelle : vérifiez les données envoyées."),
    413: ("PAYLOAD_TOO_LARGE", "Le corps de la requête est trop volumineux."),
    429: ("TOO_MANY_REQUESTS", "Trop de requêtes : réessayez après le délai indiqué par l'en-tête Retry-After."),
    500: ("SERVER_ERROR", "Une erreur inattendue s'est produite de notre côté : réessayez plus tard."),
    503: ("SERVICE_UNAVAILABLE", "Le service est momentanément indisponible : réessayez après le délai indiqué par "
                                 "l'en-tête Retry-After."),
}
INVALID_PARAMS = "Paramètre de chemin invalide : vérifiez l'identifiant indiqué dans l'adresse."
INVALID_BODY = "Corps de requête invalide : envoyez un JSON conforme au format attendu."
MAX_NAMED = 5


def failure(request: Request[Any, Any, Any], status_code: int, headers: dict[str, str] | None = None,
            extra: Any = None) -> Response[Any]:
    """`extra`: a ValidationException's details, whose `source` says which part of the request was wrong."""
    code, message = FAILURES.get(status_code, ("INVALID_REQUEST", "La requête n'a pas pu aboutir."))
    if status_code == 400:
        details = [dict(item) for item in extra if isinstance(item, dict)] if isinstance(extra, list) else []
        for item in details:  # Litestar's ParamType is a (str, Enum): compare its value, not its str()
            item["source"] = str(getattr(item.get("source"), "value", item.get("source") or ""))
        sources = {item["source"] for item in details}
        if "body" in sources or (not sources and request.method in ("POST", "PUT", "PATCH")):
            code, message = "INVALID_BODY", INVALID_BODY
        elif "path" in sources:
            code, message = "INVALID_PARAMS", INVALID_PARAMS
        # Names of the handler's declared parameters only, never the values sent.
        names = sorted({str(item["key"]) for item in details if item.get("source") in ("query", "path")
                        and isinstance(item.get("key"), str) and len(item["key"]) <= 40})[:MAX_NAMED]
        if names:
            message = f"{message} Paramètre(s) en cause : {', '.join(names)}."
    elif status_code == 422:
        code, message = "INVALID_BODY", INVALID_BODY
    return envelope(status_code, code, message, headers)
