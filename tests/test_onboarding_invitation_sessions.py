"""An invitation to manage an organisation is never a days-long sign-in link to an existing account: anyone may type
an admin's address into `/inscription/structure`, so accepting an invitation signs in only an address that had no
account at all. An address with an account gets the organisation and is asked to sign in as usual, unless the
browser is signed in as it already; the confirmation page reads the same either way."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from ops.services import MailSink
from tests.conftest import run_worker
from tests.test_onboarding import (
    CSRF,
    EXPIRED,
    INVITED_SUBJECT,
    accept,
    invitation_token,
    mails,
    make_client,
    onboard,
    post_token,
    register_structure,
)
from tests.test_onboarding_managers import invite, team_path
from tests.test_organisations import register, sign_in

__all__ = ["make_client"]  # the fixture, shared with test_onboarding.py

ACCEPTED = "Invitation acceptée"
SIGN_IN_AS_USUAL = "Connectez-vous avec cette adresse pour gérer la structure"


async def signed_in_as(client: AsyncTestClient) -> str | None:
    page = await client.get("/mon-espace", follow_redirects=False)
    if page.status_code != 200:
        assert page.status_code == 303 and page.headers["location"].startswith("/connexion")
        return None
    found = re.search(r"[\w.+-]+@example\.org", page.text)
    return found[0] if found else "?"


async def test_an_invitation_typed_with_an_admins_address_never_signs_the_admin_in(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, db: asyncpg.Connection
) -> None:
    admin_id = await db.fetchval("INSERT INTO users (email, email_normalized, is_admin)"
                                 " VALUES ('admin@example.org', 'admin@example.org', true) RETURNING id")
    # Anyone can register a structure with the admin's address, and with an address nobody uses.
    unknown_token = await onboard(client, mail_sink, "nobody@example.org")
    token = await onboard(client, mail_sink, "admin@example.org")

    # Before the click, the page says the same for both addresses.
    pages = [await client.get("/invitation", params={"jeton": each}) for each in (token, unknown_token)]
    assert [page.status_code for page in pages] == [200, 200]
    neutral = [CSRF.sub("", page.text).replace(each, "") for page, each in zip(pages, (token, unknown_token),
                                                                                strict=True)]
    assert neutral[0] == neutral[1]

    # The admin (or whoever opened the mailbox) accepts: the structure is theirs, but no session is opened.
    browser = await make_client()
    accepted = await accept(browser, token)
    assert accepted.status_code == 200 and ACCEPTED in accepted.text and SIGN_IN_AS_USUAL in accepted.text
    assert 'href="/connexion"' in accepted.text and accepted.headers["cache-control"] == "no-store"
    assert "renfort_session" not in accepted.headers.get("set-cookie", "")
    assert await signed_in_as(browser) is None
    assert (await browser.get("/administration/roles", follow_redirects=False)).status_code == 303
    assert await db.fetchval("SELECT count(*) FROM users WHERE email_normalized = 'admin@example.org'") == 1
    assert await db.fetchval("SELECT last_sign_in_at FROM users WHERE id = $1", admin_id) is None
    organisation_id = await db.fetchval("SELECT organisation_id FROM organisation_managers WHERE user_id = $1",
                                        admin_id)
    assert organisation_id is not None
    assert (await post_token(browser, token)).status_code == 410  # and the link is spent

    # The address with no account is signed in at once: it has no other rights to open.
    fresh = await make_client()
    assert (await accept(fresh, unknown_token)).headers["location"] == "/mon-espace/structures"
    assert await signed_in_as(fresh) == "nobody@example.org"


async def test_a_volunteers_address_is_an_account_and_is_not_signed_in_by_an_invitation(
    client: AsyncTestClient, mail_sink: MailSink, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-invited', $1, $1, 'Ana',"
        " 'Martin', DATE '1990-04-12', '69003', '69123', '{}', 'weekends', '{}', now(), now())", "ana@example.org",
    )
    token = await onboard(client, mail_sink, "ana@example.org")
    accepted = await accept(client, token)
    assert accepted.status_code == 200 and ACCEPTED in accepted.text
    assert await signed_in_as(client) is None
    assert await db.fetchval("SELECT u.email FROM organisation_managers m JOIN users u ON u.id = m.user_id"
                             ) == "ana@example.org"


async def test_signed_in_as_the_invited_address_the_organisation_joins_mes_structures(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client, name="Banque alimentaire")
    invited = await make_client()
    await sign_in(invited, redis, db, "second@example.org")
    assert (await invite(client, organisation_id, "second@example.org")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    token = invitation_token(mails(mail_sink, INVITED_SUBJECT)[-1])

    accepted = await accept(invited, token)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/mon-espace/structures"
    assert await signed_in_as(invited) == "second@example.org"
    assert "Banque alimentaire" in (await invited.get("/mon-espace/structures")).text
    assert (await invited.get(team_path(organisation_id))).status_code == 200


async def test_an_account_accepting_in_someone_elses_browser_signs_that_person_out_and_nobody_in(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    await db.execute("INSERT INTO users (email, email_normalized) VALUES ('known@example.org', 'known@example.org')")
    token = await onboard(client, mail_sink, "known@example.org")
    shared = await make_client()
    await sign_in(shared, redis, db, "someone.else@example.org")
    accepted = await accept(shared, token)
    assert accepted.status_code == 200 and ACCEPTED in accepted.text
    assert await signed_in_as(shared) is None
    again = await shared.get("/invitation", params={"jeton": token})
    assert again.status_code == 410 and EXPIRED in again.text


async def test_the_registration_answer_stays_the_same_for_an_admins_address(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await db.execute("INSERT INTO users (email, email_normalized, is_admin)"
                     " VALUES ('admin@example.org', 'admin@example.org', true)")
    admin = await register_structure(client, "admin@example.org")
    unknown = await register_structure(client, "nobody@example.org")
    assert admin.status_code == unknown.status_code == 200
    assert CSRF.sub("", admin.text) == CSRF.sub("", unknown.text)
