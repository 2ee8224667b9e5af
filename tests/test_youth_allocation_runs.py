"""SNU allocation runs (`/snu/referent/affectations`): launched by a department's referent once the choice deadline has
passed, solved by a real worker (places, dates and ages respected, as many placed as possible, rank-maximal), shown
as a preview, adjusted under the engine's rules, confirmed into placements exactly once, then announced by e-mail to
each young person, a minor's guardian and each tutor."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from html import unescape
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.db.after_commit import Clients
from app.db.base import make_engine, unit_of_work
from app.settings import Settings
from app.youth import allocation_runs as runs
from ops.services import MailSink
from queues import enqueue
from queues.connection import sync_redis
from tests.conftest import REDIS_URL, run_worker
from tests.test_organisations import post_form, sign_in
from tests.test_youth_accounts import job_payloads, to
from tests.test_youth_cohorts import MISSIONS_START, TODAY, add_cohort, browsers, no_cohorts
from tests.test_youth_referent import add_young

FIXTURES = (browsers, no_cohorts)
HOME = "/snu/referent/affectations"


async def young(db: asyncpg.Connection, cohort_id: int, first_name: str, last_name: str, *, years: int = 17,
                status: str = "ready", department: str = "69", choices: tuple[int, ...] = (),
                guardian: bool = False) -> int:
    young_id = await add_young(db, cohort_id, first_name, last_name, status=status, years=years,
                               department=department)
    for rank, offer_id in enumerate(choices, start=1):
        await db.execute("INSERT INTO youth_choices (young_person_id, rank, offer_id) VALUES ($1, $2, $3)",
                         young_id, rank, offer_id)
    if guardian:
        await db.execute(
            "INSERT INTO guardian_consents (young_person_id, guardian_name, guardian_email, expires_at, decision, "
            "decided_at) VALUES ($1, 'Gaëlle Gardien', $2, now() + interval '7 days', 'given', now())",
            young_id, f"parent.{last_name.lower()}@example.org")
    return young_id


async def offer(db: asyncpg.Connection, title: str, *, places: int = 1, minors: bool = True, starts: int = 10,
                status: str = "validated", tutor: str = "tina@example.org") -> int:
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Les Restos du Rhône', 'association', '1 rue', '69001', '69123', 'Aide.', 'validated') RETURNING id")
    mission_id = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, priority, status) VALUES ($1, $2, 'Distribuer des repas.', 'solidarite-insertion', '{}',"
        " false, 10, $3, false, 'published') RETURNING id", organisation_id, title, minors)
    offer_id: int = await db.fetchval(
        "INSERT INTO youth_offers (mission_id, department_code, places, start_date, end_date, hours, tutor_name,"
        " tutor_email, source, status) VALUES ($1, '69', $2, $3, $4, 84, 'Tina Tuteur', $5, 'organisation', $6)"
        " RETURNING id", mission_id, places, MISSIONS_START + timedelta(days=starts),
        MISSIONS_START + timedelta(days=starts + 30), tutor, status)
    return offer_id


async def a_department(db: asyncpg.Connection, *, deadline: date = TODAY - timedelta(days=1)) -> dict[str, int]:
    """A hand-made case. Épicerie and Jardin have one place each; Léo wants Épicerie only, Ana Épicerie then Jardin:
    placing the most gives Épicerie to Léo and Jardin to Ana (first come would leave Léo out). Maraude, closed to
    minors, has one place left (Old is placed already) for two adults; Bibliothèque starts before the missions'
    period; Verger awaits validation."""
    ids = {"cohort": await add_cohort(db, deadline=deadline)}
    ids["epicerie"] = await offer(db, "Épicerie solidaire")
    ids["jardin"] = await offer(db, "Jardin partagé", tutor="jules@example.org")
    ids["maraude"] = await offer(db, "Maraude de nuit", places=2, minors=False, tutor="marc@example.org")
    ids["bibliotheque"] = await offer(db, "Bibliothèque", starts=-30)
    ids["verger"] = await offer(db, "Verger", status="awaiting_validation")
    cohort = ids["cohort"]
    ids["ana"] = await young(db, cohort, "Ana", "Deuxvoeux", choices=(ids["epicerie"], ids["jardin"]), guardian=True)
    ids["leo"] = await young(db, cohort, "Léo", "Unvoeu", choices=(ids["epicerie"],), guardian=True)
    ids["mia"] = await young(db, cohort, "Mia", "Tropjeune", choices=(ids["maraude"],))
    # Of age, with the consent their guardian gave before: no guardian is written to for them.
    ids["sam"] = await young(db, cohort, "Sam", "Majeur", years=19, choices=(ids["maraude"],), guardian=True)
    ids["zoe"] = await young(db, cohort, "Zoé", "Majeure", years=20, choices=(ids["maraude"],), guardian=True)
    ids["noa"] = await young(db, cohort, "Noa", "Horsdates", choices=(ids["bibliotheque"],))
    ids["eli"] = await young(db, cohort, "Éli", "Sansvoeu")
    ids["val"] = await young(db, cohort, "Val", "Verger", choices=(ids["verger"],))
    ids["old"] = await young(db, cohort, "Old", "Dejaplace", years=21, choices=(ids["maraude"],))
    await db.execute("INSERT INTO youth_placements (young_person_id, offer_id, rank) VALUES ($1, $2, 1)", ids["old"],
                     ids["maraude"])
    await young(db, cohort, "Lou", "Attente", status="awaiting_consent", choices=(ids["jardin"],))
    await young(db, cohort, "Paul", "Corse", department="2A", choices=(ids["jardin"],))
    return ids


async def plan_of(db: asyncpg.Connection, run_id: int) -> dict[str, Any]:
    row = await db.fetchrow("SELECT status, plan, error FROM youth_allocations WHERE id = $1", run_id)
    assert row is not None
    return {"status": row["status"], "plan": json.loads(row["plan"]) if row["plan"] else None, "error": row["error"]}


def run_id_of(response: Any) -> int:
    assert response.status_code == 303, response.text
    match = re.fullmatch(rf"{HOME}/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match[1])


def enqueue_now(helper: Callable[[SyncRedis, int], object], run_id: int) -> None:
    connection = sync_redis(REDIS_URL)
    try:
        helper(connection, run_id)
    finally:
        connection.close()


def subjects(mail_sink: MailSink, address: str, start: str) -> list[Any]:
    """The e-mails to `address` whose subject starts so (the agreements' own e-mails go to the same people)."""
    return [message for message in to(mail_sink, address) if message["Subject"].startswith(start)]


def rows(html: str, table_id: str) -> str:
    match = re.search(rf'<table class="table" id="{table_id}">(.*?)</table>', html, re.S)
    return match.group(1) if match else ""


async def referent_of_69(browsers: Any, redis: Redis, db: asyncpg.Connection) -> AsyncTestClient:
    client: AsyncTestClient = await browsers()
    await sign_in(client, redis, db, "ref69@example.org", referent_of=("69",))
    return client


async def solved(client: AsyncTestClient, ids: dict[str, int], env: dict[str, str] | None = None) -> int:
    run_id = run_id_of(await post_form(client, HOME, {"cohorte": str(ids["cohort"]), "departement": "69"}, HOME))
    run_worker(env)
    return run_id


async def test_a_run_starts_only_after_the_deadline_and_its_plan_places_the_most_rank_maximally(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(db, deadline=TODAY)
    referent = await referent_of_69(browsers, redis, db)
    scope = {"cohorte": str(ids["cohort"]), "departement": "69"}
    page = await referent.get(HOME, params=scope)
    assert page.status_code == 200
    assert re.search(r'id="lancer" disabled', page.text) and '<option value="69" selected>69 – Rhône' in page.text
    assert f"à partir du {TODAY + timedelta(days=1):%d/%m/%Y}" in page.text
    refused = await post_form(referent, HOME, scope, HOME)
    assert refused.status_code == 409 and f"jusqu'au {TODAY:%d/%m/%Y} inclus" in unescape(refused.text)
    assert await db.fetchval("SELECT count(*) FROM youth_allocations") == 0

    await db.execute("UPDATE cohort_department_deadlines SET choose_by = $1", TODAY - timedelta(days=1))
    assert not re.search(r'id="lancer" disabled', (await referent.get(HOME, params=scope)).text)
    run_id = run_id_of(await post_form(referent, HOME, scope, HOME))
    waiting = await referent.get(f"{HOME}/{run_id}")
    assert "Calcul en cours" in waiting.text and f'data-poll="{HOME}/{run_id}/etat"' in waiting.text
    assert (await referent.get(f"{HOME}/{run_id}/etat")).json()["done"] is False
    payloads = await job_payloads(redis)
    assert payloads and all("@" not in p and "Deuxvoeux" not in p for p in payloads), payloads

    run_worker()
    state = await plan_of(db, run_id)
    assert state["status"] == "preview" and state["error"] is None
    plan = state["plan"]
    placed = {a["young_id"]: (a["offer_id"], a["rank"]) for a in plan["assignments"]}
    assert placed[ids["leo"]] == (ids["epicerie"], 1) and placed[ids["ana"]] == (ids["jardin"], 2)
    assert len([y for y in placed if y in (ids["sam"], ids["zoe"])]) == 1  # one place left on Maraude
    assert plan["rank_profile"] == [2, 1, 0, 0, 0] and plan["placed"] == 3
    reasons = {u["young_id"]: u["reason"] for u in plan["unplaced"]}
    assert reasons[ids["mia"]] == "no_compatible_choice"  # a minor on a mission closed to minors
    assert reasons[ids["noa"]] == "no_compatible_choice" and reasons[ids["val"]] == "no_compatible_choice"
    assert reasons[ids["eli"]] == "no_choice"
    assert "choices_full" in {reasons.get(ids["sam"]), reasons.get(ids["zoe"])}
    assert ids["old"] not in placed and ids["old"] not in reasons and plan["already_placed"] == 1
    assert len(plan["order"]) == 8  # nor the one awaiting consent, nor Corsica's
    excluded = {(e["young_id"], e["reason"]) for e in plan["excluded"]}
    assert {(ids["mia"], "too_young"), (ids["noa"], "dates"), (ids["val"], "unknown_offer")} <= excluded
    fills = {f["offer_id"]: (f["assigned"], f["places"]) for f in plan["fills"]}
    assert fills[ids["maraude"]] == (1, 1) and fills[ids["epicerie"]] == (1, 1)

    html = (await referent.get(f"{HOME}/{run_id}")).text
    assert "Plan prêt" in html and "1er vœu : 2 · 2e vœu : 1 · 3e vœu : 0" in html
    assigned = rows(html, "affectes")
    assert re.search(r"Léo Unvoeu</th>\s*<td>Épicerie solidaire</td>\s*<td>1er vœu", assigned)
    assert re.search(r"Ana Deuxvoeux</th>\s*<td>Jardin partagé</td>\s*<td>2e vœu", assigned)
    unplaced = rows(html, "sans-place")
    assert re.search(r"Mia Tropjeune</th>\s*<td>Aucun vœu compatible \(dates ou âge\)", unplaced)
    assert re.search(r"Éli Sansvoeu</th>\s*<td>Aucun vœu</td>", unplaced)
    assert "Paul Corse" not in html and "Old Dejaplace" not in html
    assert re.search(r"Maraude de nuit</th>.*?<td>1 / 1</td>", rows(html, "remplissage"), re.S)
    assert "Âge minimum de la mission non atteint" in rows(html, "voeux-ecartes")
    assert (await referent.get(f"{HOME}/{run_id}/etat")).json()["done"] is True

    # A new run discards the preview; two launches at once leave one running.
    again = await asyncio.gather(*[post_form(referent, HOME, scope, HOME) for _ in range(2)])
    assert sorted(r.status_code for r in again) == [303, 409]
    statuses = dict(await db.fetch("SELECT id, status FROM youth_allocations"))
    assert statuses[run_id] == "discarded" and sorted(statuses.values()) == ["discarded", "running"]


async def test_the_referent_adjusts_the_preview_and_the_rules_refuse_in_french(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(db)
    referent = await referent_of_69(browsers, redis, db)
    run_id = await solved(referent, ids)
    page = f"{HOME}/{run_id}"

    full = await post_form(referent, f"{page}/ajuster", {"young_id": ids["ana"], "offer_id": ids["epicerie"]}, page)
    assert full.status_code == 422 and f"Mission {ids['epicerie']} complète : 2 jeunes pour 1 place" in full.text
    too_young = await post_form(referent, f"{page}/ajuster", {"young_id": ids["mia"], "offer_id": ids["maraude"]},
                                page)
    assert too_young.status_code == 422 and "âge minimum de la mission non atteint" in too_young.text
    not_chosen = await post_form(referent, f"{page}/ajuster", {"young_id": ids["eli"], "offer_id": ids["jardin"]},
                                 page)
    assert not_chosen.status_code == 422 and "ne fait pas partie de ses vœux" in not_chosen.text
    plan = (await plan_of(db, run_id))["plan"]
    assert plan["adjusted"] is False

    removed = await post_form(referent, f"{page}/ajuster", {"young_id": ids["leo"], "offer_id": ""}, page)
    assert removed.status_code == 303 and removed.headers["location"].endswith("fait=ajustee")
    moved = await post_form(referent, f"{page}/ajuster", {"young_id": ids["ana"], "offer_id": ids["epicerie"]}, page)
    assert moved.status_code == 303
    plan = (await plan_of(db, run_id))["plan"]
    placed = {a["young_id"]: (a["offer_id"], a["rank"]) for a in plan["assignments"]}
    assert placed[ids["ana"]] == (ids["epicerie"], 1) and ids["leo"] not in placed and plan["adjusted"] is True
    html = (await referent.get(page)).text
    assert re.search(r"Léo Unvoeu</th>\s*<td>Retiré·e de sa mission par le référent", rows(html, "sans-place"))
    assert "n'est plus garanti optimal" in unescape(html)

    # Hostile values: a French 4xx, the plan untouched.
    for data in ({"young_id": "\x00", "offer_id": "1"}, {"young_id": "9" * 5000, "offer_id": ""},
                 {"young_id": ids["ana"], "offer_id": "abc"}, {"young_id": "-3"}):
        response = await post_form(referent, f"{page}/ajuster", data, page)
        assert response.status_code == 400 and "Choisissez un ou une jeune" in response.text, data
    unknown = await post_form(referent, f"{page}/ajuster", {"young_id": "123456789", "offer_id": ""}, page)
    assert unknown.status_code == 422 and "Jeune inconnu·e" in unknown.text
    assert (await plan_of(db, run_id))["plan"] == plan
    # The solve job run again (a retry, a duplicate) leaves a run no longer running alone.
    enqueue_now(enqueue.solve_youth_allocation, run_id)
    run_worker()
    assert (await plan_of(db, run_id)) == {"status": "preview", "plan": plan, "error": None}
    no_token = await referent.post(f"{page}/ajuster", data={"young_id": ids["ana"], "offer_id": ""})
    assert no_token.status_code == 403

    discarded = await post_form(referent, f"{page}/abandonner", {}, page)
    assert discarded.status_code == 303 and (await plan_of(db, run_id))["status"] == "discarded"
    late = await post_form(referent, f"{page}/ajuster", {"young_id": ids["leo"], "offer_id": ids["epicerie"]}, page)
    assert late.status_code == 409 and "ne peut plus être modifiée" in late.text


async def test_two_confirmations_at_once_place_everyone_once_and_the_e_mails_leave_once(
        browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, settings: Settings) -> None:
    ids = await a_department(db)
    referent = await referent_of_69(browsers, redis, db)
    env = {"SMTP_URL": mail_sink.url}
    run_id = await solved(referent, ids, env)
    page = f"{HOME}/{run_id}"
    referent_id = await db.fetchval("SELECT id FROM users WHERE email = 'ref69@example.org'")
    engine = make_engine(settings.database_url, pool_size=2)
    rq_connection = sync_redis(REDIS_URL)

    async def confirm() -> bool:
        async with unit_of_work(engine, Clients(redis, rq_connection)) as session:
            return (await runs.confirm_run(session, run_id, confirmed_by=referent_id)).done_now

    try:
        assert sorted(await asyncio.gather(confirm(), confirm())) == [False, True]  # two tabs, two transactions
    finally:
        await engine.dispose()
        rq_connection.close()
    clicked = await post_form(referent, f"{page}/confirmer", {}, page)
    assert clicked.status_code == 303 and clicked.headers["location"].endswith("fait=deja-confirmee")
    confirmed_page = (await referent.get(page)).text
    assert "Confirmée : les affectations sont faites" in confirmed_page and 'id="confirmer"' not in confirmed_page
    assert "/ajuster" not in confirmed_page and "Léo Unvoeu" in rows(confirmed_page, "affectes")
    placements = await db.fetch("SELECT young_person_id, offer_id, rank FROM youth_placements "
                                "WHERE allocation_id = $1", run_id)
    assert len(placements) == 3
    assert {(p["young_person_id"], p["offer_id"], p["rank"]) for p in placements} >= {
        (ids["leo"], ids["epicerie"], 1), (ids["ana"], ids["jardin"], 2)}
    row = await db.fetchrow("SELECT status, confirmed_by, confirmed_at FROM youth_allocations WHERE id = $1", run_id)
    assert row["status"] == "confirmed" and row["confirmed_by"] is not None and row["confirmed_at"] is not None
    count_agreements = ("SELECT count(*) FROM youth_agreements a JOIN youth_placements p ON p.id = a.placement_id "
                        "WHERE p.allocation_id = $1")
    assert await db.fetchval(count_agreements, run_id) == 0  # made by the job, not in the referent's request
    payloads = await job_payloads(redis)
    assert payloads and all("@" not in p and "Unvoeu" not in p for p in payloads), payloads

    run_worker(env)
    assert await db.fetchval(count_agreements, run_id) == 3
    [leo] = subjects(mail_sink, "unvoeu@example.org", "Votre mission SNU : Épicerie")
    body = leo.get_content()
    assert "du " + f"{MISSIONS_START + timedelta(days=10):%d/%m/%Y}" in body and "contrat d'engagement" in body
    [guardian] = subjects(mail_sink, "parent.unvoeu@example.org", "La mission SNU de Léo Unvoeu")
    assert "Épicerie solidaire" in guardian["Subject"] and "représentant·e légal·e" in guardian.get_content()
    to_guardians = {m["To"] for m in mail_sink.messages() if m["Subject"].startswith("La mission SNU de")}
    assert to_guardians == {"parent.unvoeu@example.org", "parent.deuxvoeux@example.org"}  # not the adult's
    [unplaced] = to(mail_sink, "sansvoeu@example.org")
    assert "pas de place cette fois" in unplaced["Subject"] and "référent" in unplaced.get_content()
    [tutor] = subjects(mail_sink, "jules@example.org", "Jeunes du SNU")
    assert "Ana D." in tutor.get_content() and "Deuxvoeux" not in tutor.get_content()
    [host] = subjects(mail_sink, "tina@example.org", "Jeunes du SNU")
    assert "Léo U." in host.get_content()
    assert to(mail_sink, "dejaplace@example.org") == [] and to(mail_sink, "corse@example.org") == []

    # Confirming again, or the notification job run once more, writes to nobody twice.
    before = len(list(mail_sink.messages()))
    assert (await post_form(referent, f"{page}/confirmer", {}, page)).headers["location"].endswith("deja-confirmee")
    enqueue_now(enqueue.notify_youth_allocation, run_id)
    run_worker(env)
    assert len(list(mail_sink.messages())) == before
    assert await db.fetchval("SELECT count(*) FROM youth_placements WHERE allocation_id = $1", run_id) == 3


async def test_places_taken_since_the_solve_refuse_the_confirmation(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(db)
    referent = await referent_of_69(browsers, redis, db)
    run_id = await solved(referent, ids)
    page = f"{HOME}/{run_id}"
    outsider = await young(db, ids["cohort"], "Out", "Sider", years=19)
    await db.execute("INSERT INTO youth_placements (young_person_id, offer_id) VALUES ($1, $2)", outsider,
                     ids["jardin"])
    refused = await post_form(referent, f"{page}/confirmer", {}, page)
    assert refused.status_code == 409 and "relancez l'affectation" in unescape(refused.text)
    assert await db.fetchval("SELECT count(*) FROM youth_placements WHERE allocation_id = $1", run_id) == 0
    assert (await plan_of(db, run_id))["status"] == "preview"


async def test_a_mission_gone_since_the_solve_refuses_the_confirmation_and_is_left_out_of_the_next_run(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(db)
    referent = await referent_of_69(browsers, redis, db)
    run_id = await solved(referent, ids)
    page = f"{HOME}/{run_id}"
    await db.execute("UPDATE missions SET status = 'cancelled' WHERE id = (SELECT mission_id FROM youth_offers "
                     "WHERE id = $1)", ids["jardin"])
    refused = await post_form(referent, f"{page}/confirmer", {}, page)
    assert refused.status_code == 409 and "ne sont plus proposées" in unescape(refused.text)
    assert await db.fetchval("SELECT count(*) FROM youth_placements WHERE allocation_id = $1", run_id) == 0
    again = await solved(referent, ids)
    plan = (await plan_of(db, again))["plan"]
    assert ids["jardin"] not in {int(a["offer_id"]) for a in plan["assignments"]}


async def test_a_solve_that_fails_leaves_the_run_failed_with_a_french_message(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(db)
    referent = await referent_of_69(browsers, redis, db)
    await db.execute("""
        CREATE FUNCTION refuse_preview() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'preview refused'; END $$;
        CREATE TRIGGER refuse_preview BEFORE UPDATE ON youth_allocations FOR EACH ROW
        WHEN (NEW.status = 'preview') EXECUTE FUNCTION refuse_preview();
    """)
    try:
        run_id = await solved(referent, ids)
    finally:
        await db.execute("DROP TRIGGER refuse_preview ON youth_allocations; DROP FUNCTION refuse_preview();")
    state = await plan_of(db, run_id)
    assert state["status"] == "failed" and state["plan"] is None
    assert state["error"] and "a échoué" in state["error"]
    html = (await referent.get(f"{HOME}/{run_id}")).text
    assert "Échec du calcul" in html and "Relancez-la" in html
    relaunched = await post_form(referent, HOME, {"cohorte": str(ids["cohort"]), "departement": "69"}, HOME)
    assert relaunched.status_code == 303


async def test_another_departments_referent_sees_nothing_and_hostile_input_is_a_french_4xx(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(db)
    referent = await referent_of_69(browsers, redis, db)
    run_id = await solved(referent, ids)
    page = f"{HOME}/{run_id}"

    other: AsyncTestClient = await browsers()
    await sign_in(other, redis, db, "ref13@example.org", referent_of=("13",))
    for path in (page, f"{page}/etat"):
        response = await other.get(path)
        assert response.status_code == 404 and "Léo" not in response.text, path
    assert (await post_form(other, f"{page}/confirmer", {}, HOME)).status_code == 404
    assert (await post_form(other, f"{page}/ajuster", {"young_id": ids["leo"], "offer_id": ""}, HOME)).status_code \
        == 404
    foreign = await post_form(other, HOME, {"cohorte": str(ids["cohort"]), "departement": "69"}, HOME)
    assert foreign.status_code == 404 and "pas référent·e de ce département" in foreign.text
    listing = await other.get(HOME, params={"cohorte": str(ids["cohort"]), "departement": "69"})
    assert listing.status_code == 404
    assert (await plan_of(db, run_id))["status"] == "preview"

    national = await browsers()
    await sign_in(national, redis, db, "coord@example.org", departments=(None,))
    assert "Léo Unvoeu" in (await national.get(page)).text
    for code in ("6\x009", "\x00", "999", "x" * 5000):
        response = await post_form(national, HOME, {"cohorte": str(ids["cohort"]), "departement": code}, HOME)
        assert response.status_code == 404, code

    plain = await browsers()
    await sign_in(plain, redis, db, "plain@example.org")
    assert (await plain.get(HOME)).status_code == 403

    for params in ({"cohorte": "9" * 30, "departement": "69"}, {"cohorte": "\x00", "departement": "6\x009"},
                   {"cohorte": "x" * 5000, "departement": "69" * 2500}):
        response = await referent.get(HOME, params=params)
        assert response.status_code in (200, 404), params
    for path in (f"{HOME}/{'9' * 30}", f"{HOME}/0", f"{HOME}/abc", f"{HOME}/987654321"):
        assert (await referent.get(path)).status_code in (400, 404), path
    for data in ({"cohorte": "\x00", "departement": "69"}, {"cohorte": str(ids["cohort"]), "departement": "x" * 5000},
                 {"cohorte": "9" * 40, "departement": "69"}):
        assert (await post_form(referent, HOME, data, HOME)).status_code == 404, data
    assert (await referent.post(f"{page}/confirmer")).status_code == 403  # no CSRF token
    assert await db.fetchval("SELECT count(*) FROM youth_placements WHERE allocation_id = $1", run_id) == 0
