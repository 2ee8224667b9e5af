"""National campaigns: administrators and national coordinators create them with a real image (checked by its bytes,
bounded in size), managers tag their missions, and the campaign page lists its missions near a postal code from the
search cache; the home page shows today's campaigns."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.campaigns.images import ImageRefused, sniff
from app.main import create_app
from app.settings import Settings
from app.volunteers import age
from tests.test_missions import validated_organisation
from tests.test_organisations import post_form, sign_in
from tests.test_signin import csrf_token

ADMIN_PAGE = "/administration/campagnes"
TODAY = age.today()  # France's day, as the pages count campaign windows (not the server's)


def png(width: int = 3, height: int = 2) -> bytes:
    """A real PNG: signature, IHDR, one IDAT of red pixels, IEND."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def campaign_form(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Collecte nationale des banques alimentaires",
        "slug": "collecte-nationale",
        "text": "Trois jours pour remplir les rayons.\n\nRejoignez une équipe près de chez vous.",
        "starts_on": (TODAY - timedelta(days=1)).isoformat(),
        "ends_on": (TODAY + timedelta(days=2)).isoformat(),
        "domains": ["solidarite-insertion"],
        "image_alt": "Des bénévoles trient des conserves",
    }
    body.update(overrides)
    return body


async def submit(client: AsyncTestClient, path: str, data: dict[str, Any],
                 image: tuple[str, bytes, str] | None = None) -> Any:
    token = csrf_token((await client.get(f"{ADMIN_PAGE}/nouvelle")).text)
    files = {"image": image} if image else {"image": ("", b"", "application/octet-stream")}
    return await client.post(path, data={**data, "_csrf_token": token}, files=files, follow_redirects=False)


async def create_campaign(client: AsyncTestClient, image: tuple[str, bytes, str] | None = None,
                          **overrides: Any) -> Any:
    return await submit(client, f"{ADMIN_PAGE}/nouvelle", campaign_form(**overrides), image)


@pytest.fixture
async def other(settings: Settings) -> Any:
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


@pytest.fixture(autouse=True)
async def no_campaigns(db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE campaigns, campaign_images RESTART IDENTITY CASCADE")


async def insert_mission(db: asyncpg.Connection, organisation_id: int, title: str, domain: str,
                         commune_code: str) -> int:
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date,"
        " places, open_to_minors, priority, status) VALUES ($1, $2, 'Une mission de test assez longue.',"
        " $3, '{}', false, current_date, 5, false, false, 'published') RETURNING id",
        organisation_id, title, domain,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, 'Rue', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
        mission_id, commune_code,
    )
    return mission_id


def listed(html: str) -> set[int]:
    return {int(number) for number in re.findall(r'data-mission="(\d+)"', html)}


# The image ------------------------------------------------------------------------------------------------------


def test_images_are_recognised_by_their_bytes_with_their_dimensions() -> None:
    assert (sniff(png(640, 480)).content_type, sniff(png(640, 480)).width, sniff(png(640, 480)).height) == (
        "image/png", 640, 480)
    jpeg = (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
            + b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 300, 400, 3) + b"\x00" * 9 + b"\xff\xd9")
    assert (sniff(jpeg).content_type, sniff(jpeg).width, sniff(jpeg).height) == ("image/jpeg", 400, 300)
    vp8x = b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (799).to_bytes(3, "little") + (599).to_bytes(3, "little")
    assert (sniff(vp8x).content_type, sniff(vp8x).width, sniff(vp8x).height) == ("image/webp", 800, 600)
    for refused in (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', b"GIF89a....",
                    b"\x89PNG\r\n\x1a\n", png(0, 5), png(20_000, 10)):
        with pytest.raises(ImageRefused):
            sniff(refused)


