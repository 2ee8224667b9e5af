"""The header on every page: the sections, who is signed in and the spaces their roles open, read from the session."""

from __future__ import annotations

import re

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts.navigation import SECTIONS, Link, current_of
from tests.test_organisations import sign_in


def header(html: str) -> str:
    match = re.search(r'<header class="site-header">.*?</header>', html, re.S)
    assert match, "no page header"
    return match[0]


def current(html: str) -> list[str]:
    return re.findall(r'<a class="site-nav__link[^"]*" href="([^"]+)" aria-current="page"', header(html))


def test_a_page_belongs_to_the_section_with_the_longest_area() -> None:
    links = (*SECTIONS, Link("/mon-espace", "Mon espace", "/mon-espace"),
             Link("/mon-espace/structures", "Mes structures", "/mon-espace/structures"))
    assert current_of("/missions/42-distribution", links) == "/missions"
    assert current_of("/inscription/structure", links) == "/inscription/structure"
    assert current_of("/inscription/merci", links) == "/inscription"
    assert current_of("/mon-espace/structures", links) == "/mon-espace/structures"
    assert current_of("/mon-espace/profil", links) == "/mon-espace"
    assert current_of("/missionsx", links) is None
    assert current_of("/", links) is None
    assert current_of("/snu/inscription/confirmer", links) == current_of("/snu", links) == "/snu/inscription"


async def test_signed_out_header_offers_to_sign_in_and_marks_the_section(client: AsyncTestClient) -> None:
    page = (await client.get("/missions")).text
    top = header(page)
    assert 'href="/connexion"' in top and "Se connecter" in top
    assert "Se déconnecter" not in top and "Mon espace" not in top
    assert current(page) == ["/missions"]
    assert '<a class="skip-link" href="#contenu">Aller au contenu</a>' in page and 'id="contenu"' in page


async def test_cached_home_page_header_knows_nobody(client: AsyncTestClient) -> None:
    top = header((await client.get("/")).text)  # served from the shared page cache, without a session
    assert 'href="/mon-espace"' in top
    assert "Se connecter" not in top and "Se déconnecter" not in top


async def test_signed_in_header_lists_the_spaces_of_the_roles(client: AsyncTestClient, redis: Redis,
                                                             db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, "coordinatrice@example.org", admin=True, departments=("69",))
    page = (await client.get("/mon-espace")).text
    top = header(page)
    for path, label in (("/mon-espace", "Mon espace"), ("/coordination", "Coordination"),
                        ("/moderation/organisations", "Modération"), ("/administration/roles", "Administration")):
        assert f'href="{path}"' in top and label in top, label
    assert "Mes structures" not in top  # manages no organisation
    assert current(page) == ["/mon-espace"]
    # Signing out is a form with its CSRF token, so it works without JavaScript.
    form = re.search(r'<form class="site-nav__form" method="post" action="/deconnexion">(.*?)</form>', top, re.S)
    assert form and 'name="_csrf_token"' in form[1] and "Se déconnecter" in form[1]
    assert "Se connecter" not in top


async def test_a_volunteer_sees_no_staff_space(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, "benevole@example.org")
    top = header((await client.get("/missions")).text)
    assert "Se déconnecter" in top and 'href="/mon-espace"' in top
    for label in ("Coordination", "Modération", "Administration", "Mes structures"):
        assert label not in top, label
