"""The traffic `bench_faults` keeps flowing while it breaks the platform: sign-ups, applications, account deletions.

Every answer is written to one `Ledger`, under the phase running when the request left: a 202's receipt (sign-ups),
a 303's outcome (applications), a 503 with Retry-After (the platform saying "later", which is allowed), and
everything else as an error (a 500, a 503 without Retry-After, a time-out, a reset). While a web process is killed on
purpose, a request the dying process never answered (reset, refused) is allowed too: counted as `unanswered`, and
sent again (a sign-up with its Idempotency-Key). Clients are paced (a rate per second, not as fast as they can) so
that two shared cores keep room for the servers being broken; a burst (unpaced, for a second or two) makes sure
requests are in flight at the moment a web process dies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from loadtests.bench_missions import csrf_of, signup_body

SIGNUP_PATH = "/api/v1/volunteers"
# Real clients wait the whole Retry-After (30 s here); ours wait at most this, so a phase still sees their retries.
MAX_BACKOFF = 2.0
OUTCOME = re.compile(r"mission=(\d+)&resultat=(\w+)")
T = TypeVar("T")
# What ends one deleted person's scenario early: counted as an error of the phase, the others carry on.
PERSON_FAILURES = (RuntimeError, TimeoutError, ValueError, httpx.HTTPError, OSError)
# What a client sees when the process serving it dies: no answer at all. A time-out is not one of them (a killed
# process resets its connections at once), so it stays an error.
UNANSWERED = (httpx.NetworkError, httpx.RemoteProtocolError)


class Background:
    """An event loop in a thread of its own: the traffic keeps flowing while the main thread breaks servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="traffic", daemon=True)
        self._thread.start()

    def start(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = self.start(coroutine)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RuntimeError(f"gave up after {timeout:.0f} s") from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class Deleted:
    email: str
    volunteer_id: int
    receipts: list[str]
    at: float  # monotonic time the deletion was sent, then answered
    confirmed: bool = False  # the page said the account is deleted


@dataclass
class Ledger:
    """What every client saw, by phase. Written from the traffic thread only; read once the traffic stopped."""

    phase: str = "setup"
    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    receipts: dict[str, tuple[str, str]] = field(default_factory=dict)  # receipt → (e-mail, phase accepted in)
    pairs: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)  # (mission, volunteer) → outcome
    deleted: list[Deleted] = field(default_factory=list)
    unanswered_phases: set[str] = field(default_factory=set)  # phases that kill a web process on purpose

    def accept(self, receipt: str, email_address: str, phase: str) -> None:
        self.receipts.setdefault(receipt, (email_address, phase))

    def answer(self, phase: str, load: str, response: httpx.Response, expected: int) -> float | None:
        """Counts an answer; returns None when it is the expected one, else how long to wait before retrying."""
        status = response.status_code
        if status == expected:
            self.answers[phase][f"{load} {status}"] += 1
            return None
        retry_after = response.headers.get("retry-after", "")
        if status == 503 and retry_after.isdecimal():
            self.answers[phase][f"{load} 503"] += 1
            return min(float(retry_after), MAX_BACKOFF)
        label = f"{status} without Retry-After" if status == 503 else str(status)
        self.error(phase, load, label)
        return MAX_BACKOFF

    def error(self, phase: str, load: str, label: str) -> None:
        self.errors[phase][f"{load} {label}"] += 1

    def no_answer(self, phase: str, load: str, error: httpx.HTTPError) -> float:
        """Counts a request that got no HTTP answer; returns how long to wait before sending it again."""
        if phase in self.unanswered_phases and isinstance(error, UNANSWERED):
            self.answers[phase][f"{load} unanswered"] += 1
        else:
            self.error(phase, load, type(error).__name__)
        return MAX_BACKOFF

    def unanswered(self) -> int:
        return sum(count for answers in self.answers.values() for label, count in answers.items()
                   if label.endswith(" unanswered"))

    def error_count(self) -> int:
        return sum(sum(counts.values()) for counts in self.errors.values())


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps, but wakes as soon as the traffic is told to stop."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


