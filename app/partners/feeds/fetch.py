"""Fetching a partner's feed without letting its address reach our own network (SSRF).

http.client rather than httpx: we resolve the host ourselves, check every address, then connect to the very address we
checked (no second resolution, so no DNS rebinding) while the Host header and TLS SNI/certificate check still use the
name — http.client lets us replace `connect()` alone, which httpx's transports do not. Redirects are followed by
hand (at most 3), each hop checked again. The body goes to a temporary file, counted while it streams (after gzip
decompression too), and a watchdog closes the socket at the total deadline, however slowly the server drips.
Synchronous: the import job runs it in a thread."""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import socket
import ssl
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from app.partners.feeds import FeedError

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "Renfort-import-flux/1.0"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchLimits:
    allow_loopback: bool
    max_bytes: int
    timeout_seconds: float


def is_allowed(address: IPAddress, *, allow_loopback: bool) -> bool:
    """A public unicast address; loopback too when allowed (tests, benchmarks). IPv6 forms embedding an IPv4
    address (mapped, 6to4, Teredo) are judged by that address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return is_allowed(embedded, allow_loopback=allow_loopback)
    if address.is_loopback:
        return allow_loopback
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:  # fec0::/10, still routed here and there
        return False
    return address.is_global and not (address.is_private or address.is_link_local or address.is_multicast
                                      or address.is_reserved or address.is_unspecified)


def resolve(host: str, port: int, *, allow_loopback: bool) -> list[tuple[socket.AddressFamily, tuple[str, int]]]:
    """Every address of `host`; refused as a whole if any of them is not allowed (no gamble on which one we get)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise FeedError(f"Le nom d'hôte « {host} » de l'adresse du flux est introuvable (DNS).") from None
    addresses: list[tuple[socket.AddressFamily, tuple[str, int]]] = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not is_allowed(address, allow_loopback=allow_loopback):
            raise FeedError(f"L'adresse du flux (« {host} ») mène à une adresse réseau non publique : "
                            "seules les adresses publiques d'Internet sont acceptées.")
        addresses.append((family, (str(sockaddr[0]), int(sockaddr[1]))))
    if not addresses:
        raise FeedError(f"Le nom d'hôte « {host} » de l'adresse du flux est introuvable (DNS).")
    return addresses


