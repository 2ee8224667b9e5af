"""The partner benchmark's own parts: the feed it imports (API Engagement's format, real places, the same bytes for a
seed), the points it reads around, the wrk script that asks each of them exactly once, and its verdict."""

from __future__ import annotations

import base64
import json
import random
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from defusedxml import ElementTree

from loadtests.bench_partners import (
    CATALOGUE,
    TARGETS,
    Commune,
    FeedServer,
    distinct_by_population,
    feed_xml,
    read_once,
    v0_paths,
    verdict,
)

# API Engagement's 20 domain slugs, as its spec lists them (§7.1).
API_ENGAGEMENT_DOMAINS = {
    "animaux", "autre", "batiment-industrie-logistique", "benevolat-competences", "communication", "culture-loisirs",
    "education", "emploi", "environnement", "gestion-finance-droit", "humanitaire", "memoire-et-citoyennete",
    "numerique", "prevention-protection", "recherche", "sante", "service-public-defense-securite", "sport",
    "solidarite-insertion", "vivre-ensemble",
}
# Load-test fixtures: real communes (INSEE code, name, postal codes, department, town-hall coordinates, population).
COMMUNES = [
    Commune("75056", "Paris", ("75001", "75011", "75020"), "75", 48.8566, 2.3522, 2_113_705),
    Commune("69123", "Lyon", ("69001", "69003"), "69", 45.7578, 4.8320, 520_774),
    Commune("13055", "Marseille", ("13001", "13008"), "13", 43.2965, 5.3698, 873_076),
    Commune("11069", "Carcassonne", ("11000",), "11", 43.2130, 2.3491, 46_031),
    Commune("48095", "Mende", ("48000",), "48", 44.5181, 3.5006, 8_840),
    Commune("2A004", "Ajaccio", ("20000", "20090"), "2A", 41.9192, 8.7386, 73_615),
    Commune("97411", "Saint-Denis", ("97400", "97490"), "974", -20.8823, 55.4504, 153_810),
    Commune("01001", "L'Abergement-Clémenciat", ("01400",), "01", 46.1534, 4.9260, 832),
]
TODAY = date(2026, 12, 2)


def missions_of(feed: bytes) -> list[Any]:
    root = ElementTree.fromstring(feed)
    assert root.tag == "source"
    return root.findall("mission")


def test_the_feed_is_api_engagement_s_format_with_every_mission_at_a_real_place() -> None:
    feed = feed_xml(COMMUNES, 300, 12, seed=7, today=TODAY)
    assert feed.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"<title><![CDATA[" in feed and b"<description><![CDATA[<p>" in feed  # HTML text travels as CDATA
    missions = missions_of(feed)
    assert len(missions) == 300
    assert len({m.findtext("clientId") for m in missions}) == 300
    assert len({m.findtext("organizationClientId") for m in missions}) <= 12
    by_name = {c.name: c for c in COMMUNES}
    for mission in missions:
        for tag in ("title", "description", "applicationUrl", "organizationName", "startAt", "endAt"):
            assert (mission.findtext(tag) or "").strip(), tag
        assert " " in mission.findtext("title")  # API Engagement refuses one-word titles
        assert mission.findtext("applicationUrl").startswith("https://")
        assert mission.findtext("domain") in API_ENGAGEMENT_DOMAINS
        assert 1 <= int(mission.findtext("places")) <= 20
        start = datetime.fromisoformat(mission.findtext("startAt")).date()
        assert TODAY < start < date.fromisoformat(mission.findtext("endAt"))
        (address,) = mission.findall("addresses/address")
        commune = by_name[address.findtext("city")]
        assert address.findtext("postalCode") in commune.postal_codes
        assert address.findtext("departmentCode") == commune.department_code
        assert abs(float(address.findtext("location/lat")) - commune.latitude) < 0.01
        assert abs(float(address.findtext("location/lon")) - commune.longitude) < 0.01


def test_the_feed_puts_missions_where_people_live_and_uses_every_domain() -> None:
    missions = missions_of(feed_xml(COMMUNES, 2000, 50, seed=3, today=TODAY))
    cities = Counter(m.findtext("addresses/address/city") for m in missions)
    assert cities["Paris"] > cities["Lyon"] > cities["Carcassonne"] > cities["Mende"]
    assert {m.findtext("domain") for m in missions} == API_ENGAGEMENT_DOMAINS == set(CATALOGUE)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_feed() -> None:
    assert feed_xml(COMMUNES, 50, 5, seed=1, today=TODAY) == feed_xml(COMMUNES, 50, 5, seed=1, today=TODAY)
    assert feed_xml(COMMUNES, 50, 5, seed=1, today=TODAY) != feed_xml(COMMUNES, 50, 5, seed=2, today=TODAY)


def test_the_feed_server_wants_the_partner_s_credentials_and_serves_the_whole_feed() -> None:
    body = feed_xml(COMMUNES, 20, 3, seed=1, today=TODAY)
    with FeedServer(body, "renfort", "s3cret") as server, httpx.Client(trust_env=False) as client:
        assert server.url.startswith("http://127.0.0.1:")
        assert client.get(server.url).status_code == 401
        assert client.get(server.url, auth=("renfort", "wrong")).status_code == 401
        response = client.get(server.url, auth=("renfort", "s3cret"))
        assert response.status_code == 200 and response.content == body
        assert response.headers["content-type"].startswith("application/xml")
        assert client.get(server.url.replace("feed.xml", "other")).status_code == 404
    assert len(server.fetches) == 1 and server.refused == 2
    assert server.expected == "Basic " + base64.b64encode(b"renfort:s3cret").decode()


