"""Fetching partner feeds: public addresses only (each redirect hop checked again), Basic credentials sent to the
feed's own origin, the size limit applied while streaming and after gzip, the total time limit, clear French errors.
Feeds come from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import gzip
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.partners.feeds import FeedError
from app.partners.feeds.fetch import FetchLimits, fetch_feed, is_allowed

Route = Callable[[BaseHTTPRequestHandler], None]


class FeedServer:
    """A real HTTP server on a free loopback port; `routes` maps a path to what it answers, `requests` lists the
    (path, headers) it received."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers.items())))
                route = owner.routes.get(self.path)
                if route is None:
                    send(self, 404, b"absent")
                else:
                    route(self)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.routes[path] = lambda handler: send(handler, status, body, headers)

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    headers = headers or {}
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def drip(handler: BaseHTTPRequestHandler, seconds: float = 0.3, count: int = 100) -> None:
    """A server that answers at once, then sends its body a byte at a time."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(count))
    handler.end_headers()
    try:
        for _ in range(count):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(seconds)
    except OSError:
        pass  # the client hung up, as it should


def unbounded(handler: BaseHTTPRequestHandler) -> None:
    """No Content-Length, a body that never ends (until the client hangs up)."""
    handler.send_response(200)
    handler.end_headers()
    handler.close_connection = True
    try:
        for _ in range(10_000):
            handler.wfile.write(b"<a>" * 10_000)
    except OSError:
        pass


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


LOOPBACK = FetchLimits(allow_loopback=True, max_bytes=1_000_000, timeout_seconds=5)


def fetched(url: str, limits: FetchLimits = LOOPBACK, **credentials: str) -> bytes:
    body, size = fetch_feed(url, limits=limits, **credentials)
    with body:
        data = body.read()
    assert size == len(data)
    return data


def refused(url: str, limits: FetchLimits = LOOPBACK, **credentials: str) -> str:
    with pytest.raises(FeedError) as caught:
        fetch_feed(url, limits=limits, **credentials)
    return caught.value.message


def test_feed_is_fetched_plain_or_gzip(feed_server: FeedServer) -> None:
    xml = b"<source><mission/></source>"
    feed_server.serve("/plain.xml", xml)
    feed_server.serve("/encoded.xml", gzip.compress(xml), headers={"Content-Encoding": "gzip"})
    feed_server.serve("/feed.xml.gz", gzip.compress(xml), headers={"Content-Type": "application/gzip"})
    assert fetched(feed_server.url("/plain.xml")) == xml
    assert fetched(feed_server.url("/encoded.xml")) == xml
    assert fetched(feed_server.url("/feed.xml.gz")) == xml
    assert "gzip" in feed_server.requests[0][1]["Accept-Encoding"]


def test_basic_credentials_are_sent_and_never_shown(feed_server: FeedServer) -> None:
    feed_server.serve("/private.xml", b"denied", status=401)
    message = refused(feed_server.url("/private.xml"), username="renfort", password="s3cret-pass")
    assert "401" in message and "s3cret-pass" not in message and "renfort" not in message
    expected = "Basic " + base64.b64encode(b"renfort:s3cret-pass").decode()
    assert feed_server.requests[-1][1]["Authorization"] == expected


def test_credentials_do_not_follow_a_redirect_to_another_origin(feed_server: FeedServer) -> None:
    other = FeedServer().start()
    try:
        other.serve("/feed.xml", b"<source/>")
        feed_server.serve("/moved", b"", status=302, headers={"Location": other.url("/feed.xml")})
        assert fetched(feed_server.url("/moved"), username="u", password="p") == b"<source/>"
        assert "Authorization" in feed_server.requests[-1][1]
        assert "Authorization" not in other.requests[-1][1]
    finally:
        other.stop()


def test_loopback_is_refused_unless_allowed(feed_server: FeedServer) -> None:
    feed_server.serve("/feed.xml", b"<source/>")
    closed = FetchLimits(allow_loopback=False, max_bytes=1_000_000, timeout_seconds=5)
    assert "non publique" in refused(feed_server.url("/feed.xml"), closed)
    assert "non publique" in refused(f"http://localhost:{feed_server.port}/feed.xml", closed)
    assert not feed_server.requests  # refused before any connection


@pytest.mark.parametrize("address", [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",  # noqa: S104 - data, not a bind
    "240.0.0.1", "255.255.255.255", "127.0.0.1", "::1", "::", "fc00::1", "fe80::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "2002:a00:1::1", "64:ff9b:1::1", "fec0::1",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_allowed(ipaddress.ip_address(address), allow_loopback=False)
    if not ipaddress.ip_address(address).is_loopback and address not in ("::ffff:127.0.0.1", "2002:7f00:1::1"):
        assert not is_allowed(ipaddress.ip_address(address), allow_loopback=True)


def test_public_addresses_are_allowed() -> None:
    for address in ("8.8.8.8", "185.15.59.224", "2001:4860:4860::8888"):
        assert is_allowed(ipaddress.ip_address(address), allow_loopback=False)


@pytest.mark.parametrize("url", [
    "http://10.0.0.5/feed.xml", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:a00:5]/feed.xml",
    "http://0x0a000001/feed.xml", "http://192.168.0.1:8080/feed.xml",
])
def test_private_hosts_are_refused_even_with_loopback_allowed(url: str) -> None:
    message = refused(url, LOOPBACK)
    assert "non publique" in message or "introuvable" in message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed.xml", "gopher://x", "feed.xml",
                                 "http://user:pass@example.org/feed.xml", "http://example.org:port/", ""])
def test_urls_that_are_not_plain_http_are_refused(url: str) -> None:
    assert refused(url)


def test_redirects_are_followed_three_times_at_most(feed_server: FeedServer) -> None:
    feed_server.serve("/feed.xml", b"<source/>")
    for hop in range(1, 5):
        target = "/feed.xml" if hop == 1 else f"/hop{hop - 1}"
        feed_server.serve(f"/hop{hop}", b"", status=301, headers={"Location": target})
    assert fetched(feed_server.url("/hop3")) == b"<source/>"
    assert "redirige plus de 3 fois" in refused(feed_server.url("/hop4"))


def test_a_redirect_to_a_private_address_is_refused(feed_server: FeedServer) -> None:
    feed_server.serve("/moved", b"", status=307, headers={"Location": "http://10.20.30.40/feed.xml"})
    assert "non publique" in refused(feed_server.url("/moved"))


def test_server_errors_are_reported_with_their_status(feed_server: FeedServer) -> None:
    feed_server.serve("/broken", b"Traceback: secret internals", status=500)
    message = refused(feed_server.url("/broken"))
    assert "500" in message and "Traceback" not in message


def test_size_limit_applies_to_declared_streamed_and_decompressed_bytes(feed_server: FeedServer) -> None:
    small = FetchLimits(allow_loopback=True, max_bytes=10_000, timeout_seconds=10)
    feed_server.serve("/declared", b"x" * 20_000)
    feed_server.routes["/streamed"] = unbounded
    bomb = gzip.compress(b"<a>" + b" " * 50_000_000 + b"</a>")
    assert len(bomb) < 100_000
    feed_server.serve("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    feed_server.serve("/bomb.gz", bomb)
    for path in ("/declared", "/streamed", "/bomb", "/bomb.gz"):
        assert "taille maximale" in refused(feed_server.url(path), small), path


def test_a_slow_server_is_cut_off_at_the_time_limit(feed_server: FeedServer) -> None:
    feed_server.routes["/slow"] = drip
    started = time.monotonic()
    message = refused(feed_server.url("/slow"), FetchLimits(allow_loopback=True, max_bytes=1_000_000,
                                                            timeout_seconds=1))
    assert "temps imparti" in message
    assert time.monotonic() - started < 3


def test_truncated_gzip_is_refused(feed_server: FeedServer) -> None:
    feed_server.serve("/cut.gz", gzip.compress(b"<source>" * 1000)[:-20])
    assert "gzip" in refused(feed_server.url("/cut.gz"))
