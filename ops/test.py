"""Run the tests: `./ops/test [--lint] [pytest arguments]`.

Tests use the same local PostgreSQL and Redis as `./ops/run` (started if needed), but their own database
(`renfort_test`) and Redis database (15), so a test run never touches the data you click through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ops.services import ServiceError, local_postgres, process_environment

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE = "renfort_test"
TEST_REDIS_DB = 15
NO_TESTS_COLLECTED = 5


def main(argv: list[str]) -> int:
    lint = "--lint" in argv
    pytest_args = [arg for arg in argv if arg != "--lint"]
    try:
        env = test_environment()
    except ServiceError as error:
        print(f"Could not start the local services: {error}", file=sys.stderr)
        return 1
    codes = [run_pytest(pytest_args, env)]
    if lint:
        codes.append(run("ruff", [str(Path(sys.executable).parent / "ruff"), "check", "."], env))
        codes.append(run("mypy", [sys.executable, "-m", "mypy"], env))
    return next((code for code in codes if code != 0), 0)


def test_environment() -> dict[str, str]:
    env = process_environment(ROOT)
    if not os.environ.get("TEST_DATABASE_URL"):
        if not os.environ.get("DATABASE_URL"):
            local_postgres(ROOT).create_database(TEST_DATABASE)
        env["TEST_DATABASE_URL"] = with_path(env["DATABASE_URL"], f"/{TEST_DATABASE}")
    if not os.environ.get("TEST_REDIS_URL"):
        env["TEST_REDIS_URL"] = with_path(env["REDIS_URL"], f"/{TEST_REDIS_DB}")
    return env


def with_path(url: str, path: str) -> str:
    """The same server and credentials, another database (PostgreSQL) or db number (Redis)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def run_pytest(args: list[str], env: dict[str, str]) -> int:
    code = run("pytest", [sys.executable, "-m", "pytest", *args], env)
    if code == NO_TESTS_COLLECTED:
        # Exit code 5 must never read as a pass in CI: a run that tests nothing proves nothing.
        print("pytest collected no tests: check the paths and -k/-m filters given to ./ops/test.", file=sys.stderr)
    return code


def run(name: str, command: list[str], env: dict[str, str]) -> int:
    code = subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
    if code != 0:
        print(f"{name} failed (exit code {code}).", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
