"""The public directory of validated organisations: search by name with or without accents, by department and
type, paginated with the filters kept in the links; only validated organisations; hostile input refused."""

from __future__ import annotations

import re

import asyncpg
from litestar.testing import AsyncTestClient

from tests.test_territories import BOURG, LYON, organisation


def listed(page: str) -> list[str]:
    return re.findall(r'<h2 class="heading-s mission-card__title"><a href="[^"]+">([^<]+)</a>', page)


async def test_directory_finds_names_with_or_without_accents_and_only_validated(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await organisation(db, "Les Restos du Cœur", LYON)
    await organisation(db, "Élan Solidaire", BOURG)
    await organisation(db, "Coeur en attente", LYON, status="awaiting_validation")
    await organisation(db, "Coeur refusé", LYON, status="refused")
    await organisation(db, "Cœur suspendu", LYON, status="suspended")

    everyone = await client.get("/organisations")
    assert everyone.status_code == 200
    assert sorted(listed(everyone.text)) == ["Les Restos du Cœur", "Élan Solidaire"]
    for keyword in ("coeur", "CŒUR", "cœur", "restos du c"):
        assert listed((await client.get("/organisations", params={"q": keyword})).text) == ["Les Restos du Cœur"]
    for keyword in ("elan", "Élan", "ÉLAN soli"):
        assert listed((await client.get("/organisations", params={"q": keyword})).text) == ["Élan Solidaire"]
    assert listed((await client.get("/organisations", params={"q": "100%"})).text) == []  # LIKE characters escaped
    assert "Aucune structure ne correspond" in (await client.get("/organisations", params={"q": "zzz"})).text


async def test_directory_filters_by_department_and_type(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await organisation(db, "Association lyonnaise", LYON)
    await organisation(db, "Mairie de Lyon", LYON, kind="collectivite")
    await organisation(db, "Association de l'Ain", BOURG)
    assert sorted(listed((await client.get("/organisations", params={"departement": "69"})).text)) == [
        "Association lyonnaise", "Mairie de Lyon"]
    assert listed((await client.get("/organisations", params={"departement": "01"})).text) == [
        "Association de l&#39;Ain"]
    both = await client.get("/organisations", params={"departement": "69", "type": "collectivite"})
    assert listed(both.text) == ["Mairie de Lyon"]
    assert '<option value="69" selected>' in both.text and '<option value="collectivite" selected>' in both.text


async def test_directory_pages_keep_the_filters(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    for number in range(25):
        await organisation(db, f"Association numéro {number:02d}", LYON)
    await organisation(db, "Association de l'Ain", BOURG)
    first = await client.get("/organisations", params={"q": "association", "departement": "69"})
    names = listed(first.text)
    assert len(names) == 20 and names[0] == "Association numéro 00"
    assert "25 structure(s)" in first.text
    assert 'href="/organisations?q=association&amp;departement=69&amp;page=2"' in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await client.get("/organisations", params={"q": "association", "departement": "69", "page": "2"})
    assert listed(second.text) == [f"Association numéro {number}" for number in range(20, 25)]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    assert '<span aria-current="page">2</span>' in second.text
    beyond = await client.get("/organisations", params={"page": "9"})
    assert beyond.status_code == 200 and listed(beyond.text) == []


async def test_directory_refuses_hostile_input_with_french_messages(client: AsyncTestClient) -> None:
    for params, message in (({"q": "a\x00b"}, "non autorisé"), ({"q": "x" * 5000}, "ne doit pas dépasser"),
                            ({"departement": "zz"}, "par exemple 69"), ({"type": "secte"}, "dans la liste"),
                            ({"page": "0"}, "Le numéro de page"), ({"page": "99999999999"}, "Le numéro de page")):
        response = await client.get("/organisations", params=params)
        assert response.status_code == 400, params
        assert message in response.text
    assert (await client.get("/organisations/nouvelle", follow_redirects=False)).status_code in (302, 303)
