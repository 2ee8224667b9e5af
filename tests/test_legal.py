"""Legal pages and versioned consent: the four pages from versioned texts with the settings filled in, their
administration, the terms version each sign-up and organisation records, and new major terms asked at sign-in."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import event, text

from app.accounts import tokens
from app.accounts.schemas import LinkRecord
from app.db.base import make_engine, unit_of_work
from app.legal.current import KEYS, copy_of, terms_version
from app.legal.markup import render
from app.legal.service import terms_in_force
from app.main import create_app
from app.settings import Settings, load_settings
from tests.conftest import DATABASE_URL, TEST_ENV, run_worker
from tests.factories import signup
from tests.test_onboarding import register_structure
from tests.test_organisations import register, sign_in
from tests.test_signin import confirm, csrf_token

PAGES = {
    "/mentions-legales": "Mentions légales",
    "/accessibilite": "Déclaration d'accessibilité",
    "/donnees-personnelles": "Données personnelles",
    "/conditions-utilisation": "Conditions d'utilisation et chartes",
}
ADMIN = "admin.textes@example.org"
LEGAL_ENV = {
    "LEGAL_PUBLISHER": "Ministère de l'Engagement (test)",
    "LEGAL_DIRECTOR": "Camille Durand, directrice du numérique",
    "LEGAL_HOST": "Hébergeur Souverain SAS",
    "LEGAL_HOST_ADDRESS": "1 rue des Serveurs, 59000 Lille",
    "LEGAL_CONTACT": "accessibilite@renfort.test",
}


@pytest.fixture(autouse=True)
async def only_version_one(db: asyncpg.Connection) -> AsyncIterator[None]:
    """Legal texts survive the per-test truncation: each test starts, and leaves, with the release's version 1."""
    await db.execute("DELETE FROM legal_texts WHERE version > 1")
    yield
    await db.execute("DELETE FROM legal_texts WHERE version > 1")


@pytest.fixture
async def legal_client() -> AsyncIterator[AsyncTestClient]:
    """An app whose legal settings are not the defaults."""
    settings = load_settings({**TEST_ENV, **LEGAL_ENV})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def signed_in_as(client: AsyncTestClient, redis: Redis, email: str, *, after: str = "") -> Any:
    """Confirms a sign-in link for `email` (a user row must exist or a volunteer), returns the 303."""
    token_id = tokens.new_id()
    record = LinkRecord(email=email, email_normalized=email, after=after)
    await redis.set(tokens.link_key(token_id), msgspec.json.encode(record))
    return await confirm(client, tokens.mint(TEST_ENV["SECRET_KEY"], token_id, int(time.time()) + 900))


async def publish(client: AsyncTestClient, kind: str, **fields: str) -> Any:
    page = await client.get(f"/administration/textes/{kind}/nouvelle")
    assert page.status_code == 200, page.text
    return await client.post(f"/administration/textes/{kind}/nouvelle",
                             data={**fields, "_csrf_token": csrf_token(page.text)}, follow_redirects=False)


async def test_the_four_pages_show_version_one_with_the_settings_filled_in(legal_client: AsyncTestClient) -> None:
    for path, title in PAGES.items():
        page = await legal_client.get(path)
        assert page.status_code == 200, path
        assert f"<h1>{title}</h1>".replace("'", "&#39;") in page.text, path
        assert "Version 1, publiée le" in page.text
        assert "{contact}" not in page.text and "{editeur}" not in page.text
    mentions = (await legal_client.get("/mentions-legales")).text
    for value in ("Camille Durand, directrice du numérique", "Hébergeur Souverain SAS",
                  "1 rue des Serveurs, 59000 Lille", 'href="mailto:accessibilite@renfort.test"'):
        assert value in mentions
    assert "Ministère de l&#39;Engagement (test)" in mentions
    accessibility = (await legal_client.get("/accessibilite")).text
    assert "partiellement conforme" in accessibility and "Aucun audit RGAA" in accessibility
    assert "axe-core" in accessibility and "390 pixels" in accessibility and "Défenseur des droits" in accessibility
    privacy = (await legal_client.get("/donnees-personnelles")).text
    for expected in ("30 jours", "3 ans", 'href="/mon-espace/donnees"', 'href="/mon-espace/supprimer"', "CNIL"):
        assert expected in privacy
    terms = (await legal_client.get("/conditions-utilisation")).text
    assert "Charte des bénévoles" in terms and "Charte des structures" in terms
    assert "ne remplace jamais un emploi salarié" in terms and "mineur·es" in terms


async def test_every_page_links_to_the_legal_pages_in_its_footer(client: AsyncTestClient) -> None:
    page = await client.get("/inscription")
    for path in PAGES:
        assert f'href="{path}"' in page.text
    assert page.text.count('href="/mentions-legales"') == 1


