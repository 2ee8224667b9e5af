"""Screenshots of the main pages at desktop and phone widths: `python -m ops.screenshots [--out docs/screenshots]`.

Uses this checkout's local PostgreSQL and Redis (those of ./ops/run, started if needed; or the servers of
DATABASE_URL / REDIS_URL) but a database and a Redis db of its own, emptied first: the release command builds the
schema and geography, `python -m app.showcase` loads the showcase data, the Procfile's web process serves it on a
free port and the Debian Chromium visits each page through Playwright, signed in as the showcase's accounts.
Writes `<desktop|phone>-<page>.png` and exits 1 when a page answers an unexpected status or does not load.

Since it drops the database and empties the Redis db it is given, it exits 2 before touching anything unless both
servers are on loopback, the database is a scratch one (renfort_screenshots…, renfort_test…) other than the
platform's own, the Redis db is not the platform's own, and the caller's ENVIRONMENT is not production.

The tour (TOUR) is also what tests/test_pages_audit_browser.py audits for accessibility and phone overflow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from playwright.async_api import Browser, BrowserContext, FloatRect, Page, ViewportSize, async_playwright
from playwright.async_api import Error as PlaywrightError
from redis import Redis

from ops.processes import free_port, scratch_folder
from ops.services import DATABASE as PLATFORM_DATABASE
from ops.services import process_environment
from ops.supervisor import read_procfile
from ops.test import with_path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DATABASE = "renfort_screenshots"
REDIS_DB = 14
# The run drops and recreates its database: only a scratch name, plain enough to quote in SQL.
SCRATCH_DATABASE = re.compile(r"(renfort_screenshots|renfort_test)[a-z0-9_]*")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
DESKTOP_MAX_HEIGHT = 2_700  # three screens: longer desktop pages are cut there (phone pages are kept whole)
SUBMIT = '[type="submit"]'


class TourError(Exception):
    """A page of the tour did not answer as expected (status, sign-in lost, navigation failed)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """One page of the tour. `path` is formatted with the showcase's fields (emergency, mission_id, run_id);
    `who` is a showcase account (None: a visitor); `click` is a submit button's selector pressed once the page is
    loaded, the page then being the one it leads to, answered with `status`."""

    name: str
    path: str
    who: str | None = None
    click: str | None = None
    status: int = 200
    screenshot: bool = False


APPLICANTS = "/missions/{mission_id}/candidatures"
TOUR = (
    Stop("accueil", "/", screenshot=True),
    Stop("urgence", "/urgence/{emergency}", screenshot=True),
    Stop("inscription-erreurs", "/inscription", click=f'form[action="/inscription"] {SUBMIT}', status=422,
         screenshot=True),
    Stop("recherche", "/missions?postal_code=75011&radius_km=50", screenshot=True),
    Stop("mission", "/missions/{mission_id}", screenshot=True),
    Stop("candidatures", APPLICANTS, who="manager", screenshot=True),
    Stop("coordination", "/coordination", who="coordinator", screenshot=True),
    Stop("mobilisation", "/coordination/urgences/{emergency}/mobilisation/{run_id}", who="coordinator",
         screenshot=True),
    Stop("mobilisation-formulaire", "/coordination/urgences/{emergency}/mobilisation", who="coordinator"),
    Stop("connexion", "/connexion"),
    Stop("mon-espace", "/mon-espace", who="volunteer"),
    Stop("mes-candidatures", "/mon-espace/candidatures", who="volunteer"),
    Stop("mes-structures", "/mon-espace/structures", who="manager"),
    Stop("inscription-structure", "/inscription/structure"),
    Stop("moderation-structures", "/moderation/organisations", who="referent"),
    Stop("moderation-missions", "/moderation/missions", who="referent"),
    Stop("export", APPLICANTS, who="manager", click=f'form[action$="/candidatures/export"] {SUBMIT}'),
)


async def launch(playwright: Any) -> Browser:
    browser: Browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                        headless=True)
    return browser


