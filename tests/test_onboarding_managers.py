"""Managers at home: co-managers invited and accepted, nobody leaves an organisation without a manager (leaving or
deleting one's account), moderation decisions e-mailed with their reason, "Mes structures" and the links of
"Mon espace"."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from ops.services import MailSink
from queues.connection import job_queue, sync_redis
from tests.conftest import REDIS_URL, run_worker
from tests.test_onboarding import EXPIRED, INVITED_SUBJECT, accept, invitation_token, mails, make_client
from tests.test_organisations import decide, post_form, register, sign_in
from tests.test_signin import csrf_token

__all__ = ["make_client"]  # the fixture, shared with test_onboarding.py

DELETE = "/mon-espace/supprimer"


def team_path(organisation_id: int) -> str:
    return f"/organisations/{organisation_id}/gestionnaires"


async def invite(client: AsyncTestClient, organisation_id: int, email: str) -> Any:
    return await post_form(client, f"{team_path(organisation_id)}/inviter", {"email": email})


async def leave(client: AsyncTestClient, organisation_id: int) -> Any:
    return await post_form(client, f"{team_path(organisation_id)}/quitter", {"confirm": "1"}, "/mon-espace")


async def co_managed(client: AsyncTestClient, other: AsyncTestClient, mail_sink: MailSink, redis: Redis,
                     db: asyncpg.Connection) -> int:
    """An organisation registered by first@ and co-managed by second@, through the real invitation e-mail."""
    await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    assert (await invite(client, organisation_id, "Second@Example.org")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = mails(mail_sink, INVITED_SUBJECT)
    assert (await accept(other, invitation_token(mail))).status_code == 303
    return organisation_id


async def test_a_manager_invites_a_co_manager_who_accepts_from_the_e_mail(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    other = await make_client()
    first_id = await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    page = await client.get(team_path(organisation_id))
    assert page.status_code == 200 and "first@example.org (vous)" in page.text
    assert "Aucune invitation en attente." in page.text and "Vous êtes la seule personne" in page.text

    invalid = await invite(client, organisation_id, "pas-une-adresse")
    assert invalid.status_code == 422 and "adresse e-mail" in invalid.text
    for hostile in ("a\x00b@example.org", "a" * 5_000 + "@example.org"):
        refused = await invite(client, organisation_id, hostile)
        assert refused.status_code == 422 and "Adresse e-mail" in refused.text
    huge = await post_form(client, f"{team_path(organisation_id)}/invitations/{2**64}/annuler", {})
    assert huge.status_code == 400 and "mal formée" in huge.text
    myself = await invite(client, organisation_id, "First@example.org")
    assert myself.status_code == 422 and "Cette personne gère déjà la structure." in myself.text
    sent = await invite(client, organisation_id, "second@example.org")
    assert sent.status_code == 303 and sent.headers["location"] == f"{team_path(organisation_id)}?info=invitation"
    invitation = await db.fetchrow("SELECT * FROM manager_invitations")
    assert invitation["invited_by"] == first_id and invitation["email_normalized"] == "second@example.org"
    [job] = job_queue(sync_redis(REDIS_URL)).jobs
    assert job.kwargs == {"invitation_id": invitation["id"]}
    listed = await client.get(sent.headers["location"])
    assert "L'invitation est envoyée" in listed.text.replace("&#39;", "'") and "second@example.org" in listed.text

    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = mails(mail_sink, INVITED_SUBJECT)
    assert mail["To"] == "second@example.org" and "« Les Restos du Cœur du Rhône »" in mail.get_content()
    accepted = await accept(other, invitation_token(mail))
    assert accepted.status_code == 303 and accepted.headers["location"] == "/mon-espace/structures"
    assert "Les Restos du Cœur du Rhône" in (await other.get("/mon-espace/structures")).text
    team = await other.get(team_path(organisation_id))
    assert team.status_code == 200 and "first@example.org" in team.text and "second@example.org (vous)" in team.text
    assert "Aucune invitation en attente." in team.text
    assert await db.fetchval("SELECT count(*) FROM organisation_managers WHERE organisation_id = $1",
                             organisation_id) == 2


async def test_a_cancelled_invitation_no_longer_opens_anything(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    assert (await invite(client, organisation_id, "third@example.org")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    token = invitation_token(mails(mail_sink, INVITED_SUBJECT)[-1])
    invitation_id = await db.fetchval("SELECT id FROM manager_invitations")
    cancelled = await post_form(client, f"{team_path(organisation_id)}/invitations/{invitation_id}/annuler", {},
                                team_path(organisation_id))
    assert cancelled.status_code == 303
    assert "Aucune invitation en attente." in (await client.get(team_path(organisation_id))).text
    stranger = await make_client()
    refused = await stranger.get("/invitation", params={"jeton": token})
    assert refused.status_code == 410 and EXPIRED in refused.text
    assert await db.fetchval("SELECT count(*) FROM organisation_managers") == 1


async def test_only_managers_see_and_change_the_team(
    client: AsyncTestClient, make_client: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    other = await make_client()
    assert (await other.get(team_path(organisation_id), follow_redirects=False)).status_code == 303  # anonymous
    await sign_in(other, redis, db, "intruder@example.org")
    assert (await other.get(team_path(organisation_id))).status_code == 403
    assert (await invite(other, organisation_id, "friend@example.org")).status_code == 403
    assert (await leave(other, organisation_id)).status_code == 403
    assert await db.fetchval("SELECT count(*) FROM manager_invitations") == 0


async def test_the_last_manager_cannot_leave_and_two_leaving_at_once_leave_one(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    other = await make_client()
    organisation_id = await co_managed(client, other, mail_sink, redis, db)
    forms = [csrf_token((await browser.get(team_path(organisation_id))).text) for browser in (client, other)]
    both = await asyncio.gather(*[
        browser.post(f"{team_path(organisation_id)}/quitter", data={"_csrf_token": csrf, "confirm": "1"},
                     follow_redirects=False)
        for browser, csrf in zip((client, other), forms, strict=True)
    ])
    assert sorted(response.status_code for response in both) == [303, 409]
    refused = next(response for response in both if response.status_code == 409)
    assert "Vous êtes la seule personne à gérer cette structure" in refused.text
    assert f'href="{team_path(organisation_id)}"' in refused.text
    assert await db.fetchval("SELECT count(*) FROM organisation_managers WHERE organisation_id = $1",
                             organisation_id) == 1
    gone = next(browser for browser, response in zip((client, other), both, strict=True)
                if response.status_code == 303)
    space = await gone.get("/mon-espace/structures?info=quittee")
    assert "Vous ne gérez plus cette structure." in space.text and "Vous ne gérez aucune structure" in space.text
    assert (await gone.get(team_path(organisation_id))).status_code == 403


async def test_a_sole_manager_hands_over_before_deleting_the_account(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    page = await client.get(DELETE)
    assert page.status_code == 200 and "Vous êtes la seule personne à gérer cette structure" in page.text
    assert "« Les Restos du Cœur du Rhône »" in page.text and f'href="{team_path(organisation_id)}"' in page.text
    assert 'action="/mon-espace/supprimer"' not in page.text
    refused = await post_form(client, DELETE, {}, "/mon-espace")
    assert refused.status_code == 409 and "Votre compte n'a pas été supprimé" in refused.text
    assert "« Les Restos du Cœur du Rhône »" in refused.text and f'href="{team_path(organisation_id)}"' in refused.text
    assert await db.fetchval("SELECT count(*) FROM users") == 1
    assert (await client.get("/mon-espace")).status_code == 200  # still signed in

    assert (await invite(client, organisation_id, "second@example.org")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    other = await make_client()
    assert (await accept(other, invitation_token(mails(mail_sink, INVITED_SUBJECT)[-1]))).status_code == 303
    page = await client.get(DELETE)
    assert "avec d'autres gestionnaires" in page.text and 'action="/mon-espace/supprimer"' in page.text
    deleted = await post_form(client, DELETE, {}, DELETE)
    assert deleted.status_code == 200 and "Votre compte est supprimé" in deleted.text
    assert await db.fetchval("SELECT email FROM users") == "second@example.org"
    assert await db.fetchval("SELECT count(*) FROM organisation_managers WHERE organisation_id = $1",
                             organisation_id) == 1
    assert await db.fetchval("SELECT count(*) FROM manager_invitations WHERE email_normalized = 'first@example.org'"
                             ) == 0
    # The one left is the sole manager now, and held back in turn.
    assert (await post_form(other, DELETE, {}, "/mon-espace")).status_code == 409


async def test_managers_get_each_moderation_decision_by_e_mail_with_its_reason(
    client: AsyncTestClient, make_client: Any, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    other = await make_client()
    organisation_id = await co_managed(client, other, mail_sink, redis, db)
    moderator = await make_client()
    await sign_in(moderator, redis, db, "referent@example.org", referent_of=("69",))
    assert (await post_form(client, f"/organisations/{organisation_id}/soumettre", {})).status_code == 303
    assert (await decide(moderator, organisation_id, "refuser", "Le numéro RNA ne correspond pas.")).status_code == 303
    [job] = job_queue(sync_redis(REDIS_URL)).jobs
    assert job.func_name == "queues.organisation_mail.send_organisation_status_mails"
    assert job.kwargs["organisation_id"] == organisation_id and job.kwargs["action"] == "refuse"
    assert "example.org" not in repr(job.kwargs) and "RNA" not in repr(job.kwargs)
    run_worker({"SMTP_URL": mail_sink.url})
    refused = mails(mail_sink, "Votre structure n'a pas été validée sur Renfort")
    assert sorted(mail["To"] for mail in refused) == ["first@example.org", "second@example.org"]
    assert "Le numéro RNA ne correspond pas." in refused[0].get_content()
    assert "« Les Restos du Cœur du Rhône »" in refused[0].get_content()
    space = await client.get("/mon-espace/structures")
    assert "Motif du refus : Le numéro RNA ne correspond pas." in space.text

    await post_form(client, f"/organisations/{organisation_id}/modifier", {
        **(await _form_values(db, organisation_id)), "rna": "W691234568"}, f"/organisations/{organisation_id}/modifier")
    assert (await post_form(client, f"/organisations/{organisation_id}/soumettre", {})).status_code == 303
    assert (await decide(moderator, organisation_id, "valider")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(mails(mail_sink, "Votre structure est validée sur Renfort")) == 2
    run_worker({"SMTP_URL": mail_sink.url})  # a second run sends nothing more
    assert len(mails(mail_sink, "Votre structure est validée sur Renfort")) == 2

    # Suspended, then reinstated before the worker ran: only the decision that still holds is told.
    assert (await decide(moderator, organisation_id, "suspendre", "Signalements en cours.")).status_code == 303
    assert (await decide(moderator, organisation_id, "retablir")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    assert mails(mail_sink, "Votre structure est suspendue sur Renfort") == []
    assert len(mails(mail_sink, "Votre structure est rétablie sur Renfort")) == 2
    assert (await decide(moderator, organisation_id, "suspendre", "Signalements en cours.")).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    suspended = mails(mail_sink, "Votre structure est suspendue sur Renfort")
    assert len(suspended) == 2 and "Signalements en cours." in suspended[0].get_content()


async def _form_values(db: asyncpg.Connection, organisation_id: int) -> dict[str, str]:
    row = await db.fetchrow("SELECT name, type, rna, siret, address_line, postal_code, commune_code, description,"
                            " donation_url FROM organisations WHERE id = $1", organisation_id)
    return {key: value or "" for key, value in row.items()}


async def test_mes_structures_shows_missions_places_and_applications_waiting(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    empty = await client.get("/mon-espace/structures")
    assert empty.status_code == 200 and "Vous ne gérez aucune structure" in empty.text
    assert 'href="/organisations/nouvelle"' in empty.text
    organisation_id, _ = await register(client)
    await db.execute("UPDATE organisations SET status = 'validated'")
    mission_id = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) VALUES ($1, 'Distribution de colis', 'Une mission de test assez longue.',"
        " 'solidarite-insertion', '{}', false, current_date, 5, false, 'published') RETURNING id", organisation_id)
    for number, status in enumerate(("pending", "pending", "accepted", "waitlisted", "declined")):
        volunteer_id = await db.fetchval(
            "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
            " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-' || $1, $1, $1,"
            " 'Ana', 'Martin', DATE '1990-04-12', '69003', '69123', '{}', 'weekends', '{}', now(), now())"
            " RETURNING id", f"v{number}@example.org")
        await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                         " VALUES ($1, $2, $3, 1, now())", mission_id, volunteer_id, status)
    page = await client.get("/mon-espace/structures")
    assert "Validée" in page.text and "Distribution de colis" in page.text
    assert f'href="/missions/{mission_id}-distribution-de-colis"' in page.text
    assert 'class="places">3 / 5</td>' in page.text  # pending and accepted hold a place
    assert f'href="/missions/{mission_id}/candidatures">2 en attente de réponse' in page.text
    assert f'href="/organisations/{organisation_id}/missions/nouvelle"' in page.text
    assert f'href="/organisations/{organisation_id}/modifier"' not in page.text  # validated: no more edits
    assert (await client.get("/mon-espace/structures", follow_redirects=False)).status_code == 200
    await post_form(client, "/deconnexion", {})
    assert (await client.get("/mon-espace/structures", follow_redirects=False)).status_code == 303


async def test_mon_espace_links_each_role_to_its_pages(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    # Someone who manages no organisation is offered to register one ("Mes structures" appears with the first).
    links = ("/organisations/nouvelle", "/moderation/organisations", "/moderation/missions", "/modeles-missions",
             "/administration/roles")

    async def shown(email: str, **roles: Any) -> list[str]:
        await sign_in(client, redis, db, email, **roles)
        text = (await client.get("/mon-espace")).text
        return [link for link in links if f'href="{link}"' in text]

    assert await shown("volunteer@example.org") == ["/organisations/nouvelle"]
    assert await shown("referent@example.org", referent_of=("69",)) == [
        "/organisations/nouvelle", "/moderation/organisations", "/moderation/missions"]
    assert await shown("coordinator@example.org", departments=("69",)) == [
        "/organisations/nouvelle", "/modeles-missions"]
    assert await shown("admin@example.org", admin=True) == list(links)
