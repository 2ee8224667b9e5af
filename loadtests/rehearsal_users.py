"""The user classes of a rehearsal (`python -m loadtests.rehearse`), configured by the JSON file RENFORT_REHEARSAL
names (written by rehearse from the scenario): how many users of each class, their pace, the emergency they read,
the missions the rehearsal seeded.

Every address is `<run>.<n>@rehearsal.invalid`: the platform sends them no e-mail and the purge finds them. What the
platform accepted is written to the run's records folder (one file per Locust process: `S <receipt>` per sign-up
answered 202, `A <mission> <address> <outcome>` per application answered with a place or the wait-list), which
rehearse checks against PostgreSQL once the queues have drained. Applicants sign in with links from the ops
endpoint `/ops/rehearsal/links` (OPS_TOKEN), which serves rehearsal addresses only, and confirm them on the real
sign-in page. The coordinator is a real account (locally the demo's national coordinator, its link read from the
mail sink's folder; elsewhere a signed-in session from RENFORT_COORDINATOR_SESSION).

    locust -f loadtests/rehearsal_users.py … EmergencyReader RehearsalCitizen   # what rehearse runs
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from locust import FastHttpUser, between, constant, constant_throughput, task

import loadtests.locustfile as citizens

DOMAIN = "rehearsal.invalid"
CONFIG: dict[str, Any] = json.loads(Path(os.environ["RENFORT_REHEARSAL"]).read_text()) \
    if os.environ.get("RENFORT_REHEARSAL") else {}
RUN = str(CONFIG.get("run") or f"locust-{uuid.uuid4().hex[:8]}")
RECORDS = Path(CONFIG["records"]) if CONFIG.get("records") else None
EMERGENCY = str(CONFIG.get("emergency") or "covid-19")
MISSIONS: list[int] = [int(m) for m in CONFIG.get("missions") or []]
DISPATCH: dict[str, Any] = CONFIG.get("dispatch") or {}
POSTAL_CODES = ["75011", "69003", "13001", "33000", "59000", "31000", "44000", "67000"]
WRONG_CODES = ["abcde", "00000"]  # the page's two error variants: malformed, unknown
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PLAN_WAIT = 90  # seconds the coordinator waits for a dispatch's plan before cancelling it anyway
RUN_PATH = re.compile(r"/mobilisation/(\d+)$")  # where planning a dispatch redirects
_addresses = itertools.count(1)
_records: TextIO | None = None


def address() -> str:
    """Unique within the run across Locust processes: the process id, then a counter."""
    return f"{RUN}.{os.getpid()}-{next(_addresses)}@{DOMAIN}"


def record(line: str) -> None:
    """One accepted write, for the integrity check (line-buffered: a process killed at the end loses nothing
    already answered)."""
    global _records
    if RECORDS is None:
        return
    if _records is None:
        RECORDS.mkdir(parents=True, exist_ok=True)
        _records = open(RECORDS / f"{os.getpid()}.txt", "a", buffering=1)  # noqa: SIM115 (lives with the process)
    _records.write(line + "\n")


def configure(cls: type[FastHttpUser]) -> type[FastHttpUser]:
    """Applies the scenario's settings for this class: `count` users (else `weight`), paced at `rate` task runs a
    second each (constant throughput), or `wait` = [min, max] seconds, or no wait at all."""
    settings = (CONFIG.get("classes") or {}).get(cls.__name__) or {}
    if settings.get("count"):
        cls.fixed_count = int(settings["count"])
    if settings.get("weight"):
        cls.weight = int(settings["weight"])
    if settings.get("rate"):
        cls.wait_time = constant_throughput(float(settings["rate"]))
    elif settings.get("wait"):
        low, high = settings["wait"]
        cls.wait_time = between(float(low), float(high))
    elif "rate" in settings or "wait" in settings:
        cls.wait_time = constant(0)
    return cls


def sign_up(user: FastHttpUser, email: str, name: str = "POST /api/v1/volunteers") -> str | None:
    """A valid sign-up under a rehearsal address; the receipt, recorded, or None (a failure)."""
    body = citizens.signup_body(email)
    del body["emergency"]  # rehearsal sign-ups count in no emergency's public figures
    with user.client.post("/api/v1/volunteers", json=body, name=name, catch_response=True) as response:
        if response.status_code != 202:
            hint = " (per-IP limit: run the platform with SIGNUP_IP_LIMIT_PER_MINUTE=0)" \
                if response.status_code == 429 else ""
            response.failure(f"expected 202, got {response.status_code}{hint}")
            return None
        receipt = str(response.json()["receipt"])
    record(f"S {receipt}")
    return receipt


def ops_headers() -> dict[str, str]:
    token = os.environ.get("OPS_TOKEN", "")
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


@configure
class EmergencyReader(FastHttpUser):
    """A visitor of the emergency's public page, mostly without a postal code, some with one (or a wrong one)."""

    wait_time = constant(0)

    @task
    def read_the_page(self) -> None:
        draw = random.random()
        query = ""
        if draw < 0.05:
            query = "?code_postal=" + random.choice(WRONG_CODES)
        elif draw < 0.2:
            query = "?code_postal=" + random.choice(POSTAL_CODES)
        with self.client.get(f"/urgence/{EMERGENCY}{query}", name="GET /urgence/[slug]", catch_response=True) as page:
            if page.status_code != 200:
                page.failure(f"expected 200, got {page.status_code}")


