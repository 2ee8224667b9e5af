""""Télécharger mes données" (`/mon-espace/donnees`): ask for the file, follow its preparation, download it once."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import privileged, require_account, signed_in
from app.deps import Web
from app.privacy import download
from queues import enqueue

MAX_BODY = 4_096
NOTICES = {
    "nouvelle": "Votre demande est enregistrée : le fichier est en préparation.",
    "en-cours": "Vous avez déjà une demande en cours : la voici. Une seule demande à la fois est possible.",
}


class DataDownloadPages(Controller):
    path = "/mon-espace/donnees"
    include_in_schema = False

    @get("/", guards=[signed_in])
    async def form(self, request: Request[Any, Any, Any], web: Web) -> Template:
        account = require_account(request)
        token = await download.current(web.redis, account.user_id)
        return _page("ask", current=token)

    @post("/", guards=[privileged], request_max_body_size=MAX_BODY)
    async def ask(self, request: Request[Any, Any, Any], web: Web) -> Redirect | Template:
        account = require_account(request)
        try:
            token, new = await download.open_request(web.redis, account.user_id)
        except download.TooManyRequests:
            return _page("ask", notice=f"Vous avez déjà demandé {download.MAX_PER_DAY} fichiers aujourd'hui : "
                                       "réessayez demain.", status_code=429)
        if new:
            await asyncio.to_thread(enqueue.build_data_download, web.rq_connection, token)
        return Redirect(f"{download.page_url(token)}?demande={'nouvelle' if new else 'en-cours'}", status_code=303)

    @get("/{token:str}", guards=[privileged])
    async def status(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web,
                     demande: FromQuery[str | None] = None) -> Template:
        found = await _own(request, web, token)
        state = {download.DownloadStatus.QUEUED: "waiting", download.DownloadStatus.READY: "ready",
                 download.DownloadStatus.TAKEN: "taken"}[found.status]
        return _page(state, token=token, notice=NOTICES.get(demande or ""),
                     status_code=410 if state == "taken" else 200)

    @get("/{token:str}/etat", guards=[privileged])
    async def progress(self, request: Request[Any, Any, Any], token: FromPath[str],
                       web: Web) -> Response[download.DownloadProgress]:
        """The waiting page's poll: guarded like the page."""
        return Response(download.progress(token, await _own(request, web, token)), headers=PRIVATE)

    @get(f"/{{token:str}}/{download.FILENAME}", guards=[privileged])
    async def file(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web) -> Response[bytes] | Template:
        account = require_account(request)
        try:
            content = await download.take(web.redis, token, account.user_id)
        except download.DownloadMissing:
            raise NotFoundException from None
        except download.AlreadyTaken:
            return _page("taken", token=token, status_code=410)
        except download.NotReady:
            return _page("waiting", token=token, status_code=409)
        disposition = f'attachment; filename="{download.FILENAME}"'
        return Response(content, media_type="application/json",
                        headers={**PRIVATE, "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"})


async def _own(request: Request[Any, Any, Any], web: Any, token: str) -> download.DownloadRequest:
    """This person's request; anybody else's, or none, is a 404 (a token reveals nothing)."""
    try:
        return await download.find(web.redis, token, require_account(request).user_id)
    except download.DownloadMissing:
        raise NotFoundException from None


def _page(state: str, *, token: str | None = None, current: str | None = None, notice: str | None = None,
          status_code: int = 200) -> Template:
    context = {"state": state, "token": token, "current": current, "notice": notice,
               "file_url": download.file_url(token) if token else None,
               "page_url": download.page_url(token) if token else None,
               "current_url": download.page_url(current) if current else None,
               "hours": download.TTL_SECONDS // 3600}
    return Template("mes_donnees.html", context=context, status_code=status_code, headers=PRIVATE)
