"""Parsing partner feeds in API Engagement's format: every field PartnerRecord carries, both address formats,
duplicates and missing clientIds reported, and hostile or broken XML refused with a clear French reason."""

from __future__ import annotations

import io
import time

import pytest

from app.partners.feeds import FeedError
from app.partners.feeds.parse import (
    DUPLICATE,
    MAX_DEPTH,
    MAX_ELEMENTS_PER_MISSION,
    MAX_MISSIONS,
    MAX_REFUSALS,
    NO_CLIENT_ID,
    ParsedFeed,
    parse_feed,
)

MINIMAL = b"""<?xml version="1.0" encoding="UTF-8"?>
<source>
  <publisher>Plateforme X</publisher>
  <mission>
    <clientId><![CDATA[abc-123]]></clientId>
    <title><![CDATA[Aide aux devoirs pour coll\xc3\xa9giens]]></title>
    <description><![CDATA[<p>Soutien & entraide</p>]]></description>
    <applicationUrl><![CDATA[https://partner.example/m/abc-123]]></applicationUrl>
    <startAt>2025-01-31</startAt><endAt>2025-06-30</endAt>
    <domain>education</domain><activity>soutien-scolaire, animation ,</activity>
    <remote>no</remote><openToMinors>yes</openToMinors><reducedMobilityAccessible>0</reducedMobilityAccessible>
    <places>3</places><schedule>Le mercredi</schedule><type>benevolat</type>
    <organizationName><![CDATA[Asso X]]></organizationName>
    <organizationClientId>org-1</organizationClientId><organizationRNA>W751234567</organizationRNA>
    <organizationSiren>12345678901234</organizationSiren><organizationUrl>https://asso.example</organizationUrl>
    <organizationType>Association</organizationType><organizationDescription>Une asso</organizationDescription>
    <organizationPostCode>75011</organizationPostCode><organizationCity>Paris</organizationCity>
    <addresses>
      <address><street>1 rue X</street><postalCode>75011</postalCode><city>Paris</city>
        <departmentCode>75</departmentCode>
        <departmentName>Paris</departmentName><region>\xc3\x8ele-de-France</region><country>FR</country>
        <location><lat>48.85</lat><lon>2.37</lon></location></address>
      <address><postalCode>1000</postalCode><city>Bourg-en-Bresse</city></address>
    </addresses>
  </mission>
</source>"""


def parsed(xml: bytes | str) -> ParsedFeed:
    return parse_feed(io.BytesIO(xml.encode() if isinstance(xml, str) else xml))


def refused(xml: bytes | str) -> str:
    with pytest.raises(FeedError) as caught:
        parsed(xml)
    return caught.value.message


def feed(*missions: str) -> str:
    return "<?xml version='1.0'?><source>" + "".join(f"<mission>{body}</mission>" for body in missions) + "</source>"


def test_minimal_feed_gives_every_field_raw() -> None:
    result = parsed(MINIMAL)
    assert result.received == 1 and not result.refusals
    [record] = result.records
    assert record.client_id == "abc-123"
    assert record.title == "Aide aux devoirs pour collégiens"
    assert record.description == "<p>Soutien & entraide</p>"
    assert record.application_url == "https://partner.example/m/abc-123"
    assert (record.start_at, record.end_at) == ("2025-01-31", "2025-06-30")
    assert record.domain == "education" and record.activities == ["soutien-scolaire", "animation"]
    assert (record.remote, record.open_to_minors, record.reduced_mobility_accessible) == ("no", "yes", "0")
    assert (record.places, record.schedule, record.type) == ("3", "Le mercredi", "benevolat")
    assert (record.organization_name, record.organization_client_id, record.organization_rna) == \
        ("Asso X", "org-1", "W751234567")
    assert (record.organization_siret, record.organization_siren) == ("12345678901234", "123456789")
    assert record.organization_url == "https://asso.example" and record.organization_type == "Association"
    assert record.organization_post_code == "75011" and record.organization_city == "Paris"
    first, second = record.addresses or []
    assert (first.street, first.postal_code, first.city, first.department_code, first.region, first.country) == \
        ("1 rue X", "75011", "Paris", "75", "Île-de-France", "FR")
    assert (first.lat, first.lon) == (48.85, 2.37)
    assert second.postal_code == "01000" and second.lat is None