@configure
class RehearsalCitizen(FastHttpUser):
    """Sign-ups of a wave: valid ones under rehearsal addresses, a few invalid ones (a 422 naming the field), and a
    look at the receipt of an earlier sign-up now and then."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.receipts: deque[tuple[float, str]] = deque(maxlen=50)

    @task(20)
    def sign_up(self) -> None:
        receipt = sign_up(self, address())
        if receipt is not None:
            self.receipts.append((time.monotonic(), receipt))

    @task(1)
    def invalid_signup(self) -> None:
        field, change = random.choice(citizens.INVALID)
        with self.client.post("/api/v1/volunteers", json={**citizens.signup_body(address()), **change},
                              name="POST /api/v1/volunteers [invalid]", catch_response=True) as response:
            if response.status_code != 422:
                response.failure(f"expected 422, got {response.status_code}")
            elif field not in (response.json().get("errors") or {}):
                response.failure(f"422 without an error for {field}")
            else:
                response.success()

    @task(1)
    def follow_a_receipt(self) -> None:
        if not self.receipts or time.monotonic() - self.receipts[0][0] < 2:
            return
        _, receipt = self.receipts.popleft()
        with self.client.get(f"/api/v1/receipts/{receipt}", name="GET /api/v1/receipts/[receipt]",
                             catch_response=True) as response:
            if response.status_code != 200 or response.json().get("status") not in ("queued", "saved"):
                response.failure(f"expected 200 queued or saved, got {response.status_code}")


@configure
class RehearsalBrowser(citizens.MissionBrowser):
    """The mission search of locustfile.MissionBrowser (real missions, read only)."""


@configure
class RehearsalApplicant(FastHttpUser):
    """Signs up, signs in with a link from the ops endpoint, applies to each mission the rehearsal seeded (in a
    random order, each once), then looks at its applications now and then."""

    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.email = address()
        self.todo = random.sample(MISSIONS, len(MISSIONS))
        self.csrf = ""
        if sign_up(self, self.email, name="POST /api/v1/volunteers [applicant]") is None:
            return
        link = self._link(deadline=time.monotonic() + 120)
        if link is not None:
            self.csrf = citizens.confirm_link(self.client, link)

    def _link(self, deadline: float) -> str | None:
        """The sign-in link, once the sign-up is saved (None from the endpoint until then)."""
        while time.monotonic() < deadline:
            with self.client.post("/ops/rehearsal/links", json={"emails": [self.email]}, headers=ops_headers(),
                                  name="POST /ops/rehearsal/links", catch_response=True) as answer:
                if answer.status_code != 200:
                    answer.failure(f"expected 200, got {answer.status_code} (is OPS_TOKEN the platform's?)")
                    return None
                link = (answer.json().get("links") or {}).get(self.email)
            if link:
                return str(link)
            time.sleep(1)  # cooperative: Locust runs users on gevent
        self.environment.events.request.fire(request_type="SIGNIN", name="link never came", response_time=0,
                                             response_length=0, exception=TimeoutError("sign-up not saved"),
                                             context={})
        return None

    @task
    def apply(self) -> None:
        if not self.csrf:
            return
        if not self.todo:
            self.client.get("/mon-espace/candidatures", name="GET /mon-espace/candidatures")
            return
        mission = self.todo.pop()
        outcome = citizens.apply_to(self, mission, self.csrf, {}, report=False)
        if outcome in ("pending", "waitlisted"):
            record(f"A {mission} {self.email} {outcome}")


@configure
class Coordinator(FastHttpUser):
    """The coordination at work while the public load runs: its dashboard, then a dispatch of the rehearsal's
    missions — planned, its plan read, then cancelled, never committed (committing proposes missions to real
    people)."""

    wait_time = between(3, 6)
    fixed_count = 1

    def on_start(self) -> None:
        session = os.environ.get("RENFORT_COORDINATOR_SESSION")
        if session:  # "<user id> <session> <csrftoken> <form token>", as loadtests.bench_missions writes them
            _, cookie, csrf, _ = Path(session).read_text().split()[:4]
            self.client.cookiejar.clear()
            self.headers = {"Cookie": f"renfort_session={cookie}; csrftoken={csrf}"}
        else:
            self.headers = {}
            citizens.sign_in_by_mail(self.client, str(DISPATCH.get("coordinator") or ""))

    @task(2)
    def dashboard(self) -> None:
        self.client.get("/coordination", headers=self.headers, name="GET /coordination")

    @task(1)
    def dispatch_and_cancel(self) -> None:
        slug, missions = DISPATCH.get("emergency"), DISPATCH.get("missions") or []
        if not slug or not missions:
            return
        base = f"/coordination/urgences/{slug}/mobilisation"
        page = self.client.get(base, headers=self.headers, name="GET /coordination/…/mobilisation")
        match = citizens.CSRF_FIELD.search(page.text or "")
        if match is None:
            return
        form = [("_csrf_token", match[1]), ("pool", "les-deux"), ("max_km", "50"),
                *(("missions", str(mission)) for mission in missions)]
        with self.client.post(base, data=urlencode(form), headers={**self.headers, **FORM}, allow_redirects=False,
                              name="POST /coordination/…/mobilisation", catch_response=True) as answer:
            found = RUN_PATH.search(answer.headers.get("location") or "")
            if answer.status_code != 303 or found is None:
                answer.failure(f"expected a 303 to the run, got {answer.status_code}")
                return
        run, asked = f"{base}/{found[1]}", time.monotonic()
        planned: Exception | None = TimeoutError(f"no plan after {PLAN_WAIT} s")
        while time.monotonic() - asked < PLAN_WAIT:
            time.sleep(2)  # cooperative: Locust runs users on gevent
            view = self.client.get(run, headers=self.headers, name="GET /coordination/…/mobilisation/[run]")
            if view.status_code == 200 and "Calcul en cours" not in (view.text or ""):
                planned = None
                break
        # How long the coordinator waited for the plan (the planning job queues behind the wave's other jobs).
        self.environment.events.request.fire(request_type="DISPATCH", name="plan ready",
                                             response_time=(time.monotonic() - asked) * 1000, response_length=0,
                                             exception=planned, context={})
        cancel = [("_csrf_token", match[1])]
        self.client.post(f"{run}/annuler", data=urlencode(cancel), headers={**self.headers, **FORM},
                         allow_redirects=False, name="POST /coordination/…/annuler")
