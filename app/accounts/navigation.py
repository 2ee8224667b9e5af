"""What the page header shows of the visitor: signed in or not, the spaces their roles open, the current section.

Read from the session only, never from PostgreSQL: a page header costs no query. The roles are those of the last
privileged request (the guards refresh them), so a link may outlive a revoked role by a page; the guard behind it
still says no. Registered as the Jinja global `header_of(request)` (app/main.py), beside `private_when_signed_in`,
the hook that keeps the pages showing this header out of shared caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from app.accounts.sessions import current_account


@dataclass(frozen=True)
class Link:
    path: str
    label: str
    area: str  # the paths under it belong to this link's section


SECTIONS = (
    Link("/missions", "Missions", "/missions"),
    Link("/inscription", "Devenir bénévole", "/inscription"),
    Link("/inscription/structure", "Inscrire ma structure", "/inscription/structure"),
    Link("/snu/inscription", "Jeunes (SNU)", "/snu"),
)
MY_SPACE = Link("/mon-espace", "Mon espace", "/mon-espace")
SIGN_IN = Link("/connexion", "Se connecter", "/connexion")


@dataclass(frozen=True)
class Header:
    # False on the pages that never load a session (the surge's cached pages): the header then offers "Mon espace",
    # which is right whether the visitor is signed in or not (it leads to the sign-in page).
    known: bool
    signed_in: bool = False
    spaces: tuple[Link, ...] = ()
    current: str | None = None  # the path of the link whose section holds this page

    @property
    def sections(self) -> tuple[Link, ...]:
        return SECTIONS


def spaces_of(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[Link, ...] | None:
    """None when nobody is signed in."""
    account = current_account(connection)
    if account is None:
        return None
    roles = account.roles
    spaces = [Link("/mon-espace/structures", "Mes structures", "/mon-espace/structures")] if roles.organisations else []
    if roles.moderator:
        spaces.append(Link("/moderation/organisations", "Modération", "/moderation"))
    if roles.coordinator:
        spaces.append(Link("/coordination", "Coordination", "/coordination"))
    if roles.admin:
        spaces.append(Link("/administration/roles", "Administration", "/administration"))
    return tuple(spaces)


def current_of(path: str, links: tuple[Link, ...]) -> str | None:
    """The link with the longest area holding `path`: `/missions/42` is in Missions, `/inscription/structure` in
    "Inscrire ma structure" rather than "Devenir bénévole"."""
    holding = [link for link in links if path == link.area or path.startswith(link.area.rstrip("/") + "/")]
    return max(holding, key=lambda link: len(link.area)).path if holding else None


def header_of(connection: ASGIConnection[Any, Any, Any, Any] | None) -> Header:
    if connection is None:
        return Header(known=False)
    path = connection.scope.get("path", "")
    if "session" not in connection.scope:
        return Header(known=False, current=current_of(path, (*SECTIONS, MY_SPACE)))
    spaces = spaces_of(connection)
    if spaces is None:
        return Header(known=True, current=current_of(path, (*SECTIONS, SIGN_IN)))
    return Header(known=True, signed_in=True, spaces=spaces, current=current_of(path, (*SECTIONS, MY_SPACE, *spaces)))


async def private_when_signed_in(message: Message, scope: Scope) -> None:
    """A `before_send` hook: a response to a signed-in person shows their header (their spaces, a sign-out form with
    its CSRF token), so unless its handler chose its own caching, no shared cache or back-forward history keeps it.
    The pages cached in Redis for everyone never load a session, so they never match."""
    if message["type"] != "http.response.start" or "session" not in scope:
        return
    if current_account(ASGIConnection(scope)) is None:
        return
    headers = MutableScopeHeaders.from_message(message)
    if "cache-control" in headers:
        return
    headers["Cache-Control"] = "private, no-store"
    vary = headers.get("vary")
    if vary is None:
        headers["Vary"] = "Cookie"
    elif "cookie" not in vary.lower():
        headers["Vary"] = f"{vary}, Cookie"