async def new_context(browser: Browser, base_url: str, viewport: str = "desktop",
                      state: Any = None) -> BrowserContext:
    context = await browser.new_context(base_url=base_url, locale="fr-FR", timezone_id="Europe/Paris",
                                        viewport=VIEWPORTS[viewport], device_scale_factor=1, storage_state=state)
    context.set_default_timeout(20_000)
    return context


async def sign_in(browser: Browser, base_url: str, link: str) -> Any:
    """The browser state (session cookie) after confirming a showcase sign-in link, as a person does."""
    context = await new_context(browser, base_url)
    try:
        page = await context.new_page()
        await page.goto(link)
        async with page.expect_navigation():
            await page.locator(f'form[action="/connexion/lien"] {SUBMIT}').click()
        if urlsplit(page.url).path != "/mon-espace":
            raise TourError(f"signing in led to {page.url}")
        return await context.storage_state()
    finally:
        await context.close()


async def visit(context: BrowserContext, stop: Stop, showcase: dict[str, Any]) -> Page:
    """The stop's page, loaded (and its button pressed); raises TourError when it is not the expected page."""
    page = await context.new_page()
    path = stop.path.format(**showcase)
    try:
        response = await page.goto(path)
        if stop.click:
            async with page.expect_navigation() as navigation:
                await page.locator(stop.click).first.click()
            response = await navigation.value
        with contextlib.suppress(PlaywrightError):  # pages that poll never go quiet: the load event is enough
            await page.wait_for_load_state("networkidle", timeout=3_000)
        await page.evaluate("document.fonts.ready.then(() => true)")
    except PlaywrightError as error:
        raise TourError(f"{path}: {error.message.splitlines()[0]}") from None
    status = response.status if response else 0
    if status != stop.status:
        raise TourError(f"{path} answered {status}, not {stop.status}")
    if stop.who and urlsplit(page.url).path == "/connexion":
        raise TourError(f"{path} sent {stop.who} back to the sign-in page")
    return page


async def screenshot(page: Page, viewport: str, target: Path) -> None:
    height = await page.evaluate("document.documentElement.scrollHeight")
    if viewport == "desktop" and height > DESKTOP_MAX_HEIGHT:
        clip: FloatRect = {"x": 0, "y": 0, "width": VIEWPORTS[viewport]["width"], "height": DESKTOP_MAX_HEIGHT}
        await page.screenshot(path=str(target), full_page=True, clip=clip)
    else:
        await page.screenshot(path=str(target), full_page=True)


def compress(targets: list[Path]) -> None:
    """A third of the size with Debian's pngquant (`apt-get install pngquant`), when it is there; optional."""
    pngquant = shutil.which("pngquant")
    if pngquant and targets:
        subprocess.run([pngquant, "--force", "--skip-if-larger", "--strip", "--quality", "80-95", "--ext", ".png",
                        *map(str, targets)], check=False)


async def take_screenshots(base_url: str, showcase: dict[str, Any], out: Path) -> list[str]:
    """Writes the screenshots; returns what failed."""
    failures, written = [], []
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            states = {who: await sign_in(browser, base_url, link) for who, link in showcase["links"].items()}
            for stop in (stop for stop in TOUR if stop.screenshot):
                for viewport in VIEWPORTS:
                    context = await new_context(browser, base_url, viewport, states.get(stop.who or ""))
                    try:
                        target = out / f"{viewport}-{stop.name}.png"
                        await screenshot(await visit(context, stop, showcase), viewport, target)
                        written.append(target)
                        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}", flush=True)
                    except (TourError, PlaywrightError) as error:
                        failures.append(f"{viewport}-{stop.name}: {error}")
                    finally:
                        await context.close()
        finally:
            await browser.close()
    await asyncio.to_thread(compress, written)
    return failures


def argument_refusals(caller: Mapping[str, str], database: str) -> list[str]:
    """What forbids the run before any server is looked at: the caller's ENVIRONMENT, the database's name."""
    refusals = []
    if caller.get("ENVIRONMENT", "").strip().lower() == "production":
        refusals.append("ENVIRONMENT is production: screenshots drop a database and empty a Redis db, never there")
    if database == PLATFORM_DATABASE or not SCRATCH_DATABASE.fullmatch(database):
        refusals.append(f"--database {database!r}: it is dropped and recreated, so it must be a scratch database "
                        "named renfort_screenshots… or renfort_test… (lower case, digits, _), not the platform's")
    return refusals


