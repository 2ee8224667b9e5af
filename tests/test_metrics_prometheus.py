"""Debian's Prometheus scrapes the platform with ops/prometheus's configuration (its target, token file and interval
changed for a throwaway run), loads ops/prometheus/alerts.yml, and every metric the Grafana dashboard and the
alerts name exists in a real scrape."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from ops.services import free_port
from queues.mail_keys import DROPPED
from tests.conftest import REDIS_URL, ROOT
from tests.factories import signup
from tests.test_metrics import TwoWorkerWeb, running

PROMETHEUS, PROMTOOL = Path("/usr/bin/prometheus"), Path("/usr/bin/promtool")
OPS = ROOT / "ops" / "prometheus"
METRIC = re.compile(r"\b(renfort_[a-zA-Z0-9_]+|up)\b(?!\s*[(])")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")



def promtool(*args: str) -> str:
    result = subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def throwaway_config(folder: Path, web: TwoWorkerWeb) -> Path:
    """ops/prometheus/prometheus.yml with this run's target, token file and 1 s intervals; alerts.yml beside it."""
    token = folder / "ops-token"
    token.write_text("ops-test-token\n")
    token.chmod(0o600)
    config = (OPS / "prometheus.yml").read_text()
    for old, new in (("/etc/prometheus/renfort-ops-token", str(token)), ("127.0.0.1:8000", f"127.0.0.1:{web.port}"),
                     ("scrape_interval: 15s", "scrape_interval: 1s"), ("scrape_timeout: 10s", "scrape_timeout: 1s"),
                     ("evaluation_interval: 15s", "evaluation_interval: 1s")):
        assert old in config, old
        config = config.replace(old, new)
    shutil.copy(OPS / "alerts.yml", folder / "alerts.yml")
    path = folder / "prometheus.yml"
    path.write_text(config)
    return path


@contextlib.contextmanager
def prometheus(config: Path, folder: Path) -> Iterator[str]:
    port = free_port()
    with open(folder / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def query(base: str, expression: str) -> list[dict[str, Any]]:
    answer = httpx.get(base + "/api/v1/query", params={"query": expression}, timeout=5).json()
    assert answer["status"] == "success", (expression, answer)
    return list(answer["data"]["result"])


def wait_scraped(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, AssertionError):
            if [sample["value"][1] for sample in query(base, 'up{job="renfort"}')] == ["1"]:
                return
        time.sleep(0.5)
    raise AssertionError("Prometheus never scraped /metrics successfully")


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "ops" / "grafana" / "renfort.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def names_in(expression: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expression)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    return {name for name in METRIC.findall(without_labels) if name != "up"}


def scraped_names(text: str) -> set[str]:
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    histograms = {line.split(" ")[2] for line in text.splitlines() if line.endswith(" histogram")}
    return samples | histograms


def test_prometheus_scrapes_and_the_dashboard_and_alerts_name_only_real_metrics(tmp_path: Path) -> None:
    assert PROMETHEUS.exists() and PROMTOOL.exists(), "Debian's prometheus package: ./ops/test installs it"
    promtool("check", "rules", str(OPS / "alerts.yml"))
    with running(tmp_path) as web:
        # Traffic that makes every family appear: a search (its cache), a page that does not exist, a sign-up,
        # and one e-mail given up (written as the outbox writes it).
        assert httpx.get(web.url + "/missions", timeout=10).status_code == 200
        assert httpx.get(web.url + "/missions/introuvable", timeout=10).status_code == 404
        assert httpx.post(web.url + "/api/v1/volunteers", json=signup(), timeout=10).status_code == 202
        redis = Redis.from_url(REDIS_URL)
        redis.hincrby(DROPPED, "welcome:given_up", 1)
        redis.close()

        config = throwaway_config(tmp_path, web)
        promtool("check", "config", str(config))
        with prometheus(config, tmp_path) as base:
            wait_scraped(base)
            names = scraped_names(web.scrape())
            expressions = dashboard_expressions()
            assert len(expressions) >= 15
            for expression in expressions:
                assert names_in(expression) or expression.startswith("min(up{"), expression  # up: Prometheus's own
                assert names_in(expression) <= names, (expression, names_in(expression) - names)
                query(base, expression)  # valid PromQL, evaluated by Prometheus itself
            assert any(query(base, 'renfort_http_requests_total{route="/missions/{reference}",status="404"}'))

            deadline = time.monotonic() + 30
            while True:
                groups = httpx.get(base + "/api/v1/rules", timeout=5).json()["data"]["groups"]
                rules = [rule for group in groups for rule in group["rules"]]
                if (rules and all(rule.get("health") == "ok" for rule in rules)) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert len(rules) >= 8 and all(rule["health"] == "ok" for rule in rules), rules
            for rule in rules:
                assert names_in(rule["query"]) <= names, (rule["name"], names_in(rule["query"]) - names)