def _open_socket(addresses: list[tuple[socket.AddressFamily, tuple[str, int]]], timeout: float | None) -> socket.socket:
    last: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as error:
            sock.close()
            last = error
    raise last or OSError("no address")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[tuple[socket.AddressFamily, tuple[str, int]]],
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses
        self.opened: socket.socket | None = None  # kept for the watchdog: a response may outlive `self.sock`

    def connect(self) -> None:
        self.sock = self.opened = _open_socket(self.addresses, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[tuple[socket.AddressFamily, tuple[str, int]]],
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.addresses = addresses
        self.opened: socket.socket | None = None

    def connect(self) -> None:
        sock = _open_socket(self.addresses, self.timeout)
        self.sock = self.opened = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def check_url(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise FeedError("L'adresse du flux n'est pas une URL valide.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedError("L'adresse du flux doit être une URL http:// ou https:// complète.")
    if parts.username is not None or parts.password is not None:
        raise FeedError("L'adresse du flux ne doit pas contenir d'identifiants : renseignez-les à part.")
    return parts


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class _Watchdog:
    """Shuts the connection's socket down at the deadline: any read blocked on it returns at once."""

    def __init__(self, connection: _PinnedHTTPConnection | _PinnedHTTPSConnection, seconds: float) -> None:
        self.fired = False
        self.connection = connection
        self.timer = threading.Timer(max(seconds, 0.0), self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.opened
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.timer.cancel()


def fetch_feed(url: str, *, limits: FetchLimits, username: str | None = None,
               password: str | None = None) -> tuple[IO[bytes], int]:
    """The feed's (decompressed) body in a temporary file at position 0, and its size in bytes; the caller closes
    the file. Raises FeedError with a French reason for anything that is not a complete 2xx body within limits."""
    deadline = time.monotonic() + limits.timeout_seconds
    first = check_url(url)
    target = first
    for _ in range(MAX_REDIRECTS + 1):
        credentials = (username, password) if username and _origin(target) == _origin(first) else None
        location = _one_hop(target, limits, deadline, credentials)
        if isinstance(location, str):
            target = check_url(urljoin(target.geturl(), location))
            continue
        return location
    raise FeedError(f"Le serveur du flux redirige plus de {MAX_REDIRECTS} fois : redirections abandonnées.")


def _one_hop(parts: SplitResult, limits: FetchLimits, deadline: float,
             credentials: tuple[str | None, str | None] | None) -> str | tuple[IO[bytes], int]:
    """A redirect's Location, or the body."""
    scheme, host, port = _origin(parts)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timeout(limits)
    addresses = resolve(host, port, allow_loopback=limits.allow_loopback)
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, addresses, timeout=remaining)
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/xml, text/xml;q=0.9, */*;q=0.5",
               "Accept-Encoding": "gzip"}
    if credentials is not None:
        pair = f"{credentials[0] or ''}:{credentials[1] or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    watchdog = _Watchdog(connection, remaining)
    try:
        with watchdog:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FeedError(f"Le serveur du flux a répondu {response.status} sans adresse de redirection.")
                return location
            if not 200 <= response.status < 300:
                raise FeedError(f"Le serveur du flux a répondu par une erreur HTTP {_status(response.status)}.")
            return _read_body(response, limits, watchdog)
    except FeedError:
        raise
    except TimeoutError:
        raise _timeout(limits) from None
    except ssl.SSLError:
        raise FeedError("La connexion sécurisée (TLS) au serveur du flux a échoué : vérifiez son certificat.") from None
    except (OSError, http.client.HTTPException, ValueError):
        if watchdog.fired:
            raise _timeout(limits) from None
        raise FeedError("La connexion au serveur du flux a échoué ou sa réponse HTTP est invalide.") from None
    finally:
        connection.close()


def _read_body(response: http.client.HTTPResponse, limits: FetchLimits, watchdog: _Watchdog) -> tuple[IO[bytes], int]:
    declared = response.getheader("Content-Length") or ""
    if declared.strip().isdigit() and int(declared) > limits.max_bytes:
        raise _too_big(limits)
    encoding = (response.getheader("Content-Encoding") or "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise FeedError(f"Encodage de contenu « {encoding[:40]} » non pris en charge : envoyez le flux brut ou gzip.")
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
    body = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    try:
        received = written = 0
        started = False
        while True:
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if received > limits.max_bytes:
                raise _too_big(limits)
            if not started and decompressor is None and chunk[:2] == b"\x1f\x8b":
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a .xml.gz served without the header
            started = True
            written = _write(body, chunk, decompressor, written, limits)
        if watchdog.fired:
            raise _timeout(limits)
        if decompressor is not None:
            written = _write(body, b"", decompressor, written, limits)
            if not decompressor.eof:
                raise FeedError("Le flux compressé (gzip) est tronqué ou invalide.")
        body.seek(0)
        return body, written
    except zlib.error:
        body.close()
        raise FeedError("Le flux compressé (gzip) est invalide.") from None
    except BaseException:
        body.close()
        raise


def _write(body: IO[bytes], chunk: bytes, decompressor: zlib._Decompress | None, written: int,
           limits: FetchLimits) -> int:
    """Writes `chunk` (decompressed in bounded steps, so a gzip bomb never inflates in memory); returns the total."""
    if decompressor is None:
        data, pending = chunk, b""
    else:
        data = decompressor.decompress(chunk, CHUNK)
        pending = decompressor.unconsumed_tail
    while True:
        written += len(data)
        if written > limits.max_bytes:
            raise _too_big(limits)
        body.write(data)
        # A full step may leave output inside zlib even when no input is left: ask again until a short step.
        if decompressor is None or (not pending and len(data) < CHUNK):
            return written
        data = decompressor.decompress(pending, CHUNK)
        pending = decompressor.unconsumed_tail


def _status(code: int) -> str:
    try:
        return f"{code} ({HTTPStatus(code).phrase})"
    except ValueError:
        return str(code)


def _timeout(limits: FetchLimits) -> FeedError:
    return FeedError(f"Le serveur du flux n'a pas envoyé le flux complet dans le temps imparti "
                     f"({limits.timeout_seconds:g} secondes).")


def _too_big(limits: FetchLimits) -> FeedError:
    size = f"{limits.max_bytes / 1_000_000:g} Mo" if limits.max_bytes >= 1_000_000 else f"{limits.max_bytes} octets"
    return FeedError(f"Le flux dépasse la taille maximale acceptée ({size}, une fois décompressé).")