async def test_an_admin_creates_a_campaign_with_a_png_served_with_its_type_nosniff_and_a_long_cache(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin.campagnes@example.org", admin=True)
    picture = png(4, 3)
    response = await create_campaign(client, ("affiche.png", picture, "image/png"))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{ADMIN_PAGE}?fait=enregistree"
    listing = (await client.get(response.headers["location"])).text
    assert "Campagne enregistrée." in listing and "Collecte nationale des banques alimentaires" in listing
    row = await db.fetchrow("SELECT i.content_type, i.size, i.width, i.height, i.data FROM campaigns c "
                            "JOIN campaign_images i ON i.id = c.image_id WHERE c.slug = 'collecte-nationale'")
    assert (row["content_type"], row["size"], row["width"], row["height"], bytes(row["data"])) == (
        "image/png", len(picture), 4, 3, picture)

    page = await other.get("/campagnes/collecte-nationale")
    assert page.status_code == 200
    assert "<p>Trois jours pour remplir les rayons.</p>" in page.text
    match = re.search(r'<img class="mb-3" src="(/campagnes/images/\d+-[0-9a-f]{16}\.png)" '
                      r'alt="Des bénévoles trient des conserves" width="4" height="3"', page.text)
    assert match, page.text
    served = await other.get(match[1])
    assert served.status_code == 200 and served.content == picture
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    again = await other.get(match[1], headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304
    assert (await other.get(match[1].replace(".png", ".jpg"))).status_code == 404
    assert (await other.get(re.sub(r"-[0-9a-f]{16}", "-" + "0" * 16, match[1]))).status_code == 404


async def test_a_text_file_named_png_is_refused_with_a_french_message(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin.campagnes@example.org", admin=True)
    response = await create_campaign(client, ("affiche.png", b"Bonjour, je ne suis pas une image.\n", "image/png"))
    assert response.status_code == 400
    assert "n&#39;est pas une image PNG, JPEG ou WebP" in response.text
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    assert (await create_campaign(client, ("affiche.png", svg, "image/png"))).status_code == 400
    assert await db.fetchval("SELECT count(*) FROM campaigns") == 0


async def test_an_image_over_2_mb_is_refused_and_a_far_larger_body_stopped_early(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin.campagnes@example.org", admin=True)
    heavy = png(10, 10) + b"\x00" * (2 * 1024 * 1024)
    response = await create_campaign(client, ("affiche.png", heavy, "image/png"))
    assert response.status_code == 400
    assert "dépasse 2 Mo" in response.text
    huge = png(10, 10) + b"\x00" * (8 * 1024 * 1024)
    response = await create_campaign(client, ("affiche.png", huge, "image/png"))
    assert response.status_code == 413
    assert "trop volumineuse" in response.text
    assert await db.fetchval("SELECT count(*) FROM campaign_images") == 0


async def test_only_admins_and_national_coordinators_manage_campaigns(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "coordination.rhone@example.org", departments=("69",))
    assert (await client.get(ADMIN_PAGE)).status_code == 403
    assert (await post_form(client, f"{ADMIN_PAGE}/nouvelle", {"name": "x"})).status_code == 403
    await sign_in(other, redis, db, "benevole@example.org")
    assert (await other.get(f"{ADMIN_PAGE}/nouvelle")).status_code == 403

    await sign_in(client, redis, db, "coordination.nationale@example.org", departments=(None,))
    assert (await client.get(ADMIN_PAGE)).status_code == 200
    assert (await create_campaign(client)).status_code == 303
    campaign_id = await db.fetchval("SELECT id FROM campaigns WHERE slug = 'collecte-nationale'")
    edit = await client.get(f"{ADMIN_PAGE}/{campaign_id}/modifier")
    assert edit.status_code == 200 and 'value="collecte-nationale"' in edit.text
    renamed = await submit(client, f"{ADMIN_PAGE}/{campaign_id}/modifier", campaign_form(name="Collecte d'hiver"))
    assert renamed.status_code == 303
    assert await db.fetchval("SELECT name FROM campaigns WHERE id = $1", campaign_id) == "Collecte d'hiver"
    assert (await client.get(f"{ADMIN_PAGE}/999999/modifier")).status_code == 404

    # A revoked role stops at the next request.
    await db.execute("DELETE FROM coordinator_scopes")
    assert (await client.get(ADMIN_PAGE)).status_code == 403


async def test_hostile_or_wrong_fields_get_a_400_with_a_french_message_per_field(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin.campagnes@example.org", admin=True)
    cases = {
        "name": campaign_form(name="Nul\x00"),
        "image_alt": campaign_form(image_alt="Contrôle\x85"),
        "text": campaign_form(text="x" * 5_001),
        "slug": campaign_form(slug="Pas Une Adresse!"),
        "starts_on": campaign_form(starts_on="demain"),
        "ends_on": campaign_form(ends_on=(TODAY - timedelta(days=5)).isoformat()),
        "domains": campaign_form(domains=["inconnu"]),
    }
    for field, form in cases.items():
        response = await create_campaign(client, **{key: value for key, value in form.items()})
        assert response.status_code == 400, field
        assert f'id="{field}-error"' in response.text or f"#{field}" in response.text, field
    missing_alt = await create_campaign(client, ("a.png", png(), "image/png"), image_alt="")
    assert missing_alt.status_code == 400 and "Décrivez l&#39;image" in missing_alt.text
    long_name = await create_campaign(client, name="n" * 5_000)
    assert long_name.status_code == 400 and "ne doit pas dépasser" in long_name.text
    token = csrf_token((await client.get(f"{ADMIN_PAGE}/nouvelle")).text)
    text_as_file = await client.post(f"{ADMIN_PAGE}/nouvelle", data={**campaign_form(), "image": "x",
                                                                    "_csrf_token": token}, follow_redirects=False)
    assert text_as_file.status_code == 400
    assert await db.fetchval("SELECT count(*) FROM campaigns") == 0

    assert (await create_campaign(client)).status_code == 303
    taken = await create_campaign(client, name="Une autre")
    assert taken.status_code == 400 and "déjà cette adresse" in taken.text


# The campaign page ----------------------------------------------------------------------------------------------


async def test_a_tagged_mission_and_one_of_the_campaign_domains_appear_near_a_postal_code_others_not(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "structure.campagne@example.org")
    await create_campaign(other)  # `other` is the admin who validated the organisation
    tagged = await insert_mission(db, organisation_id, "Tri des dons à Lyon", "education-pour-tous", "69123")
    in_domain = await insert_mission(db, organisation_id, "Distribution à Villeurbanne", "solidarite-insertion",
                                     "69266")
    untagged = await insert_mission(db, organisation_id, "Cours de soutien à Lyon", "education-pour-tous", "69123")
    far_away = await insert_mission(db, organisation_id, "Distribution à Marseille", "solidarite-insertion", "13055")

    page = await other.get("/campagnes/collecte-nationale", params={"postal_code": "69001"})
    assert page.status_code == 200
    assert listed(page.text) == {in_domain}

    tags_page = f"/organisations/{organisation_id}/missions/{tagged}/campagnes"
    choose = await client.get(tags_page)
    assert choose.status_code == 200 and "Collecte nationale des banques alimentaires" in choose.text
    campaign_id = await db.fetchval("SELECT id FROM campaigns")
    response = await post_form(client, tags_page, {"campaign": str(campaign_id)}, tags_page)
    assert response.status_code == 303
    assert "Campagnes de la mission enregistrées." in (await client.get(response.headers["location"])).text

    near = await other.get("/campagnes/collecte-nationale", params={"postal_code": "69001"})
    assert listed(near.text) == {tagged, in_domain}
    assert untagged not in listed(near.text) and far_away not in listed(near.text)
    everywhere = await other.get("/campagnes/collecte-nationale")
    assert listed(everywhere.text) == {tagged, in_domain, far_away}
    assert (await other.get("/campagnes/collecte-nationale", params={"postal_code": "00000"})).status_code == 400

    # Untagged again: gone from the page at once (the search cache is invalidated).
    assert (await post_form(client, tags_page, {}, tags_page)).status_code == 303
    assert listed((await other.get("/campagnes/collecte-nationale", params={"postal_code": "69001"})).text) == {
        in_domain}
    # Someone else's mission, an unknown one, a hostile value.
    assert (await post_form(client, tags_page, {"campaign": "1\x00"}, tags_page)).status_code == 400
    assert (await client.get(f"/organisations/{organisation_id}/missions/999999/campagnes")).status_code == 404
    assert (await other.get(f"/organisations/{organisation_id}/missions/{tagged}/campagnes")).status_code == 403


async def test_unknown_slug_404_hostile_slug_400_and_outside_its_window_the_page_still_answers(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    missing = await client.get("/campagnes/nulle-part")
    assert missing.status_code == 404 and "Cette campagne n&#39;existe pas" in missing.text
    assert (await client.get("/campagnes/" + "a" * 5_000)).status_code == 400
    assert (await client.get("/campagnes/Mauvaise%00Adresse")).status_code == 400
    for path in ("/campagnes/images", "/campagnes/images/abc", "/campagnes/images/1-0123456789abcdef.svg",
                 "/campagnes/images/99999999999999999999-0123456789abcdef.png"):
        assert (await client.get(path)).status_code == 404, path
    await db.execute(
        "INSERT INTO campaigns (slug, name, text, starts_on, ends_on) VALUES "
        "('passee', 'Campagne passée', 'Texte.', $1, $2), ('future', 'Campagne future', 'Texte.', $3, $4)",
        TODAY - timedelta(days=30), TODAY - timedelta(days=20), TODAY + timedelta(days=10),
        TODAY + timedelta(days=12),
    )
    ended = await client.get("/campagnes/passee")
    assert ended.status_code == 200 and "Cette campagne est terminée" in ended.text
    upcoming = await client.get("/campagnes/future")
    assert upcoming.status_code == 200 and "Cette campagne commence le" in upcoming.text


async def test_the_home_page_shows_only_the_campaigns_running_today(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO campaigns (slug, name, text, starts_on, ends_on) VALUES "
        "('passee', 'Campagne passée', 'Texte.', $1, $2), ('future', 'Campagne future', 'Texte.', $3, $4)",
        TODAY - timedelta(days=30), TODAY - timedelta(days=1), TODAY + timedelta(days=1), TODAY + timedelta(days=12),
    )
    await sign_in(client, redis, db, "admin.campagnes@example.org", admin=True)
    assert (await create_campaign(client, ("affiche.png", png(), "image/png"))).status_code == 303
    home = await other.get("/")
    assert home.status_code == 200
    assert re.findall(r'data-campagne="([a-z0-9-]+)"', home.text) == ["collecte-nationale"]
    assert 'alt="Des bénévoles trient des conserves"' in home.text
    assert 'href="/campagnes/collecte-nationale"' in home.text
    assert await redis.exists("renfort:campaigns:current")  # the list the next builds read, without SQL
    running = await other.get("/campagnes")
    assert re.findall(r'data-campagne="([a-z0-9-]+)"', running.text) == ["collecte-nationale"]

    # Ended since: gone from the home page after the change commits.
    campaign_id = await db.fetchval("SELECT id FROM campaigns WHERE slug = 'collecte-nationale'")
    ended = campaign_form(starts_on=(TODAY - timedelta(days=3)).isoformat(),
                          ends_on=(TODAY - timedelta(days=1)).isoformat())
    assert (await submit(client, f"{ADMIN_PAGE}/{campaign_id}/modifier", ended)).status_code == 303
    assert "data-campagne" not in (await other.get("/")).text


async def test_an_edit_replaces_or_removes_the_image_and_the_old_bytes_go(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin.campagnes@example.org", admin=True)
    assert (await create_campaign(client, ("a.png", png(2, 2), "image/png"))).status_code == 303
    campaign_id = await db.fetchval("SELECT id FROM campaigns")
    first = await db.fetchval("SELECT image_id FROM campaigns")
    edit_path = f"{ADMIN_PAGE}/{campaign_id}/modifier"
    kept = await submit(client, edit_path, campaign_form(image_alt=""))
    assert kept.status_code == 400 and "Décrivez l&#39;image" in kept.text  # the kept image still needs its text
    assert (await submit(client, edit_path, campaign_form(), ("b.png", png(5, 4), "image/png"))).status_code == 303
    second = await db.fetchval("SELECT image_id FROM campaigns")
    assert second != first
    assert [row["id"] for row in await db.fetch("SELECT id FROM campaign_images")] == [second]
    assert 'width="5" height="4"' in (await client.get("/campagnes/collecte-nationale")).text
    removed = await submit(client, edit_path, campaign_form(image_alt="", remove_image="1"))
    assert removed.status_code == 303
    assert await db.fetchval("SELECT count(*) FROM campaign_images") == 0
    assert await db.fetchval("SELECT image_alt FROM campaigns") is None
    assert "/campagnes/images/" not in (await client.get("/campagnes/collecte-nationale")).text


async def test_the_campaigns_page_lists_running_ones_then_those_to_come(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO campaigns (slug, name, text, starts_on, ends_on) VALUES "
        "('en-cours', 'En cours', 'Texte.', $1, $2), ('bientot', 'Bientôt', 'Texte.', $3, $4),"
        " ('finie', 'Finie', 'Texte.', $5, $5)",
        TODAY, TODAY, TODAY + timedelta(days=3), TODAY + timedelta(days=4), TODAY - timedelta(days=2),
    )
    page = (await client.get("/campagnes")).text
    assert re.findall(r'data-campagne="([a-z0-9-]+)"', page) == ["en-cours"]
    assert re.findall(r'data-a-venir="([a-z0-9-]+)"', page) == ["bientot"]
    assert "Finie" not in page
