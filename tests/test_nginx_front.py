"""The nginx front (ops/nginx/renfort.conf) run by Debian's nginx in front of a real web process: TLS and HSTS, the
redirect to HTTPS, the client address the per-address limit sees (a forged X-Forwarded-For changes nothing), the
body limits answered in French, ops endpoints kept to the host, and a French 503 when the web is down.

The site file is used as shipped; only its deployment paths, ports and certificate are swapped for a scratch folder
(a self-signed certificate made by openssl), and nginx runs unprivileged in that folder: nothing under /etc/nginx,
/var/log or /run is written. Clients connect from other loopback addresses (127.0.0.2, 127.0.0.3) to be different
citizens."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from app.volunteers.signup_queue import PENDING
from ops.processes import port_accepts, scratch_folder
from ops.services import free_port
from tests.conftest import REDIS_URL, ROOT, TEST_ENV
from tests.factories import signup
from tests.helpers import wait_for_fresh_minute
from tests.servers import WebServer, running_web_server

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "ops" / "nginx" / "renfort.conf"
HEADERS = ROOT / "ops" / "nginx" / "renfort-headers.conf"
SERVER_NAME = "renfort.example.fr"
API = "/api/v1/volunteers"
SIGNUPS_PER_MINUTE = 3
APP_TOO_LARGE = "La requête est trop volumineuse."
NGINX_TOO_LARGE = "La requête dépasse la taille acceptée (80 Kio)."

# What nginx.conf's http block holds on Debian (its insecure ssl_protocols line included: the site must override
# it), with every path inside the scratch folder.
MAIN_CONF = """\
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    sendfile on;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    gzip on;
    include {folder}/renfort.conf;
}}
"""


def render_site(folder: Path, *, http_port: int, https_port: int, web_port: int) -> str:
    """The shipped site file with its deployment-specific strings replaced; each one must be found, so a renamed
    path in the file fails here instead of leaving nginx pointed at the real system."""
    text = SITE.read_text()
    # No IPv6 on every test machine: the [::] listeners go, the IPv4 ones stay on loopback.
    text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line) + "\n"
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{web_port};",
        f"/etc/letsencrypt/live/{SERVER_NAME}/": f"{folder}/tls/",
        "/etc/nginx/snippets/renfort-headers.conf": f"{folder}/renfort-headers.conf",
        "/var/log/nginx/": f"{folder}/",
        "/var/www/letsencrypt": f"{folder}/acme",
        "/opt/renfort/": f"{ROOT}/",
    }
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in {SITE.name}: update this test's replacements"
        text = text.replace(old, new)
    assert "/var/" not in text and "/run/" not in text
    return text


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate for the server name and 127.0.0.1; returned so clients can trust it."""
    tls = folder / "tls"
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
         "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem")],
        check=True, capture_output=True,
    )
    return tls / "fullchain.pem"