def server_refusals(platform: Mapping[str, str], database: str, redis_db: int) -> list[str]:
    """What forbids the run on the servers of `platform` (DATABASE_URL, REDIS_URL): not on loopback, or the
    database or Redis db the platform itself uses there."""
    refusals = []
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not _on_loopback(platform[name]):
            refusals.append(f"{name} is not on this machine (loopback): screenshots never empty a remote server")
        if {"db", "database", "dbname"} & set(parse_qs(urlsplit(platform[name]).query)):
            refusals.append(f"{name} names its database in the query string: give it in the path instead")
    if urlsplit(platform["DATABASE_URL"]).path.lstrip("/") == database:
        refusals.append(f"--database {database!r} is the platform's own database (DATABASE_URL)")
    if redis_db == _redis_db(platform["REDIS_URL"]):
        refusals.append(f"--redis-db {redis_db} is the platform's own Redis db (REDIS_URL)")
    return refusals


def _on_loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:  # a Unix socket, or a host given some other way: not checked, so not trusted
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redis_db(url: str) -> int | None:
    """The db number of a redis:// URL (0 when it names none; None when it cannot be read)."""
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdecimal() else (0 if not path else None)


def environment(platform: dict[str, str], database: str, redis_db: int) -> dict[str, str]:
    """The local services' environment, pointed at a database and a Redis db of the screenshots' own."""
    env = dict(platform)
    env["DATABASE_URL"] = with_path(env["DATABASE_URL"], f"/{database}")
    env["REDIS_URL"] = with_path(env["REDIS_URL"], f"/{redis_db}")
    env.update({"LOG_LEVEL": "WARNING", "SENTRY_DSN": "", "ENVIRONMENT": "development", "PYTHONUNBUFFERED": "1"})
    return env


async def recreate_database(url: str) -> None:
    url = url.replace("postgresql+asyncpg://", "postgresql://")
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_path(url, "/postgres"))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1"
                            " AND pid <> pg_backend_pid()", name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def run_step(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


@contextlib.contextmanager
def web_server(env: dict[str, str], log: Path, timeout: float = 60.0) -> Iterator[str]:
    """The Procfile's web process on a free loopback port, in its own process group; yields its base URL."""
    port = free_port()
    command = read_procfile(ROOT / "Procfile")["web"]
    server_env = {**env, "PORT": str(port), "WEB_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], env=server_env, cwd=ROOT,
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the web process did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=1) as response:  # noqa: S310 (our loopback URL)
            return bool(response.status == 200)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the PNG files (default: docs/screenshots)")
    parser.add_argument("--database", default=DATABASE, help="database to (re)create for the run")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="Redis db number to empty and use")
    args = parser.parse_args(argv)
    if args.redis_db < 0:
        parser.error("--redis-db must be a db number (0 or more)")
    refusals = argument_refusals(os.environ, args.database)
    if not refusals:
        platform = process_environment(ROOT)
        refusals = server_refusals(platform, args.database, args.redis_db)
    for refusal in refusals:
        print(f"refused: {refusal}", file=sys.stderr)
    if refusals:
        return 2
    env = environment(platform, args.database, args.redis_db)
    asyncio.run(recreate_database(env["DATABASE_URL"]))
    with Redis.from_url(env["REDIS_URL"]) as redis:
        redis.flushdb()
    run_step([sys.executable, "-m", "app.release"], env)
    showcase = json.loads(run_step([sys.executable, "-m", "app.showcase"], env))
    args.out.mkdir(parents=True, exist_ok=True)
    logs = scratch_folder("renfort-screenshots-")
    with web_server(env, logs / "web.log") as base_url:
        failures = asyncio.run(take_screenshots(base_url, showcase, args.out.resolve()))
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    if failures:
        print(f"the web process's log: {logs / 'web.log'}", file=sys.stderr)
        return 1
    shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