async def test_an_admin_publishes_version_two_and_version_one_stays_readable(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    listing = await client.get("/administration/textes")
    assert listing.status_code == 200 and "Conditions d&#39;utilisation et chartes" in listing.text
    response = await publish(client, "mentions", title="Mentions légales",
                             body="## Éditeur\n\nNouvel éditeur <script>alert(1)</script> : {editeur}.\n\n"
                                  "- [contact](mailto:{contact})\n- [piège](javascript:alert(1))")
    assert response.status_code == 303 and response.headers["location"] == "/administration/textes?publie=mentions-2"
    done = await client.get(response.headers["location"])
    assert "La version 2 du texte « Mentions légales » est publiée" in done.text
    current = await client.get("/mentions-legales")
    assert "Version 2, publiée le" in current.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in current.text and "<script>alert" not in current.text
    assert 'href="javascript' not in current.text and 'href="mailto:' in current.text
    assert 'href="/mentions-legales/versions/1"' in current.text
    old = await client.get("/mentions-legales/versions/1")
    assert old.status_code == 200 and "Vous lisez la version 1" in old.text and "Logiciel libre" in old.text
    assert (await client.get("/mentions-legales/versions/3")).status_code == 404
    row = await db.fetchrow("SELECT l.major, u.email FROM legal_texts l JOIN users u ON u.id = l.published_by "
                            "WHERE kind = 'mentions' AND version = 2")
    assert row["email"] == ADMIN and row["major"] is False
    assert await redis.hget(KEYS.current, "mentions") == b"2"


async def test_someone_who_is_not_admin_gets_a_403(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    anonymous = await client.get("/administration/textes", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/connexion")
    await sign_in(client, redis, db, "benevole.simple@example.org")
    assert (await client.get("/administration/textes")).status_code == 403
    page = await client.get("/mon-espace")
    forbidden = await client.post("/administration/textes/terms/nouvelle", follow_redirects=False,
                                  data={"title": "x", "body": "y", "_csrf_token": csrf_token(page.text)})
    assert forbidden.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM legal_texts WHERE version > 1") == 0


async def test_hostile_input_gets_a_400_with_a_french_message_per_field(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    nul = await publish(client, "terms", title="Conditions\x00", body="Texte\x00")
    assert nul.status_code == 400
    assert "Le champ « Titre » contient un caractère non autorisé." in nul.text
    assert "Le champ « Texte » contient un caractère non autorisé." in nul.text
    long = await publish(client, "terms", title="T" * 5_000, body="")
    assert long.status_code == 400
    assert "Le champ « Titre » ne doit pas dépasser 200 caractères." in long.text
    assert "Saisissez le texte à publier." in long.text
    assert (await publish(client, "privacy", title="Données", body="x" * 5_000)).status_code == 303
    assert (await client.get("/administration/textes/nope/nouvelle")).status_code == 404
    for version in ("99999999999", "0", "-1", "2"):
        assert (await client.get(f"/conditions-utilisation/versions/{version}")).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM legal_texts WHERE kind = 'terms' AND version > 1") == 0


def test_the_markup_escapes_everything_but_its_own_constructs() -> None:
    html = str(render('## Titre <b>\n\n<img src=x onerror="alert(1)">\n[ok](/missions) [non](javascript:x) '
                      '[non](//evil.example)\n- un\n- deux'))
    assert "<img" not in html and "&lt;img" in html and "&lt;b&gt;" in html
    assert '<a href="/missions">ok</a>' in html and "javascript:x" in html and 'href="//' not in html
    assert "<ul><li>un</li><li>deux</li></ul>" in html and html.startswith('<h2 class="heading-m">')


async def test_the_signup_records_the_terms_version_read_from_redis(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    # The sign-up path reads Redis only: a version that exists in Redis alone shows it came from there.
    await redis.hset(KEYS.current, mapping={"terms": 7, "terms_major": 1})
    assert (await client.post("/api/v1/volunteers", json=signup(email="redis.version@example.org"))).status_code == 202
    await redis.hset(KEYS.current, mapping={"terms": 1})
    copy_of(client.app.state.web.redis).forget()  # the web process's copy is up to a second old
    page = await client.get("/inscription")
    assert 'href="/conditions-utilisation"' in page.text and 'href="/donnees-personnelles"' in page.text
    form = {**signup(email="form.version@example.org"), "consent": "on", "_csrf_token": csrf_token(page.text)}
    assert (await client.post("/inscription", data=form, follow_redirects=False)).status_code == 303
    run_worker()
    rows = dict(await db.fetch("SELECT email_normalized, terms_version FROM volunteers"))
    assert rows == {"redis.version@example.org": 7, "form.version@example.org": 1}


async def test_a_signup_queued_while_redis_knew_no_version_gets_the_one_in_force(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    assert await redis.exists(KEYS.current) == 0
    assert await terms_version(redis) is None
    assert (await client.post("/api/v1/volunteers", json=signup(email="no.version@example.org"))).status_code == 202
    run_worker()
    assert await db.fetchval("SELECT terms_version FROM volunteers") == 1


async def test_the_version_in_force_follows_publication_times() -> None:
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            published = (await session.execute(
                text("SELECT published_at FROM legal_texts WHERE kind = 'terms'")
            )).scalar_one()
            found = await terms_in_force(session, [published - timedelta(days=1), published + timedelta(seconds=1),
                                                   datetime.now(UTC)])
    finally:
        await engine.dispose()
    assert found == [1, 1, 1]


async def test_registering_an_organisation_records_the_terms_version(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    page = await client.get("/inscription/structure")
    assert 'href="/conditions-utilisation"' in page.text
    response = await register_structure(client, "createur.structure@example.org")
    assert response.status_code == 200, response.text
    assert await db.fetchval("SELECT terms_version FROM organisations") == 1
    await redis.hset(KEYS.current, mapping={"terms": 4})
    await sign_in(client, redis, db, "gestionnaire.connecte@example.org")
    copy_of(client.app.state.web.redis).forget()
    form = await client.get("/organisations/nouvelle")
    assert 'id="conditions"' in form.text
    organisation_id, _ = await register(client, name="Les Amis du Quartier")
    assert await db.fetchval("SELECT terms_version FROM organisations WHERE id = $1", organisation_id) == 4


async def test_a_new_major_version_is_asked_at_sign_in_then_the_person_lands_where_they_wanted(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    minor = await publish(client, "terms", title="Conditions d'utilisation et chartes", body="Version mineure.")
    assert minor.status_code == 303
    volunteer = "ancienne.version@example.org"
    async with AsyncTestClient(app=create_app(settings)) as person:
        await db.execute("INSERT INTO users (email, email_normalized, terms_version) VALUES ($1, $1, 1)", volunteer)
        first = await signed_in_as(person, redis, volunteer, after="/mon-espace/profil")
        assert first.headers["location"] == "/mon-espace/profil"  # a minor version asks nothing
        major = await publish(client, "terms", title="Conditions d'utilisation et chartes",
                              body="## Nouveau\n\nVersion majeure.", major="1")
        assert major.status_code == 303
        assert await redis.hget(KEYS.current, "terms_major") == b"3"
        copy_of(person.app.state.web.redis).forget()  # what the person's web process sees within a second
        # Already signed in: the next guarded page sends them to accept.
        guarded = await person.get("/mon-espace", follow_redirects=False)
        assert guarded.status_code == 303
        assert guarded.headers["location"] == "/conditions-utilisation/accepter?suite=%2Fmon-espace"
        again = await signed_in_as(person, redis, volunteer, after="/mon-espace/profil")
        assert again.headers["location"] == "/conditions-utilisation/accepter?suite=%2Fmon-espace%2Fprofil"
        page = await person.get(again.headers["location"])
        assert page.status_code == 200 and "Version majeure." in page.text
        assert 'href="/mon-espace/supprimer"' in page.text and 'action="/deconnexion"' in page.text
        assert (await person.get("/mon-espace/supprimer")).status_code == 200  # refusing stays possible
        accepted = await person.post("/conditions-utilisation/accepter", follow_redirects=False,
                                     data={"suite": "/mon-espace/profil", "_csrf_token": csrf_token(page.text)})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/mon-espace/profil"
        assert (await person.get("/mon-espace", follow_redirects=False)).status_code == 200
        row = await db.fetchrow("SELECT terms_version, terms_accepted_at FROM users WHERE email_normalized = $1",
                                volunteer)
        assert row["terms_version"] == 3 and row["terms_accepted_at"] is not None
        later = await signed_in_as(person, redis, volunteer, after="/mon-espace/profil")
        assert later.headers["location"] == "/mon-espace/profil"


async def test_a_hostile_return_path_after_accepting_goes_to_the_persons_space(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "quelqu.un@example.org")
    page = await client.get("/conditions-utilisation/accepter?suite=//evil.example")
    assert page.status_code == 200 and "evil" not in page.text and "déjà accepté" in page.text
    response = await client.post("/conditions-utilisation/accepter", follow_redirects=False,
                                 data={"suite": "//evil.example\x00", "_csrf_token": csrf_token(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"


async def test_legal_pages_and_the_signup_run_no_sql_once_the_versions_are_known(
    client: AsyncTestClient, redis: Redis
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    assert (await client.get("/conditions-utilisation")).status_code == 200  # loads the versions, renders once
    engine = client.app.state.web.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert (await client.get("/mentions-legales")).status_code == 200
        assert any("legal_texts" in statement for statement in statements)  # its first rendering, counted
        statements.clear()
        assert (await client.get("/conditions-utilisation")).status_code == 200
        assert (await client.post("/api/v1/volunteers", json=signup())).status_code == 202
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