def test_legacy_flat_address_tags_and_their_locations() -> None:
    result = parsed(feed(
        "<clientId>a</clientId><adresse>2 place Y</adresse><postalCode>6000</postalCode><city>Nice</city>"
        "<lonlat>7.26,43.7</lonlat>",
        "<clientId>b</clientId><city>Lyon</city><lonlat>45.76,4.83</lonlat>",  # swapped: France's lon is 4.3–8
        "<clientId>c</clientId><city>Paris</city><lonLat>48.85,2.35</lonLat>",  # Service Civique: lat first
        "<clientId>d</clientId><city>Brest</city><location><lat>48.39</lat><lon>-4.49</lon></location>",
        "<clientId>e</clientId><city>Nulle part</city><lonlat>500,600</lonlat>",
        "<clientId>f</clientId><title>Sans adresse</title>",
        "<clientId>g</clientId><city>Genève</city><postalCode>1201</postalCode><country>CH</country>",
    ))
    by_id = {record.client_id: record for record in result.records}
    nice = (by_id["a"].addresses or [])[0]
    assert (nice.street, nice.postal_code, nice.lat, nice.lon) == ("2 place Y", "06000", 43.7, 7.26)
    lyon = (by_id["b"].addresses or [])[0]
    assert (lyon.lat, lyon.lon) == (45.76, 4.83)
    paris = (by_id["c"].addresses or [])[0]
    assert (paris.lat, paris.lon) == (48.85, 2.35)
    brest = (by_id["d"].addresses or [])[0]
    assert (brest.lat, brest.lon) == (48.39, -4.49)
    nowhere = (by_id["e"].addresses or [])[0]
    assert nowhere.lat is None and nowhere.lon is None
    assert by_id["f"].addresses is None
    assert (by_id["g"].addresses or [])[0].postal_code == "1201"  # padded in France only


def test_duplicates_and_missing_client_ids_are_reported_not_lost() -> None:
    result = parsed(feed(
        "<clientId>same</clientId><title>Premier</title>",
        "<title>Sans identifiant</title>",
        "<clientId>same</clientId><title>Second</title>",
        "<clientId>   </clientId><title>Vide</title>",
        "<clientId>other</clientId><title>Autre</title>",
    ))
    assert result.received == 5
    assert [(record.client_id, record.title) for record in result.records] == [("same", "Premier"),
                                                                                 ("other", "Autre")]
    assert result.refusals == [
        {"clientId": None, "reason": NO_CLIENT_ID},
        {"clientId": "same", "reason": DUPLICATE},
        {"clientId": None, "reason": NO_CLIENT_ID},
    ]
    assert "double" in DUPLICATE and "clientId" in NO_CLIENT_ID


def test_a_feed_whose_missions_have_no_client_id_is_refused_whole() -> None:
    message = refused(feed("<id>a-1</id><title>Renommé</title>", "<id>a-2</id><title>Aussi</title>"))
    assert "clientId" in message and "rien n'a été importé ni supprimé" in message


def test_a_mission_with_too_many_elements_and_a_feed_with_too_many_missions_are_refused() -> None:
    crowded = feed("<clientId>a</clientId>" + "<tag>x</tag>" * (MAX_ELEMENTS_PER_MISSION + 1))
    assert f"plus de {MAX_ELEMENTS_PER_MISSION} éléments" in refused(crowded)
    assert f"plus de {MAX_MISSIONS} missions" in refused(
        "<source>" + "<mission><clientId>a</clientId></mission>" * (MAX_MISSIONS + 1) + "</source>")


def test_refusals_are_all_counted_but_only_the_first_are_kept() -> None:
    result = parsed(feed("<clientId>kept</clientId>", *["<title>Sans identifiant</title>"] * (MAX_REFUSALS + 50)))
    assert result.refused == MAX_REFUSALS + 50 and len(result.refusals) == MAX_REFUSALS