def test_read_points_are_distinct_deterministic_and_drawn_by_population() -> None:
    first = distinct_by_population(COMMUNES, 5, random.Random(11))
    assert len({c.code for c in first}) == 5
    assert first == distinct_by_population(COMMUNES, 5, random.Random(11))
    drawn = Counter(c.name for seed in range(300) for c in distinct_by_population(COMMUNES, 2, random.Random(seed)))
    assert drawn["Paris"] > drawn["Lyon"] > drawn["Mende"] and drawn["Paris"] > 250
    with pytest.raises(ValueError, match="points"):
        distinct_by_population(COMMUNES, len(COMMUNES) + 1, random.Random(1))


def test_read_paths_ask_a_point_within_10_to_50_km_for_25_missions() -> None:
    paths = v0_paths(COMMUNES, random.Random(1))
    assert paths[1].startswith("/v0/mission?lat=45.7578&lon=4.8320&distance=")
    for path in paths:
        query = dict(pair.split("=") for pair in path.split("?", 1)[1].split("&"))
        assert query["limit"] == "25" and 10 <= int(query["distance"].removesuffix("km")) <= 50


class V0Like(BaseHTTPRequestHandler):
    """Answers like GET /v0/mission: `n` missions for ?n=…, a 500 when n is a multiple of 25."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    seen: ClassVar[Counter[str]] = Counter()
    keys: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        self.seen[self.path] += 1
        self.keys.add(self.headers.get("x-api-key", ""))
        number = int(self.path.rsplit("=", 1)[1])
        body = json.dumps({"ok": True, "total": number % 3, "data": [{"title": "Mission"}] * (number % 3),
                           "limit": 25, "skip": 0}).encode()
        self.send_response(500 if number % 25 == 0 else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def v0_like() -> Iterator[str]:
    V0Like.seen.clear()
    V0Like.keys.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), V0Like)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_wrk_script_asks_each_path_exactly_once_then_stops_and_checks_the_answers(
    v0_like: str, tmp_path: Path
) -> None:
    paths = [f"/v0/mission?n={number}" for number in range(1, 401)]
    run = read_once(v0_like, paths, "the-readers-key", tmp_path / "reads", connections=8, threads=2, cap_s=60)

    assert V0Like.seen == Counter(paths)  # every path, once: no result cache could have helped
    assert V0Like.keys == {"the-readers-key"}
    assert run.expected == run.answered == 400 and run.resent == 0
    assert run.statuses == {200: 384, 500: 16} and run.wellformed == 384
    assert run.errors == 16  # the 500s
    assert run.with_results == sum(1 for n in range(1, 401) if n % 25 and n % 3)
    assert 0 < run.elapsed_s < 30  # stopped once answered, long before wrk's -d
    assert run.req_per_s == pytest.approx(384 / run.elapsed_s)
    assert 0 < run.p50_ms <= run.p99_ms


def figures(**changes: Any) -> dict[str, Any]:
    good = {
        "import_seconds": 41.0, "import_status": "succeeded", "import_created": 20000, "import_refused": 0,
        "reimport_seconds": 12.0, "reimport_status": "succeeded", "reimport_unchanged": 20000,
        "reimport_created": 0, "reimport_updated": 0, "reimport_deleted": 0,
        "v0_req_per_s": 1200.0, "v0_p99_ms": 80.0, "v0_errors": 0, "v0_requests": 1000, "v0_with_results": 900,
        "total_seconds": 300.0,
    }
    return {**good, **changes}


def test_a_run_holding_every_target_passes_and_names_its_targets() -> None:
    result = verdict(figures(), 20000)
    assert result["targets_met"] is True and result["failed"] == []
    assert result["targets"] == TARGETS == {"import_seconds": 60, "reimport_seconds": 20, "v0_req_per_s": 1000,
                                            "v0_p99_ms": 100, "total_seconds": 600}
    assert verdict(figures(import_seconds=60, reimport_seconds=20, v0_req_per_s=1000, v0_p99_ms=100), 20000)[
        "targets_met"] is True  # the bounds themselves hold


@pytest.mark.parametrize(("changes", "check"), [
    ({"import_seconds": 60.5}, "import_seconds"),
    ({"import_seconds": None, "import_status": "timeout"}, "import_seconds"),
    ({"reimport_seconds": 21}, "reimport_seconds"),
    ({"v0_req_per_s": 999.9}, "v0_req_per_s"),
    ({"v0_p99_ms": 100.1}, "v0_p99_ms"),
    ({"total_seconds": 601}, "total_seconds"),
    ({"import_status": "failed"}, "import_complete"),
    ({"import_created": 19990, "import_refused": 10}, "import_complete"),
    ({"reimport_unchanged": 19999, "reimport_updated": 1}, "reimport_unchanged"),
    ({"reimport_created": 1}, "reimport_unchanged"),
    ({"reimport_deleted": 3}, "reimport_unchanged"),
    ({"v0_errors": 1}, "v0_errors"),
    ({"v0_requests": 0}, "v0_errors"),
    ({"v0_with_results": 0}, "v0_results"),
    ({"v0_sample_error": "ReadTimeout: timed out"}, "v0_sample"),
])
def test_a_missed_target_or_a_wrong_count_fails_the_run(changes: dict[str, Any], check: str) -> None:
    result = verdict(figures(**changes), 20000)
    assert result["targets_met"] is False and check in result["failed"]
