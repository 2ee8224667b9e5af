"""The accessibility audit shared by the browser tests: axe-core (the copy shipped in axe_playwright_python) and the
check that nothing is wider than a phone's screen.

`PageAuditor` audits every page the browser tests visit: each page's DOM is copied when it has loaded, and the copy
is audited in a page of the auditor's own, at desktop width then at 390 px, so the test's page is never resized nor
slowed down. A page is audited once per test run for each (path with its ids and tokens folded, HTTP status)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any
from urllib.parse import urldefrag, urlsplit

from playwright.async_api import Browser, BrowserContext, Error, Page, Response

AXE = (files("axe_playwright_python") / "axe.min.js").read_text()  # axe-core 4.12.1
BLOCKING = ("serious", "critical")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE_SECONDS = 120

# The elements wider than the window, outermost first; those inside a box that scrolls or clips them (a wide
# table in its scrolling wrapper, visually hidden text) do not widen the page and are left out.
OVERFLOW = """() => {
  const limit = window.innerWidth;
  const clipped = (element) => {
    for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX !== 'visible' && box.getBoundingClientRect().right <= limit + 1) return true;
    }
    return false;
  };
  const name = (element) => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
    + [...element.classList].map((c) => '.' + c).join('');
  const wide = [];
  for (const element of document.body.querySelectorAll('*')) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.right <= limit + 1 || clipped(element)) continue;
    if (wide.some((outer) => outer.element.contains(element))) continue;
    wide.push({element, text: `${name(element)} (right ${Math.round(box.right)} px)`});
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: limit,
          wide: wide.slice(0, 12).map((w) => w.text)};
}"""

# The page as it stands (after its own scripts ran), without its scripts: the copy is rendered, never run.
SNAPSHOT = """() => {
  const copy = document.documentElement.cloneNode(true);
  copy.querySelectorAll('script').forEach((script) => script.remove());
  return {url: location.href, html: '<!doctype html>\\n' + copy.outerHTML};
}"""

NUMBER = re.compile(r"\d+")
ID_AND_SLUG = re.compile(r"\d+-[\w-]+")
TOKEN = re.compile(r"[A-Za-z0-9_=.-]{16,}")


def blocking_violations(results: dict[str, Any]) -> list[str]:
    return [
        f"{violation['impact']} {violation['id']}: {violation['help']} — "
        + ", ".join(" ".join(node["target"]) if isinstance(node["target"], list) else str(node["target"])
                    for node in violation["nodes"][:6])
        + (f" (+{len(violation['nodes']) - 6})" if len(violation["nodes"]) > 6 else "")
        for violation in results["violations"] if violation["impact"] in BLOCKING
    ]


async def audit(page: Page) -> dict[str, Any]:
    """axe-core's violations on `page`; a page without JavaScript (axe-core's timers never fire there) is audited
    through a copy of its DOM in a page of the same browser that has it, at the same size."""
    if not await _scripted(page):
        return await _audit_copy(page)
    await page.evaluate(AXE)  # evaluated, not a <script> tag: the pages' Content-Security-Policy stays as served
    return await _run_axe(page)


async def _scripted(page: Page) -> bool:
    try:
        await asyncio.wait_for(page.evaluate("() => new Promise((done) => setTimeout(done, 0))"), 2)
    except TimeoutError:
        return False
    return True


async def _audit_copy(page: Page) -> dict[str, Any]:
    browser = page.context.browser
    assert browser is not None
    copy: dict[str, str] = await page.evaluate(SNAPSHOT)
    context = await browser.new_context(locale="fr-FR", viewport=page.viewport_size, device_scale_factor=1)
    try:
        scripted = await context.new_page()
        if copy["url"].startswith(("http://", "https://")):  # the server's paths (/static/…) for the copy
            await scripted.goto("{0.scheme}://{0.netloc}/__audit__".format(urlsplit(copy["url"])))
        await scripted.set_content(copy["html"], wait_until="load")
        await scripted.evaluate(AXE)
        return await _run_axe(scripted)
    finally:
        await context.close()


async def overflow(page: Page) -> str | None:
    fit: dict[str, Any] = await page.evaluate(OVERFLOW)
    if fit["scrollWidth"] <= fit["innerWidth"]:
        return None
    return (f"the page is {fit['scrollWidth']} px wide for a {fit['innerWidth']} px screen; sticking out: "
            f"{', '.join(fit['wide']) or '(none found)'}")


def page_kind(url: str, status: int | None) -> str:
    """What makes two visits the same page: the path with its ids, slugs after an id and tokens folded, and the
    status."""
    return f"{'/'.join(_fold(segment) for segment in urlsplit(url).path.split('/')) or '/'} ({status or '?'})"


def _fold(segment: str) -> str:
    if ID_AND_SLUG.fullmatch(segment):
        return "{n}-{titre}"
    if TOKEN.fullmatch(segment) and re.search(r"\d", segment) and (re.search(r"[A-Z_]", segment) or "-" not in segment):
        return "{jeton}"  # a signed or random token (letters and digits), not a word slug
    return NUMBER.sub("{n}", segment)


@dataclass
class Snapshot:
    kind: str
    url: str
    html: str
    test: str


@dataclass
class PageAuditor:
    """Audits, once per run, each kind of page the pages of a browser show; problems are kept by test."""

    seen: set[str]  # shared by every auditor of the run
    test: str = ""
    problems: dict[str, list[str]] = field(default_factory=dict)
    _browser: Browser | None = None
    _page: Page | None = None
    _captures: set[asyncio.Task[None]] = field(default_factory=set)
    _queue: asyncio.Queue[Snapshot] = field(default_factory=asyncio.Queue)
    _worker: asyncio.Task[None] | None = None
    _documents: dict[Page, Response] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=lambda: {"pages": 0, "audit_seconds": 0.0, "wait_seconds": 0.0})

    async def attach(self, browser: Browser) -> None:
        """Audits every page of every context `browser` opens from now on."""
        self._browser = browser
        context = await browser.new_context(locale="fr-FR", viewport=DESKTOP, device_scale_factor=1)
        self._page = await context.new_page()
        browser.on("context", self._watch_context)
        self._worker = asyncio.get_running_loop().create_task(self._work())

    def _watch_context(self, context: BrowserContext) -> None:
        context.on("page", self._watch_page)

    def _watch_page(self, page: Page) -> None:
        page.on("response", lambda response: self._document(page, response))
        page.on("load", lambda _: self._loaded(page))

    def _document(self, page: Page, response: Response) -> None:
        if response.request.is_navigation_request() and response.frame == page.main_frame:
            self._documents[page] = response

    def _loaded(self, page: Page) -> None:
        task = asyncio.get_running_loop().create_task(self._capture(page, self.test))
        self._captures.add(task)
        task.add_done_callback(self._captures.discard)

    async def _capture(self, page: Page, test: str) -> None:
        url = page.url
        if not url.startswith(("http://", "https://")) or urlsplit(url).path == "/__audit__":
            return  # not a page of the server, or an audit's own copy
        response = self._documents.get(page)
        if response is None or urldefrag(response.url).url != urldefrag(url).url:
            status = None
        else:
            if "text/html" not in (response.headers.get("content-type") or ""):
                return
            status = response.status
        kind = page_kind(url, status)
        if kind in self.seen:
            return
        self.seen.add(kind)
        try:
            copy: dict[str, str] = await page.evaluate(SNAPSHOT)
        except Error:
            copy = {"url": ""}
        if copy["url"] != url:  # navigated away before the copy: audited at its next visit
            self.seen.discard(kind)
            return
        await self._queue.put(Snapshot(kind, url, copy["html"], test))

    async def _work(self) -> None:
        while True:
            snapshot = await self._queue.get()
            started = time.monotonic()
            try:
                found = await self._audit(snapshot)
            except Exception as error:  # an audit that cannot run is a failure, never a pass
                found = [f"the audit could not run: {error}"]
            finally:
                self.stats["pages"] += 1
                self.stats["audit_seconds"] += time.monotonic() - started
                self._queue.task_done()
            if found:
                self.problems.setdefault(snapshot.test, []).append(
                    f"{snapshot.kind} — {snapshot.url}:\n  " + "\n  ".join(found))

    async def _audit(self, snapshot: Snapshot) -> list[str]:
        assert self._page is not None
        page = self._page
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(snapshot.url))
        if not page.url.startswith(origin + "/"):
            # A page of the same server first (its "not found" page, no side effect), so that the copy's paths
            # (/static/…) are those of the server and its stylesheets stay in the browser's cache.
            await page.goto(origin + "/__audit__")
        await page.set_viewport_size(DESKTOP)
        await page.set_content(snapshot.html, wait_until="load")
        await page.evaluate(AXE)
        found = [f"axe at 1280 px: {line}" for line in blocking_violations(await _run_axe(page))]
        await page.set_viewport_size(PHONE)
        found += [f"axe at 390 px: {line}" for line in blocking_violations(await _run_axe(page))]
        if wide := await overflow(page):
            found.append(f"at 390 px {wide}")
        return found

    async def finish_test(self, test: str) -> list[str]:
        """The problems found on the pages `test` was the first to show, once all of them are audited."""
        started = time.monotonic()
        while self._captures:
            await asyncio.gather(*self._captures, return_exceptions=True)
        await self._queue.join()
        self.stats["wait_seconds"] += time.monotonic() - started
        return self.problems.pop(test, [])

    async def close(self) -> None:
        if self._browser is not None:
            self._browser.remove_listener("context", self._watch_context)
        if self._worker is not None:
            self._worker.cancel()
        if self._page is not None:
            await self._page.context.close()


async def _run_axe(page: Page) -> dict[str, Any]:
    # A bounded wait: an audit that never ends fails the test instead of stopping the run.
    results: dict[str, Any] = await asyncio.wait_for(
        page.evaluate("() => axe.run(document, {resultTypes: ['violations']})"), AXE_SECONDS)
    return results
