"""Young people choosing their mission: `/snu/missions` lists the validated offers of online missions within their
cohort's missions period, for their age on the first day, near home (or remote when asked), with filters and
pagination; `/snu/voeux` keeps at most five ranked choices (ranks 1..n), changed only with consent and until the
department's deadline (inclusive, in Europe/Paris), one change at a time per young person; the home shows the step."""

from __future__ import annotations

import asyncio
import math
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.settings import Settings
from app.youth.choice_filters import months_of, parse_filters
from app.youth.choosing import (
    LIST_FULL,
    ChoiceRefused,
    ChoosingState,
    add_choice,
    choosing_state,
    paris_today,
)
from app.youth.models import YoungPerson
from tests.test_organisations import post_form, sign_in
from tests.test_signin import csrf_token
from tests.test_youth_cohorts import MISSIONS_START, TODAY, add_cohort, browsers, no_cohorts
from tests.test_youth_referent import add_young

FIXTURES = (browsers, no_cohorts)
MISSIONS = "/snu/missions"
CHOICES = "/snu/voeux"
KM_PER_DEGREE = 6371.0088 * math.pi / 180


async def offer(db: asyncpg.Connection, title: str, *, minors: bool = True, km: float | None = 5.0,
                remote: bool = False, status: str = "validated", mission_status: str = "published",
                organisation_status: str = "validated", starts: int = 10, days: int = 30,
                domain: str = "solidarite-insertion", places: int = 3) -> int:
    """A youth offer whose mission's only address is `km` north of Lyon's town hall (none when `km` is None)."""
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Les Restos du Rhône', 'association', '1 rue', '69001', '69123', 'Aide.', $1) RETURNING id",
        organisation_status)
    mission_id = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, priority, status) VALUES ($1, $2, 'Aider.', $3, '{}', $4, 10, $5, false, $6) RETURNING id",
        organisation_id, title, domain, remote, minors, mission_status)
    if km is not None:
        lyon = await db.fetchrow("SELECT latitude, longitude FROM communes WHERE code = '69123'")
        await db.execute(
            "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
            " VALUES ($1, '2 place Bellecour', '69002', '69123', $2, $3)", mission_id,
            lyon["latitude"] + km / KM_PER_DEGREE, lyon["longitude"])
    offer_id: int = await db.fetchval(
        "INSERT INTO youth_offers (mission_id, department_code, places, start_date, end_date, hours, tutor_name,"
        " tutor_email, source, status) VALUES ($1, '69', $2, $3, $4, 84, 'Tina Tuteur', 'tina@example.org',"
        " 'organisation', $5) RETURNING id", mission_id, places, MISSIONS_START + timedelta(days=starts),
        MISSIONS_START + timedelta(days=starts + days), status)
    return offer_id


async def signed_in_young(browsers: Any, redis: Redis, db: asyncpg.Connection, cohort_id: int, last_name: str,
                          **young: Any) -> tuple[AsyncTestClient, int]:
    young_id = await add_young(db, cohort_id, "Camille", last_name, **young)
    client: AsyncTestClient = await browsers()
    await sign_in(client, redis, db, f"{last_name.lower()}@example.org")
    return client, young_id


def shown(html: str) -> list[int]:
    return [int(offer_id) for offer_id in re.findall(r'<li class="mission-card mb-3" data-offre="(\d+)"', html)]


async def ranked(db: asyncpg.Connection, young_id: int) -> list[tuple[int, int]]:
    return [(row["rank"], row["offer_id"]) for row in await db.fetch(
        "SELECT rank, offer_id FROM youth_choices WHERE young_person_id = $1 ORDER BY rank", young_id)]


async def add(client: AsyncTestClient, offer_id: int | str) -> Any:
    return await post_form(client, CHOICES, {"offre": str(offer_id)}, CHOICES)


