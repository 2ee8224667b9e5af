"""`GET /v0/mission`'s filters, as API Engagement documents them (comma lists and repeated parameters, OR within
one, AND across), its true great-circle radius on real communes, and a clear 400 for anything it cannot read."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from app.volunteers.age import today
from tests.test_partners_v0 import ids, mission, organisation, reader

LYON, VILLEURBANNE, GRENOBLE = "69123", "69266", "38185"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


async def town_hall(db: asyncpg.Connection, code: str) -> tuple[float, float]:
    row = await db.fetchrow("SELECT latitude, longitude FROM communes WHERE code = $1", code)
    assert row is not None
    return float(row["latitude"]), float(row["longitude"])


async def refused(client: AsyncTestClient, key: str, params: Any) -> str:
    response = await client.get("/v0/mission", params=params, headers={"x-api-key": key})
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["ok"], body["code"]) == (False, "INVALID_QUERY")
    message: str = body["message"]
    assert message.startswith("Paramètres invalides")
    return message


async def test_the_radius_is_a_true_circle_around_the_point(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db)
    lat, lon = await town_hall(db, LYON)
    in_lyon = await mission(db, org, "Mission à Lyon", communes=(LYON,))
    in_villeurbanne = await mission(db, org, "Mission à Villeurbanne", communes=(VILLEURBANNE,))
    in_grenoble = await mission(db, org, "Mission à Grenoble", communes=(GRENOBLE,))
    # A real commune in the corner of the 10 km box around Lyon's town hall, but farther than 10 km from it.
    dlat = 10 / 111.195
    corner = None
    for row in await db.fetch(
        "SELECT code, latitude, longitude FROM communes WHERE latitude BETWEEN $1 AND $2"
        " AND longitude BETWEEN $3 AND $4", lat - 0.9 * dlat, lat + 0.9 * dlat,
        lon - 0.9 * dlat / math.cos(math.radians(lat)), lon + 0.9 * dlat / math.cos(math.radians(lat)),
    ):
        if haversine_km(lat, lon, row["latitude"], row["longitude"]) > 10.5:
            corner = row["code"]
            break
    assert corner is not None
    in_corner = await mission(db, org, "Mission dans le coin", communes=(corner,))
    assert await ids(client, key, lat=lat, lon=lon, distance="5km") == [in_lyon, in_villeurbanne]
    assert await ids(client, key, lat=lat, lon=lon, distance="5000m") == [in_lyon, in_villeurbanne]
    assert await ids(client, key, lat=lat, lon=lon, distance="10") == [in_lyon, in_villeurbanne]
    assert await ids(client, key, lat=lat, lon=lon, distance="100km") == [in_lyon, in_villeurbanne, in_corner,
                                                                            in_grenoble]
    assert await ids(client, key, lat=lat, lon=lon, distance="0") == [in_lyon, in_villeurbanne]  # 10 km
    assert await ids(client, key, lat=lat, lon=lon) == [in_lyon, in_villeurbanne, in_corner]  # 50 km
    # The address filters apply with the radius, on the same address.
    assert await ids(client, key, lat=lat, lon=lon, distance="100km", city="Villeurbanne") == [in_villeurbanne]
    assert await ids(client, key, lat=lat, lon=lon, distance="100km", departmentCode="38") == [in_grenoble]


async def test_a_mission_with_several_addresses_is_found_once_at_its_nearest(client: AsyncTestClient,
                                                                            db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db)
    lat, lon = await town_hall(db, GRENOBLE)
    both = await mission(db, org, communes=(LYON, GRENOBLE))
    lyon_only = await mission(db, org, communes=(LYON,))
    body = await client.get("/v0/mission", params={"lat": lat, "lon": lon, "distance": "150km"},
                            headers={"x-api-key": key})
    assert [int(item["_id"]) for item in body.json()["data"]] == [both, lyon_only]
    assert body.json()["total"] == 2


async def test_domains_activities_types_and_remote_filter(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db)
    health = await mission(db, org, domain="sante-pour-tous", activities=("medical",))
    sport = await mission(db, org, domain="sport-pour-tous", activities=("activites-sportives", "logistique"),
                          remote=True)
    nature = await mission(db, org, domain="protection-nature", activities=("ramassage-dechets",))
    assert await ids(client, key, domain="sante") == [health]
    assert sorted(await ids(client, key, domain="sante,sport")) == sorted([health, sport])
    assert sorted(await ids(client, key, domain=["sante", "environnement"])) == sorted([health, nature])
    assert await ids(client, key, domain="sport-pour-tous") == [sport]  # ours too
    assert await ids(client, key, domain="emploi") == []  # one of theirs we publish none under
    assert await ids(client, key, activity="logistique") == [sport]
    assert await ids(client, key, activity="Ramassage de déchets") == [nature]  # a label
    assert sorted(await ids(client, key, activity="medical,logistique")) == sorted([health, sport])
    assert await ids(client, key, activity="logistique", domain="sante") == []  # AND across parameters
    assert len(await ids(client, key, type="benevolat")) == 3
    assert await ids(client, key, type="volontariat_service_civique") == []
    assert await ids(client, key, remote="full") == [sport]
    assert sorted(await ids(client, key, remote="no")) == sorted([health, nature])
    assert await ids(client, key, remote="possible") == []
    assert len(await ids(client, key, remote="no,full")) == 3


async def test_cities_departments_minors_and_keywords_filter(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db)
    lyon = await mission(db, org, "Maraude du soir", communes=(LYON,), minors=True,
                         description="Rencontrer les personnes à la rue avec des vélos.")
    grenoble = await mission(db, org, "Épicerie solidaire", communes=(GRENOBLE,))
    assert await ids(client, key, city="lyon") == [lyon]
    assert await ids(client, key, city="GRENOBLE") == [grenoble]
    assert sorted(await ids(client, key, city="Lyon,Grenoble")) == sorted([lyon, grenoble])
    assert await ids(client, key, city="Saint-Étienne") == []
    assert await ids(client, key, departmentName="Isère") == [grenoble]
    assert await ids(client, key, departmentName="isere") == [grenoble]
    assert await ids(client, key, departmentCode="69") == [lyon]
    assert await ids(client, key, openToMinors="yes") == [lyon]
    assert await ids(client, key, openToMinors="true") == [lyon]
    assert await ids(client, key, openToMinors="0") == [grenoble]
    assert await ids(client, key, keywords="velo") == [lyon]  # accents and plurals folded
    assert await ids(client, key, keywords="epicerie") == [grenoble]
    assert await ids(client, key, keywords="maraude", city="Grenoble") == []


async def test_dates_filter_strictly_with_gt_and_lt(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db)
    year = today().year + 1
    early = await mission(db, org, start=date(year, 3, 1), created_at=instant("2025-01-10T12:00:00Z"))
    late = await mission(db, org, start=date(year, 9, 1), created_at=instant("2025-06-10T12:00:00Z"))
    await mission(db, org, start=None, created_at=instant("2024-01-01T00:00:00Z"))
    assert await ids(client, key, startAt=f"gt:{year}-03-01") == [late]  # strict
    assert await ids(client, key, startAt=f"gt:{year}-02-28T23:00:00Z") == [late, early]
    assert await ids(client, key, startAt=f"lt:{year}-03-01T00:00:00Z") == []
    assert await ids(client, key, startAt=f"lt:{year}-03-01T00:00:01+00:00") == [early]
    assert await ids(client, key, startAt=[f"gt:{year}-01-01", f"lt:{year}-06-01"]) == [early]
    assert await ids(client, key, createdAt="gt:2025-03-01") == [late]
    assert len(await ids(client, key, createdAt="lt:2025-06-10T14:00:01+02:00")) == 3
    assert len(await ids(client, key, createdAt="lt:2025-06-10T13:59:59+02:00")) == 2


@pytest.mark.parametrize(("params", "named"), [
    ({"limit": "1001"}, "limit"),
    ({"limit": "1e9"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"skip": "abc"}, "skip"),
    ({"skip": "99999999"}, "skip"),
    ({"lat": "45.7"}, "lat"),
    ({"lat": "nan", "lon": "4.8"}, "lat"),
    ({"lat": "45.7", "lon": "inf"}, "lon"),
    ({"lat": "91", "lon": "4.8"}, "lat"),
    ({"lat": "45.7", "lon": "4.8", "distance": "600km"}, "distance"),
    ({"lat": "45.7", "lon": "4.8", "distance": "loin"}, "distance"),
    ({"domain": "mobilite"}, "domain"),
    ({"activity": "jongler"}, "activity"),
    ({"type": "emploi"}, "type"),
    ({"remote": "parfois"}, "remote"),
    ({"openToMinors": "peut-être"}, "openToMinors"),
    ({"departmentName": "Atlantide"}, "departmentName"),
    ({"departmentCode": "00"}, "departmentCode"),
    ({"createdAt": "2025-01-01"}, "createdAt"),
    ({"createdAt": "ge:2025-01-01"}, "createdAt"),
    ({"createdAt": "gt:01/02/2025"}, "createdAt"),
    ({"startAt": "gt:2025-01-01T10:00"}, "startAt"),
    ({"startAt": "lt:2025-02-30"}, "startAt"),
    ({"keywords": "a\x00b"}, "keywords"),
    ({"city": "x" * 5000}, "city"),
    ({"domain": ",".join(["x"] * 10_000)}, "domain"),
    ({"limit": ["1", "2"]}, "limit"),
])
async def test_parameters_it_cannot_read_are_a_400_naming_them(client: AsyncTestClient, db: asyncpg.Connection,
                                                               params: dict[str, Any], named: str) -> None:
    _, key = await reader(db)
    message = await refused(client, key, params)
    assert f"{named} :" in message


async def test_several_wrong_parameters_are_named_together_and_unknown_ones_ignored(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    message = await refused(client, key, {"limit": "x", "remote": "maybe", "whatever": "1"})
    assert "limit :" in message and "remote :" in message and "whatever" not in message
    assert await ids(client, key, whatever="1", size="3") == []
    response = await client.get("/v0/mission", params={"domain": ["x"] * 5_000}, headers={"x-api-key": key})
    assert response.status_code == 400