class Pace:
    """At most `rate` requests a second across `clients` coroutines, each keeping its own slot."""

    def __init__(self, rate: float, clients: int) -> None:
        self.interval = clients / rate
        self.next_at = 0.0

    async def wait(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        await pause(stop, self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


async def submit_signup(client: httpx.AsyncClient, ledger: Ledger, body: dict[str, Any], key: str,
                        load: str) -> tuple[str | None, float]:
    """One POST of a sign-up; (its receipt when accepted, else how long to wait before sending it again)."""
    phase = ledger.phase
    try:
        response = await client.post(SIGNUP_PATH, json=body, headers={"Idempotency-Key": key})
    except httpx.HTTPError as error:
        return None, ledger.no_answer(phase, load, error)
    delay = ledger.answer(phase, load, response, 202)
    if delay is not None:
        return None, delay
    receipt = str(response.json()["receipt"])
    ledger.accept(receipt, body["email"], phase)
    return receipt, 0.0


class SignupLoad:
    """Unique valid sign-ups, each with an Idempotency-Key; one that is not accepted is sent again with its key."""

    def __init__(self, base: str, run: str, ledger: Ledger, *, rate: float, clients: int, seed: int,
                 domain: str) -> None:
        self.base, self.run, self.ledger, self.clients, self.domain = base, run, ledger, clients, domain
        self.rate = rate
        self.rng = random.Random(seed)
        self.http = httpx.AsyncClient(base_url=base, timeout=10, trust_env=False,
                                      limits=httpx.Limits(max_connections=clients))
        self.bursts = 0

    async def __call__(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.gather(*(self._client(number, stop) for number in range(self.clients)))
        finally:
            await self.http.aclose()

    async def _client(self, number: int, stop: asyncio.Event) -> None:
        pace = Pace(self.rate, self.clients)
        sequence = 0
        while not stop.is_set():
            sequence += 1
            body = signup_body(f"{self.run}.s{number}.{sequence}@{self.domain}", self.rng)
            key = secrets.token_hex(16)
            while not stop.is_set():
                await pace.wait(stop)
                receipt, delay = await submit_signup(self.http, self.ledger, body, key, "signup")
                if receipt is not None:
                    break
                await pause(stop, delay)

    async def burst(self, stop: asyncio.Event, *, clients: int, seconds: float) -> int:
        """Sign-ups back to back from `clients` at once for `seconds`, each sent again with its key until accepted
        (the traffic's stop ends that too); returns how many were sent."""
        self.bursts += 1
        index, until, sent = self.bursts, time.monotonic() + seconds, 0
        http = httpx.AsyncClient(base_url=self.base, timeout=10, trust_env=False,
                                 limits=httpx.Limits(max_connections=clients))

        async def client(number: int) -> None:
            nonlocal sent
            sequence = 0
            while time.monotonic() < until and not stop.is_set():
                sequence += 1
                sent += 1
                body = signup_body(f"{self.run}.b{index}-{number}.{sequence}@{self.domain}", self.rng)
                key = secrets.token_hex(16)
                while not stop.is_set():
                    receipt, delay = await submit_signup(http, self.ledger, body, key, "signup-burst")
                    if receipt is not None:
                        break
                    await pause(stop, delay)

        try:
            await asyncio.gather(*(client(number) for number in range(clients)))
        finally:
            await http.aclose()
        return sent


@dataclass
class Applicant:
    volunteer_id: int
    client: httpx.AsyncClient


class ApplyLoad:
    """Signed-in volunteers apply to missions with few places, each (volunteer, mission) pair until it is answered."""

    def __init__(self, applicants: list[Applicant], missions: list[int], ledger: Ledger, *, rate: float,
                 clients: int, seed: int) -> None:
        self.ledger, self.rate, self.clients = ledger, rate, clients
        pairs = [(applicant, mission) for applicant in applicants for mission in missions]
        random.Random(seed).shuffle(pairs)
        self.todo: deque[tuple[Applicant, int]] = deque(pairs)

    async def __call__(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._client(stop) for _ in range(self.clients)))

    async def _client(self, stop: asyncio.Event) -> None:
        pace = Pace(self.rate, self.clients)
        while self.todo and not stop.is_set():
            await pace.wait(stop)
            if stop.is_set() or not self.todo:
                return
            applicant, mission = self.todo.popleft()
            delay = await apply(self.ledger, applicant, mission, "apply")
            if delay is not None:  # not answered: that volunteer tries that mission again later
                self.todo.append((applicant, mission))
                await pause(stop, delay)

    async def burst(self, stop: asyncio.Event, *, clients: int, seconds: float, pairs: int) -> int:
        """At most `pairs` applications, back to back from `clients` at once for `seconds`, each pair sent again
        until answered; returns how many pairs were sent."""
        until, sent = time.monotonic() + seconds, 0

        async def client() -> None:
            nonlocal sent
            while self.todo and sent < pairs and time.monotonic() < until and not stop.is_set():
                applicant, mission = self.todo.popleft()
                sent += 1
                while not stop.is_set():
                    delay = await apply(self.ledger, applicant, mission, "apply-burst")
                    if delay is None:
                        break
                    await pause(stop, delay)

        await asyncio.gather(*(client() for _ in range(clients)))
        return sent


async def apply(ledger: Ledger, applicant: Applicant, mission: int, load: str) -> float | None:
    """POSTs the "candidater" form; records the outcome named by the 303's Location, or returns a retry delay."""
    phase = ledger.phase
    data = {"_csrf_token": applicant.client.cookies.get("csrftoken", ""), "message": "Disponible tout de suite."}
    try:
        response = await applicant.client.post(f"/missions/{mission}/candidater", data=data)
    except httpx.HTTPError as error:
        return ledger.no_answer(phase, load, error)
    delay = ledger.answer(phase, load, response, 303)
    if delay is not None:
        return delay
    match = OUTCOME.search(response.headers.get("location", ""))
    if match is None:  # sent to the sign-in page, say: the volunteer's session is gone
        ledger.error(phase, load, "303 to " + response.headers.get("location", "?").split("?")[0])
        return MAX_BACKOFF
    ledger.answers[phase][f"{load} {match[2]}"] += 1
    ledger.pairs.setdefault((mission, applicant.volunteer_id), (match[2], phase))
    return None


class Erasures:
    """Signed-in people (their first sign-up saved) apply once (when there is a mission to apply to), sign up again
    (a repeat, queued: its drain runs while the account goes), then delete their account; who was deleted and when
    goes to the ledger."""

    def __init__(self, people: list[tuple[str, Applicant]], ledger: Ledger, *, mission: int | None,
                 seed: int) -> None:
        self.people, self.ledger, self.mission = people, ledger, mission
        self.rng = random.Random(seed)

    async def __call__(self, concurrency: int, per_person: float) -> dict[str, int]:
        outcomes: Counter[str] = Counter()
        gate = asyncio.Semaphore(concurrency)

        async def one(address: str, person: Applicant) -> None:
            async with gate:
                try:
                    outcomes[await asyncio.wait_for(self._person(address, person), per_person)] += 1
                except PERSON_FAILURES as error:  # our own messages, never personal data
                    self.ledger.error(self.ledger.phase, "erasure", f"{type(error).__name__} {error}".strip())
                    outcomes["failed"] += 1

        await asyncio.gather(*(one(address, person) for address, person in self.people))
        return dict(outcomes)

    async def _person(self, address: str, person: Applicant) -> str:
        if self.mission is not None:
            await apply(self.ledger, person, self.mission, "erasure")
        repeat = await self._sign_up(person.client, signup_body(address, self.rng))
        token = await csrf(person.client, "/mon-espace/supprimer")
        # Recorded before the POST: a deletion that fails half-way may still have deleted rows.
        deleted = Deleted(address, person.volunteer_id, [repeat], time.monotonic())
        self.ledger.deleted.append(deleted)
        for _ in range(5):  # a 503 with Retry-After is allowed: the person submits again, as the page says
            phase = self.ledger.phase
            page = await person.client.post("/mon-espace/supprimer", data={"_csrf_token": token})
            delay = self.ledger.answer(phase, "erasure", page, 200)
            if delay is None:
                if "Votre compte est supprimé" not in page.text:
                    raise RuntimeError("the deletion page does not say the account is deleted")
                deleted.confirmed, deleted.at = True, time.monotonic()
                return "deleted"
            if page.status_code != 503 or not page.headers.get("retry-after", "").isdecimal():
                return "refused"  # counted as an error by the ledger
            await asyncio.sleep(delay)
        raise RuntimeError("deletion still unavailable after 5 tries")

    async def _sign_up(self, client: httpx.AsyncClient, body: dict[str, Any]) -> str:
        key = secrets.token_hex(16)
        for _ in range(10):
            receipt, delay = await submit_signup(client, self.ledger, body, key, "erasure")
            if receipt is not None:
                return receipt
            await asyncio.sleep(delay)
        raise RuntimeError("sign-up not accepted after 10 tries")


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    return csrf_of(await client.get(path))