async def test_age_on_the_first_day_decides_which_offers_show(browsers: Any, redis: Redis,
                                                               db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    open_to_minors = await offer(db, "Épicerie solidaire")
    adults_only = await offer(db, "Maraude de nuit", minors=False)
    fifteen, _ = await signed_in_young(browsers, redis, db, cohort, "Quinze", years=15)
    eighteen, _ = await signed_in_young(browsers, redis, db, cohort, "Dixhuit", years=18)
    too_old, _ = await signed_in_young(browsers, redis, db, cohort, "Vingtsix", years=26)

    page = await fifteen.get(MISSIONS)
    assert page.status_code == 200
    assert shown(page.text) == [open_to_minors]
    assert sorted(shown((await eighteen.get(MISSIONS)).text)) == sorted([open_to_minors, adults_only])
    assert shown((await too_old.get(MISSIONS)).text) == []
    # A hand-made POST for the offer closed to minors is refused with a French message.
    refused = await add(fifteen, adults_only)
    assert refused.status_code == 422 and "pas proposée aux jeunes de votre cohorte" in unescape(refused.text)
    assert (await add(eighteen, adults_only)).status_code == 303


async def test_distance_from_home_and_remote_missions(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    near = await offer(db, "Jardin partagé", km=5)
    far = await offer(db, "Ferme pédagogique", km=30)
    remote = await offer(db, "Soutien scolaire en ligne", km=None, remote=True)
    client, _ = await signed_in_young(browsers, redis, db, cohort, "Lyonnaise", years=18)

    default = await client.get(MISSIONS)
    assert shown(default.text) == [near]  # 20 km by default: 30 km away is hidden, remote too
    text = unescape(default.text)
    assert "Jardin partagé" in text and "Les Restos du Rhône" in text and "Lyon" in text
    assert "à 5,0\u00a0km" in text and "84 heures" in text and "3 places restantes sur 3" in text
    assert "Solidarité" in text or "solidarit" in text.lower()
    assert shown((await client.get(MISSIONS, params={"distance": "50"})).text) == [near, far]
    assert shown((await client.get(MISSIONS, params={"distance": "10"})).text) == [near]
    assert shown((await client.get(MISSIONS, params={"a_distance": "1"})).text) == [near, remote]
    both = await client.get(MISSIONS, params={"distance": "50", "a_distance": "1"})
    assert shown(both.text) == [near, far, remote]
    assert "à distance" in unescape(both.text)


async def test_only_validated_offers_of_online_missions_within_the_cohorts_period(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    good = await offer(db, "Bonne offre")
    hidden = [
        await offer(db, "Avant la période", starts=-5),
        await offer(db, "Après la période", starts=190, days=30),  # ends after missions_end (start + 200 days)
        await offer(db, "En attente", status="awaiting_validation"),
        await offer(db, "Refusée", status="refused"),
        await offer(db, "Retirée", status="withdrawn"),
        await offer(db, "Brouillon", mission_status="draft"),
        await offer(db, "Annulée", mission_status="cancelled"),
        await offer(db, "Structure suspendue", organisation_status="suspended"),
    ]
    last_day = await offer(db, "Dernier jour", starts=170, days=30)  # ends on missions_end exactly
    client, _ = await signed_in_young(browsers, redis, db, cohort, "Periode", years=18)
    assert sorted(shown((await client.get(MISSIONS)).text)) == sorted([good, last_day])
    for offer_id in hidden:
        response = await add(client, offer_id)
        assert response.status_code == 422, offer_id
    assert await ranked(db, (await db.fetchval("SELECT id FROM young_people"))) == []


async def test_filters_pagination_and_hostile_parameters(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    many = [await offer(db, f"Mission {number:02d}", km=1 + number) for number in range(24)]  # 1..24 km
    culture = await offer(db, "Musée", km=3, domain="art-culture")
    late = await offer(db, "Fin de période", km=2, starts=150, days=20)
    client, _ = await signed_in_young(browsers, redis, db, cohort, "Filtre", years=18)

    first = await client.get(MISSIONS, params={"distance": "50"})
    assert first.status_code == 200 and len(shown(first.text)) == 20 and "26 missions" in first.text
    next_link = unescape(re.search(r'rel="next" href="([^"]+)"', first.text)[1])  # type: ignore[index]
    assert "distance=50" in next_link and "page=2" in next_link  # the link keeps the filters
    second = await client.get(next_link)
    assert len(shown(second.text)) == 6
    assert set(shown(first.text)) | set(shown(second.text)) == {*many, culture, late}
    assert shown((await client.get(MISSIONS, params={"distance": "50", "domaine": "art-culture"})).text) == [culture]
    month = (MISSIONS_START + timedelta(days=160)).strftime("%Y-%m")
    in_month = await client.get(MISSIONS, params={"distance": "50", "mois": month})
    assert late in shown(in_month.text) and all(offer_id not in shown(in_month.text) for offer_id in many)
    # Values out of their lists, malformed or hostile fall back to the defaults: never a 500.
    default = set(shown((await client.get(MISSIONS)).text))
    for params in ({"distance": "7"}, {"distance": "\x00"}, {"domaine": "<script>"}, {"mois": "2099-13"},
                   {"mois": "x" * 5000}, {"page": "abc"}, {"page": "-1"}, {"a_distance": "\x00"},
                   {"distance": "9" * 5000}):
        response = await client.get(MISSIONS, params=params)
        assert response.status_code == 200, params
        assert set(shown(response.text)) == default, params
    beyond = await client.get(MISSIONS, params={"distance": "10", "page": "400"}, follow_redirects=False)
    assert beyond.status_code == 303 and beyond.headers["location"] == f"{MISSIONS}?distance=10"


def test_parse_filters_defaults() -> None:
    months = months_of(date(2027, 1, 15), date(2027, 3, 2))
    assert months == [date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1)]
    filters = parse_filters({"distance": "100", "a_distance": "on", "domaine": "art-culture", "mois": "2027-02",
                             "page": "3"}, months)
    assert (filters.radius_km, filters.remote, filters.domain, filters.month, filters.page) == (
        100, True, "art-culture", date(2027, 2, 1), 3)
    fallback = parse_filters({"distance": "15", "mois": "2027-04", "page": "0", "domaine": "nope"}, months)
    assert (fallback.radius_km, fallback.remote, fallback.domain, fallback.month, fallback.page) == (
        20, False, None, None, 1)


async def test_ranked_list_add_move_remove_and_the_sixth_choice(browsers: Any, redis: Redis,
                                                                db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    offers = [await offer(db, f"Mission {letter}") for letter in "ABCDEF"]
    client, young_id = await signed_in_young(browsers, redis, db, cohort, "Rangs", years=16)
    for offer_id in offers[:3]:
        response = await add(client, offer_id)
        assert response.status_code == 303 and response.headers["location"] == f"{CHOICES}?fait=ajoute"
    assert await ranked(db, young_id) == [(1, offers[0]), (2, offers[1]), (3, offers[2])]
    page = await client.get(f"{CHOICES}?fait=ajoute")
    assert "La mission est ajoutée à vos vœux." in unescape(page.text) and "3 vœux sur 5" in unescape(page.text)

    twice = await add(client, offers[1])
    assert twice.status_code == 409 and "déjà dans vos vœux" in unescape(twice.text)

    assert (await post_form(client, f"{CHOICES}/descendre", {"offre": str(offers[0])}, CHOICES)).status_code == 303
    assert await ranked(db, young_id) == [(1, offers[1]), (2, offers[0]), (3, offers[2])]
    assert (await post_form(client, f"{CHOICES}/monter", {"offre": str(offers[2])}, CHOICES)).status_code == 303
    assert await ranked(db, young_id) == [(1, offers[1]), (2, offers[2]), (3, offers[0])]
    # At either end a move changes nothing.
    assert (await post_form(client, f"{CHOICES}/monter", {"offre": str(offers[1])}, CHOICES)).status_code == 303
    assert await ranked(db, young_id) == [(1, offers[1]), (2, offers[2]), (3, offers[0])]

    assert (await post_form(client, f"{CHOICES}/retirer", {"offre": str(offers[1])}, CHOICES)).status_code == 303
    assert await ranked(db, young_id) == [(1, offers[2]), (2, offers[0])]
    gone = await post_form(client, f"{CHOICES}/retirer", {"offre": str(offers[1])}, CHOICES)
    assert gone.status_code == 409 and "n'est plus dans votre liste" in unescape(gone.text)

    for offer_id in (offers[1], offers[3], offers[4]):
        assert (await add(client, offer_id)).status_code == 303
    assert [rank for rank, _ in await ranked(db, young_id)] == [1, 2, 3, 4, 5]
    sixth = await add(client, offers[5])
    assert sixth.status_code == 409 and "déjà 5 vœux" in unescape(sixth.text)
    assert len(await ranked(db, young_id)) == 5
    listing = unescape((await client.get(MISSIONS)).text)
    assert "Déjà dans vos vœux" in listing and "Ajouter à mes vœux" not in listing  # the list is full


async def test_an_offer_no_longer_offered_can_still_be_removed(browsers: Any, redis: Redis,
                                                               db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    kept, withdrawn = await offer(db, "Gardée"), await offer(db, "Retirée ensuite")
    client, young_id = await signed_in_young(browsers, redis, db, cohort, "Retrait", years=18)
    assert (await add(client, kept)).status_code == 303
    assert (await add(client, withdrawn)).status_code == 303
    await db.execute("UPDATE youth_offers SET status = 'withdrawn' WHERE id = $1", withdrawn)
    page = unescape((await client.get(CHOICES)).text)
    assert "Cette mission n'est plus proposée" in page
    assert (await post_form(client, f"{CHOICES}/retirer", {"offre": str(withdrawn)}, CHOICES)).status_code == 303
    assert await ranked(db, young_id) == [(1, kept)]


async def test_consent_is_required_to_choose(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    offer_id = await offer(db, "Épicerie solidaire")
    waiting, waiting_id = await signed_in_young(browsers, redis, db, cohort, "Attente", years=16,
                                                status="awaiting_consent")
    refused, _ = await signed_in_young(browsers, redis, db, cohort, "Refus", years=16, status="consent_refused")
    response = await add(waiting, offer_id)
    assert response.status_code == 403
    assert "dès que votre représentant·e légal·e aura donné son accord" in unescape(response.text)
    assert await ranked(db, waiting_id) == []
    listing = unescape((await waiting.get(MISSIONS)).text)
    assert shown(listing) == [offer_id] and "Ajouter à mes vœux" not in listing  # they may look, not choose
    answer = await add(refused, offer_id)
    assert answer.status_code == 403 and "n'a pas donné son accord" in unescape(answer.text)
    home = unescape((await waiting.get("/snu")).text)
    assert 'data-statut="awaiting_consent"' in home


async def test_the_deadline_day_is_allowed_the_day_after_is_not(browsers: Any, redis: Redis,
                                                                db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY)  # TODAY: France's day
    first, second = await offer(db, "Premier"), await offer(db, "Second")
    client, young_id = await signed_in_young(browsers, redis, db, cohort, "Delai", years=18)
    assert (await add(client, first)).status_code == 303
    assert f"jusqu'au {TODAY:%d/%m/%Y} inclus" in unescape((await client.get(CHOICES)).text)

    await db.execute("UPDATE cohort_department_deadlines SET choose_by = $1", TODAY - timedelta(days=1))
    late = await add(client, second)
    assert late.status_code == 403
    assert f"La date limite des vœux était le {TODAY - timedelta(days=1):%d/%m/%Y}" in unescape(late.text)
    for action in ("retirer", "monter", "descendre"):
        response = await post_form(client, f"{CHOICES}/{action}", {"offre": str(first)}, CHOICES)
        assert response.status_code == 403, action
    assert await ranked(db, young_id) == [(1, first)]
    page = (await client.get(CHOICES)).text
    assert 'action="/snu/voeux/retirer"' not in page  # read-only
    assert 'data-etape="closed"' in (await client.get("/snu")).text

    await db.execute("DELETE FROM cohort_department_deadlines")
    unset = await add(client, second)
    assert unset.status_code == 403
    assert "Les vœux ouvriront quand votre référent aura fixé la date limite." in unescape(unset.text)
    assert 'data-etape="no_deadline"' in (await client.get("/snu")).text


def test_the_deadline_counts_in_paris_time() -> None:
    young = YoungPerson(status="ready")
    deadline = date(2027, 3, 10)
    # 23:30 UTC on 10 March is 00:30 on 11 March in Paris: the day after the deadline.
    assert paris_today(datetime(2027, 3, 10, 23, 30, tzinfo=UTC)) == date(2027, 3, 11)
    assert paris_today(datetime(2027, 3, 10, 22, 59, tzinfo=UTC)) == date(2027, 3, 10)
    assert choosing_state(young, deadline, date(2027, 3, 10)) == ChoosingState.OPEN
    assert choosing_state(young, deadline, date(2027, 3, 11)) == ChoosingState.CLOSED
    assert choosing_state(young, None, date(2027, 3, 1)) == ChoosingState.NO_DEADLINE
    assert choosing_state(young, deadline, date(2027, 3, 1), placed=True) == ChoosingState.PLACED
    assert choosing_state(YoungPerson(status="awaiting_consent"), deadline,
                          date(2027, 3, 1)) == ChoosingState.AWAITING_CONSENT


async def test_concurrent_adds_never_exceed_five(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    offers = [await offer(db, f"Mission {number}") for number in range(8)]
    client, young_id = await signed_in_young(browsers, redis, db, cohort, "Onglets", years=18)
    for offer_id in offers[:4]:
        assert (await add(client, offer_id)).status_code == 303
    token = csrf_token((await client.get(CHOICES)).text)

    async def post(path: str, offer_id: int) -> int:
        response = await client.post(path, data={"offre": str(offer_id), "_csrf_token": token},
                                     follow_redirects=False)
        return int(response.status_code)

    statuses = await asyncio.gather(post(CHOICES, offers[4]), post(CHOICES, offers[5]))
    assert sorted(statuses) == [303, 409]
    assert [rank for rank, _ in await ranked(db, young_id)] == [1, 2, 3, 4, 5]
    # Removes and moves at once keep the ranks 1..n.
    current = [offer_id for _, offer_id in await ranked(db, young_id)]
    await asyncio.gather(post(f"{CHOICES}/retirer", current[0]), post(f"{CHOICES}/descendre", current[2]),
                         post(f"{CHOICES}/retirer", current[4]), post(f"{CHOICES}/monter", current[3]))
    after = await ranked(db, young_id)
    assert [rank for rank, _ in after] == [1, 2, 3]
    assert {offer_id for _, offer_id in after} == {current[1], current[2], current[3]}


async def test_a_change_waits_for_the_young_persons_row_lock(settings: Settings, browsers: Any, redis: Redis,
                                                              db: asyncpg.Connection) -> None:
    """Two transactions adding to a 4-choice list: the second waits for the first's lock on `young_people`, then
    sees five choices and is refused (without the lock it would insert a second rank 5)."""
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    offers = [await offer(db, f"Mission {number}") for number in range(6)]
    young_id = await add_young(db, cohort, "Camille", "Verrou", years=18)
    for rank, offer_id in enumerate(offers[:4], start=1):
        await db.execute("INSERT INTO youth_choices (young_person_id, rank, offer_id) VALUES ($1, $2, $3)",
                         young_id, rank, offer_id)
    engine = make_engine(settings.database_url, pool_size=0)

    async def second() -> str:
        async with unit_of_work(engine) as session:
            try:
                await add_choice(session, young_id, offers[5])
            except ChoiceRefused as refused:
                return refused.message
            return "added"

    try:
        async with unit_of_work(engine) as session:
            assert await add_choice(session, young_id, offers[4]) == 5
            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.5)
            assert not waiting.done()  # blocked on the row lock
        assert await asyncio.wait_for(waiting, 10) == LIST_FULL
    finally:
        await engine.dispose()
    assert await ranked(db, young_id) == [(rank, offer_id) for rank, offer_id in enumerate(offers[:5], start=1)]


async def test_hostile_input_is_a_french_4xx(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    await offer(db, "Épicerie solidaire")
    client, young_id = await signed_in_young(browsers, redis, db, cohort, "Hostile", years=18)
    for value in ("", "abc", "0", "-1", "\x00", "1\x00", "9" * 5000, "99999999999999999999", "٣", "1.5"):
        for path in (CHOICES, f"{CHOICES}/monter", f"{CHOICES}/descendre", f"{CHOICES}/retirer"):
            response = await post_form(client, path, {"offre": value}, CHOICES)
            assert response.status_code == 400, (path, value)
            assert "Ce vœu n'est pas valide" in unescape(response.text)
    unknown = await add(client, 9_000_000)
    assert unknown.status_code == 422 and "pas proposée" in unescape(unknown.text)
    no_token = await client.post(CHOICES, data={"offre": "1"}, follow_redirects=False)
    assert no_token.status_code == 403
    huge = await client.post(CHOICES, content=b"offre=" + b"1" * 20_000,
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert 400 <= huge.status_code < 500
    assert await ranked(db, young_id) == []


async def test_who_may_open_the_pages(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    anonymous: AsyncTestClient = await browsers()
    for path in (MISSIONS, CHOICES):
        response = await anonymous.get(path, follow_redirects=False)
        assert 300 <= response.status_code < 400 or response.status_code in (401, 403), path
    volunteer: AsyncTestClient = await browsers()
    await sign_in(volunteer, redis, db, "sansespace@example.org")
    for path in (MISSIONS, CHOICES):
        response = await volunteer.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/snu", path
    assert (await post_form(volunteer, CHOICES, {"offre": "1"})).headers["location"] == "/snu"


async def test_home_shows_the_step(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    cohort = await add_cohort(db, deadline=TODAY + timedelta(days=10))
    offer_id = await offer(db, "Épicerie solidaire")
    client, young_id = await signed_in_young(browsers, redis, db, cohort, "Accueil", years=18)
    home = unescape((await client.get("/snu")).text)
    assert 'data-statut="ready"' in home and 'data-etape="choose"' in home
    assert f"avant le {TODAY + timedelta(days=10):%d/%m/%Y} inclus" in home and 'href="/snu/missions"' in home
    assert (await add(client, offer_id)).status_code == 303
    home = unescape((await client.get("/snu")).text)
    assert 'data-etape="chosen"' in home and "Vous avez fait 1 vœu sur 5." in home
    await db.execute("INSERT INTO youth_placements (young_person_id, offer_id, rank) VALUES ($1, $2, 1)", young_id,
                     offer_id)
    home = unescape((await client.get("/snu")).text)
    assert 'data-etape="placed"' in home and "« Épicerie solidaire »" in home and 'href="/snu/convention"' in home
    placed = await add(client, await offer(db, "Autre"))
    assert placed.status_code == 403 and "Vous êtes affecté·e à une mission" in unescape(placed.text)
