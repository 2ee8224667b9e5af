"""`GET /v0/mission/feed.xml`: our missions diffused to the caller, in API Engagement's import format, parsed back
(with defusedxml, as a partner's importer would) to the values the JSON API gives."""

from __future__ import annotations

from datetime import date
from xml.etree.ElementTree import Element

import asyncpg
from defusedxml import ElementTree
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.missions import cache
from app.partners.export import cdata
from app.volunteers.age import today
from tests.test_partners_v0 import listed, mission, organisation, reader


def missions_of(document: bytes) -> list[Element]:
    root = ElementTree.fromstring(document)
    assert root.tag == "source"
    return root.findall("mission")


def text(element: Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else found.text


async def feed(client: AsyncTestClient, key: str) -> bytes:
    response = await client.get("/v0/mission/feed.xml", headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return response.content


def test_cdata_keeps_a_closing_marker_and_drops_what_xml_cannot_carry() -> None:
    element = ElementTree.fromstring(f"<t>{cdata('a ]]> b <c> & d' + chr(1))}</t>")
    assert element.text == "a ]]> b <c> & d"


async def test_the_feed_round_trips_the_values_of_the_json_api(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db, "Les <Amis> & ]]> du Parc", rna="W691234567")
    start = date(today().year + 1, 5, 2)
    first = await mission(db, org, "Nettoyage des berges", description="<p>Gants fournis</p> ]]> fin",
                          domain="protection-nature", activities=("ramassage-dechets",), start=start,
                          communes=("69123", "38185"), minors=True)
    second = await mission(db, org, "Aide aux devoirs", domain="education-pour-tous", remote=True)
    document = await feed(client, key)
    exported = {text(element, "clientId"): element for element in missions_of(document)}
    assert set(exported) == {str(first), str(second)}
    for item in (await listed(client, key))["data"]:
        element = exported[item["_id"]]
        for tag in ("title", "description", "applicationUrl", "startAt", "endAt", "domain", "activity", "remote",
                    "openToMinors", "organizationName", "organizationClientId", "organizationRNA", "createdAt"):
            assert text(element, tag) == item[tag], tag
        assert text(element, "places") == str(item["places"])
        addresses = element.findall("addresses/address")
        assert len(addresses) == len(item["addresses"])
        for address, expected in zip(addresses, item["addresses"], strict=True):
            for tag in ("street", "postalCode", "city", "departmentCode", "departmentName", "region", "country"):
                assert text(address, tag) == expected[tag], tag
            assert float(text(address, "location/lat") or "nan") == expected["location"]["lat"]
            assert float(text(address, "location/lon") or "nan") == expected["location"]["lon"]
    assert text(exported[str(first)], "description") == "<p>Gants fournis</p> ]]> fin"
    assert text(exported[str(first)], "organizationName") == "Les <Amis> & ]]> du Parc"
    assert text(exported[str(first)], "addresses/address/city") == "Lyon"


async def test_the_feed_follows_the_diffusion_rules_and_changes_when_missions_do(
        client: AsyncTestClient, db: asyncpg.Connection, redis: Redis) -> None:
    _, key = await reader(db, diffusion_departments=["38"])
    org = await organisation(db)
    grenoble = await mission(db, org, communes=("38185",))
    await mission(db, org, communes=("69123",))
    assert [text(element, "clientId") for element in missions_of(await feed(client, key))] == [str(grenoble)]
    later = await mission(db, org, communes=("38185",))
    # Kept while nothing is said to have changed, rebuilt once the missions' version moves.
    assert len(missions_of(await feed(client, key))) == 1
    await cache.invalidate(redis)
    assert [text(element, "clientId") for element in missions_of(await feed(client, key))] == [str(grenoble),
                                                                                               str(later)]


async def test_an_empty_feed_is_still_a_valid_document(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    assert missions_of(await feed(client, key)) == []