@dataclass
class Front:
    folder: Path
    http_port: int
    https_port: int
    certificate: Path
    process: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        # -p, -e and pid keep nginx's compiled-in /var/log and /run paths out of use, from the first line it logs.
        return [str(NGINX), "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                "-e", str(self.folder / "error.log"), *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command("-t", "-g", f"pid {self.folder}/nginx-t.pid;"),
                              capture_output=True, text=True, check=False)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command("-g", f"daemon off; pid {self.folder}/nginx.pid;"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while not (port_accepts(self.https_port) and port_accepts(self.http_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.error_log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGQUIT: nginx's graceful stop; then the whole group (master and workers) by force if it lingers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else "(no error log)"

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """An HTTPS client trusting only this front's certificate, connecting from loopback address `source`."""
        context = ssl.create_default_context(cafile=str(self.certificate))
        transport = httpx.HTTPTransport(verify=context, local_address=source)
        return httpx.Client(base_url=f"https://127.0.0.1:{self.https_port}", transport=transport,
                            headers={"host": SERVER_NAME}, timeout=10)


@contextlib.contextmanager
def running_front(web_port: int) -> Iterator[Front]:
    folder = scratch_folder("renfort-nginx-")
    # nginx's workers run as nobody when the test runs as root: they must reach the folder's temporary paths.
    folder.chmod(0o755)
    try:
        front = Front(folder, free_port(), free_port(), make_certificate(folder))
        (folder / "acme").mkdir()
        shutil.copy(HEADERS, folder / "renfort-headers.conf")
        site = render_site(folder, http_port=front.http_port, https_port=front.https_port, web_port=web_port)
        (folder / "renfort.conf").write_text(site)
        (folder / "nginx.conf").write_text(MAIN_CONF.format(folder=folder))
        checked = front.check()
        assert checked.returncode == 0, checked.stderr
        front.start()
        try:
            yield front
        finally:
            front.stop()
        assert "[emerg]" not in front.error_log() and "[alert]" not in front.error_log(), front.error_log()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    env = {"TRUSTED_PROXY_HOPS": "1", "SIGNUP_IP_LIMIT_PER_MINUTE": str(SIGNUPS_PER_MINUTE)}
    with running_web_server(tmp_path_factory.mktemp("web") / "web.log", env) as server:
        yield server


@pytest.fixture(scope="module")
def front(web: WebServer) -> Iterator[Front]:
    with running_front(web.port) as started:
        yield started


def padded_signup(size: int, **overrides: Any) -> bytes:
    """A valid sign-up body of exactly `size` bytes (JSON allows the trailing whitespace)."""
    body = json.dumps(signup(**overrides)).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def post_signup(client: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return client.post(API, content=body, headers={"content-type": "application/json", **headers})


def test_the_site_file_passes_nginx_t(front: Front) -> None:
    checked = front.check()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_health_answers_over_https_with_hsts(front: Front) -> None:
    with front.client() as client:
        response = client.get("/health")
        tls_version = response.extensions["network_stream"].get_extra_info("ssl_object").version()
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert tls_version in ("TLSv1.2", "TLSv1.3")
    assert response.headers["strict-transport-security"] == "max-age=63072000"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["server"] == "nginx"  # no version


def test_tls_below_1_2_is_refused(front: Front) -> None:
    context = ssl.create_default_context(cafile=str(front.certificate))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client offers TLS 1.1 for real; the server must say no
    context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{front.https_port}/health", verify=context, timeout=5)


def test_plain_http_is_redirected_to_the_https_site(front: Front) -> None:
    response = httpx.get(f"http://127.0.0.1:{front.http_port}/inscription?source=affiche",
                         headers={"host": "attacker.example"}, timeout=5)
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{SERVER_NAME}/inscription?source=affiche"


def test_a_signup_through_nginx_is_accepted_and_its_receipt_readable(front: Front) -> None:
    with front.client() as client:
        response = post_signup(client, padded_signup(15_000))  # under the sign-up route's own 16 KiB limit
        assert response.status_code == 202, response.text
        receipt = response.json()["receipt"]
        status = client.get(f"/api/v1/receipts/{receipt}")
    assert status.status_code == 200
    assert status.json()["status"] == "queued"


def queued_unconfirmed() -> dict[str, bool]:
    """receipt → whether the accept path held the sign-up back as unconfirmed (past its address's limit)."""
    client = SyncRedis.from_url(REDIS_URL)
    try:
        records = [json.loads(raw) for raw in client.lrange(PENDING, 0, -1)]
    finally:
        client.close()
    return {record["receipt"]: bool(record.get("unconfirmed")) for record in records}


def test_the_signup_limit_counts_the_address_nginx_saw_not_a_forged_header(front: Front) -> None:
    wait_for_fresh_minute(needed_seconds=10)
    with front.client("127.0.0.2") as citizen, front.client("127.0.0.3") as neighbour:
        # A new forged X-Forwarded-For each time: were it trusted, every sign-up would count for another address.
        answers = [
            post_signup(citizen, json.dumps(signup()).encode(), **{"x-forwarded-for": f"198.51.100.{number}"})
            for number in range(SIGNUPS_PER_MINUTE + 1)
        ]
        # A different address is another citizen, with a limit of their own, whatever header they send.
        other = post_signup(neighbour, json.dumps(signup()).encode(), **{"x-forwarded-for": "127.0.0.2"})
    assert [answer.status_code for answer in [*answers, other]] == [202] * (SIGNUPS_PER_MINUTE + 2)
    held_back = queued_unconfirmed()
    receipts = [answer.json()["receipt"] for answer in answers]
    # Past the limit a sign-up is still accepted, but held back until its e-mail is confirmed.
    assert [held_back[receipt] for receipt in receipts] == [False] * SIGNUPS_PER_MINUTE + [True]
    assert held_back[other.json()["receipt"]] is False


def test_a_body_past_the_app_limit_gets_the_apps_french_413(front: Front) -> None:
    # Past the app-wide 64 KiB yet under nginx's 80 KiB: the request reaches the web, which answers.
    with front.client() as client:
        response = post_signup(client, padded_signup(70_000))
    assert response.status_code == 413
    assert response.json() == {"error": APP_TOO_LARGE}


def test_a_body_past_nginx_limit_stops_there_in_french(front: Front) -> None:
    with front.client() as client:
        api = post_signup(client, padded_signup(200_000))
        page = client.post("/inscription", content=b"a=" + b"x" * 200_000,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert api.status_code == 413
    assert api.json() == {"error": NGINX_TOO_LARGE}
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert NGINX_TOO_LARGE in page.text
    assert page.headers["strict-transport-security"] == "max-age=63072000"


def test_metrics_and_readiness_are_served_to_the_host_only(front: Front) -> None:
    token = {"authorization": f"Bearer {TEST_ENV['OPS_TOKEN']}"}
    with front.client("127.0.0.1") as host, front.client("127.0.0.2") as outsider:
        local_metrics = host.get("/metrics", headers=token)
        local_ready = host.get("/ready")
        # The token does not open the door from outside: nginx refuses before the app is asked.
        remote_metrics = outsider.get("/metrics", headers=token)
        remote_ready = outsider.get("/ready")
        # The app routes these spellings to the same handlers (it drops a trailing slash): so must nginx's rule.
        spellings = [outsider.get(path, headers=token) for path in ("/metrics/", "/ready/", "/ready//", "/%72eady/")]
    assert local_metrics.status_code == 200
    assert "renfort_redis_up 1" in local_metrics.text
    assert local_ready.status_code == 200
    for refused in (remote_metrics, remote_ready, *spellings):
        assert refused.status_code == 403, refused.request.url
        assert "Accès refusé" in refused.text


def test_pages_are_gzipped_and_static_files_served_with_a_cache_lifetime(front: Front) -> None:
    with front.client() as client:
        page = client.get("/inscription", headers={"accept-encoding": "gzip"})
        stylesheet = client.get("/static/renfort.css", headers={"accept-encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers["content-encoding"] == "gzip"
    assert "<html" in page.text
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-encoding"] == "gzip"
    assert stylesheet.text == (ROOT / "templates" / "static" / "renfort.css").read_text()
    assert stylesheet.headers["cache-control"] == "max-age=3600"  # set by nginx: the file came from disk


def test_the_web_down_gets_a_french_503_with_retry_after() -> None:
    with running_front(free_port()) as front, front.client() as client:
        page = client.get("/inscription")
        api = post_signup(client, json.dumps(signup()).encode())
    assert page.status_code == 503
    assert page.headers["retry-after"] == "10"
    assert "momentanément indisponible" in page.text
    assert page.headers["strict-transport-security"] == "max-age=63072000"
    assert api.status_code == 503
    assert api.headers["retry-after"] == "10"
    assert api.json()["error"].startswith("Le service est momentanément indisponible")