def test_markup_outside_cdata_is_kept_as_text() -> None:
    [record] = parsed(feed("<clientId>h</clientId><description><p>Bonjour <b>à</b> tous</p></description>")).records
    assert record.description == "Bonjour à tous"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<source><mission><clientId>x</clientId><title>&lol4;</title></mission></source>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE source [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<source><mission><clientId>x</clientId><title>&secret;</title></mission></source>"""
EXTERNAL_DTD = """<?xml version="1.0"?><!DOCTYPE source SYSTEM "http://127.0.0.1:9/evil.dtd">
<source><mission><clientId>x</clientId></mission></source>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_dtds_and_entities_are_refused(xml: str) -> None:
    message = refused(xml)
    assert "DTD" in message and "root" not in message


@pytest.mark.parametrize(("xml", "expected"), [
    ("", "bien formé"),
    ("ceci n'est pas du XML", "bien formé"),
    ('{"missions": []}', "bien formé"),
    ("<source><mission><clientId>x</clientId></source>", "bien formé"),
    ("<source><mission><clientId>&undefined;</clientId></mission></source>", "bien formé"),
    ("<source>\x00</source>", "bien formé"),
    ("<source></source>", "aucune mission"),
    ("<source><publisher>X</publisher></source>", "aucune mission"),
    ("<feed><mission><clientId>x</clientId></mission></feed>", "racine"),
    ("<source>" + "<a>" * 100_000 + "</a>" * 100_000 + "</source>", f"{MAX_DEPTH} niveaux"),
    ("<source><mission>" + "<b>" * 50 + "</b>" * 50 + "</mission></source>", f"{MAX_DEPTH} niveaux"),
])
def test_broken_empty_or_odd_feeds_are_refused_clearly(xml: str, expected: str) -> None:
    assert expected in refused(xml)


def test_missions_nested_deeper_are_not_missions() -> None:
    result = parsed("<source><mission><clientId>a</clientId></mission>"
                    "<group><mission><clientId>b</clientId></mission></group></source>")
    assert [record.client_id for record in result.records] == ["a"]


def test_hostile_values_stay_plain_text() -> None:
    long_title = "é" * 5_000
    [record] = parsed(feed(f"<clientId>z</clientId><title>{long_title}</title><places>beaucoup</places>"
                           "<openToMinors>peut-être</openToMinors><activity></activity>")).records
    assert record.title == long_title and record.places == "beaucoup" and record.open_to_minors == "peut-être"
    assert record.activities is None


def test_twenty_thousand_missions_parse_in_a_few_seconds() -> None:
    mission = (
        "<mission><clientId><![CDATA[m-{i}]]></clientId><title><![CDATA[Aide aux devoirs {i}]]></title>"
        "<description><![CDATA[<p>Une description de la mission {i}, avec du <b>HTML</b>, le lieu, les horaires "
        "et le public accueilli ; assez longue pour ressembler à un vrai flux.</p>]]></description>"
        "<applicationUrl>https://partner.example/m/{i}</applicationUrl><startAt>2025-01-31</startAt>"
        "<endAt>2025-06-30</endAt><domain>education</domain><activity>soutien-scolaire</activity>"
        "<remote>no</remote><openToMinors>yes</openToMinors><places>3</places>"
        "<organizationName><![CDATA[Asso {i}]]></organizationName><organizationClientId>org-{i}</organizationClientId>"
        "<addresses><address><street>1 rue X</street><postalCode>75011</postalCode><city>Paris</city>"
        "<country>FR</country><location><lat>48.85</lat><lon>2.37</lon></location></address></addresses></mission>"
    )
    body = ("<?xml version='1.0' encoding='UTF-8'?><source>"
            + "".join(mission.replace("{i}", str(i)) for i in range(20_000)) + "</source>").encode()
    started = time.perf_counter()
    result = parsed(body)
    elapsed = time.perf_counter() - started
    assert result.received == 20_000 and len(result.records) == 20_000
    assert result.records[-1].client_id == "m-19999"
    assert elapsed < 15, f"{elapsed:.1f} s for {len(body) / 1e6:.0f} MB"  # ~3 s on a quiet machine
