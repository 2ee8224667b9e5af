"""A sign-up wave as citizens live it: sign up once, then watch the receipt until the sign-up is saved.

Headless, against a running platform (start workers too, or receipts stay "queued"):

    locust -f loadtests/locustfile.py --headless -u 200 -r 50 -t 60s --host http://127.0.0.1:8000

Each Locust user plays one citizen after another: a valid sign-up with an e-mail no one used before, then a
few polls of `GET /api/v1/receipts/{id}` until it says "saved". The "accept → saved" line times how long the
citizen waited, to the poll interval (0.5 to 1.5 s). About one citizen in ten sends invalid data and must get a
422 with a per-field error. Tags select a part: `--tags signup` (valid journeys only) or `--tags invalid`.
The platform's per-IP limit counts every user as one client: run with SIGNUP_IP_LIMIT_PER_MINUTE=0.

Two more scenarios, each its own user class (pick classes by name on the command line):
- `MissionBrowser` (tag `search`): citizens search missions around real postal codes (cached answers), page on,
  filter by domain, and open a mission's page.
- `Applicant` (tag `apply`): signed-in volunteers find missions near them and apply ("candidater"); the outcome
  (place, wait-list, already applied, closed) is read from the 303's Location and reported per outcome. Each user
  signs up and signs in through the real e-mailed link read from the mail sink's folder RENFORT_MAIL_DIR (default
  `.local/mail`, as `ops/run` starts it; run with SIGNIN_IP_LIMIT_PER_MINUTE=0 and a worker), unless
  RENFORT_SESSIONS names a file of sessions already signed in on that platform (bench_missions' sessions.txt format).

    locust -f loadtests/locustfile.py --headless -u 100 -r 20 -t 60s --host http://127.0.0.1:8000 MissionBrowser
    locust -f loadtests/locustfile.py --headless -u 100 -r 20 -t 60s --host http://127.0.0.1:8000 Applicant
"""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import random
import re
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from locust import FastHttpUser, between, tag, task

RUN = os.environ.get("RENFORT_RUN") or f"locust-{uuid.uuid4().hex[:8]}"
MAX_POLLS = 6

# Load-test fixtures only (real postal code → INSEE commune pairs); the platform reads its geography from data.
PLACES = [("69003", "69123"), ("75011", "75056"), ("13001", "13055"), ("33000", "33063"), ("59000", "59350")]
FIRST_NAMES = ["Ana", "Léa", "Hugo", "Inès", "Lucas", "Chloé", "Karim", "Zoé"]
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Lefèvre", "N'Diaye", "Moreau"]
DOMAINS = ["solidarite-insertion", "sante-pour-tous", "prevention-protection", "education-pour-tous"]
AVAILABILITY = ["weekends", "weekdays", "evenings", "anytime"]

# Each breaks one rule; the key is the field that must carry the error message.
INVALID: list[tuple[str, dict[str, Any]]] = [
    ("email", {"email": "pas-une-adresse"}),
    ("birth_date", {"birth_date": date(date.today().year - 12, 6, 1).isoformat()}),
    ("commune_code", {"postal_code": "69003", "commune_code": "75056"}),
    ("consent", {"consent": False}),
    ("domains", {"domains": []}),
]


def signup_body(email: str | None = None) -> dict[str, Any]:
    """A valid sign-up; `email` unique to this run unless given."""
    postal_code, commune_code = random.choice(PLACES)
    return {
        "first_name": random.choice(FIRST_NAMES),
        "last_name": random.choice(LAST_NAMES),
        "email": email or f"{RUN}.{uuid.uuid4().hex}@example.org",
        "phone": "06 " + " ".join(f"{random.randint(0, 99):02d}" for _ in range(4)),
        "birth_date": date(random.randint(1950, 2006), random.randint(1, 12), random.randint(1, 28)).isoformat(),
        "postal_code": postal_code,
        "commune_code": commune_code,
        "domains": [random.choice(DOMAINS)],
        "availability": random.choice(AVAILABILITY),
        "skills": ["permis B"],
        "consent": True,
        "emergency": "covid-19",
    }


class Citizen(FastHttpUser):
    wait_time = between(0.5, 2)

    @tag("signup")
    @task(9)
    def sign_up_and_follow_receipt(self) -> None:
        with self.client.post("/api/v1/volunteers", json=signup_body(), catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"expected 202, got {response.status_code}")
                return
            receipt = response.json()["receipt"]
        accepted = time.monotonic()
        for _ in range(MAX_POLLS):
            time.sleep(random.uniform(0.5, 1.5))  # cooperative: Locust runs users on gevent
            with self.client.get(
                f"/api/v1/receipts/{receipt}", name="/api/v1/receipts/[receipt]", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"expected 200, got {response.status_code}")
                    return
                if response.json().get("status") == "saved":
                    self._report_saved(accepted, None)
                    return
        self._report_saved(accepted, TimeoutError(f"receipt not saved after {MAX_POLLS} polls"))

    @tag("invalid")
    @task(1)
    def invalid_signup(self) -> None:
        field, change = random.choice(INVALID)
        with self.client.post(
            "/api/v1/volunteers",
            json={**signup_body(), **change},
            name=f"/api/v1/volunteers [invalid {field}]",
            catch_response=True,
        ) as response:
            if response.status_code != 422:
                response.failure(f"expected 422, got {response.status_code}")
            elif field not in (response.json().get("errors") or {}):
                response.failure(f"422 without an error for {field}")
            else:
                response.success()  # the 422 is what this citizen must get

    def _report_saved(self, accepted: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="WAVE",
            name="accept → saved",
            response_time=(time.monotonic() - accepted) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


# Missions: browsing the search and the application rush -----------------------------------------------------------

CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
LINK = re.compile(r"/connexion/lien\?jeton=(\S+)")
LINK_SUBJECT = "Votre lien de connexion à Renfort"
SEARCH_PLACES = ["69001", "75011", "13001", "33000", "59000", "31000", "44000", "67000", "34000", "35000"]
OUTCOMES = {"pending", "waitlisted", "exists", "closed", "declined"}
_session_lines = itertools.count()


class MissionBrowser(FastHttpUser):
    """A citizen looking for a mission: a search near home, maybe the next page or a domain, then a mission."""

    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.postal_code = random.choice(SEARCH_PLACES)

    def _search(self, name: str, **params: Any) -> list[dict[str, Any]]:
        with self.client.get("/api/v1/missions", params={"postal_code": self.postal_code, "radius_km": 35, **params},
                             name=f"/api/v1/missions [{name}]", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
                return []
            items: list[dict[str, Any]] = response.json()["items"]
            return items

    @tag("search")
    @task(6)
    def search_near_home(self) -> None:
        self._search("near home")

    @tag("search")
    @task(2)
    def next_page(self) -> None:
        self._search("page 2", page=2)

    @tag("search")
    @task(2)
    def one_domain(self) -> None:
        self._search("domain", domain=random.choice(DOMAINS))

    @tag("search")
    @task(1)
    def open_a_mission(self) -> None:
        items = self._search("near home")
        if items:
            mission = random.choice(items)
            self.client.get(f"/missions/{mission['id']}-{mission['slug']}", name="/missions/[id]-[slug]")


class Applicant(FastHttpUser):
    """A signed-in volunteer applying to missions near home, one after another; each mission at most once."""

    wait_time = between(0.2, 1)

    def on_start(self) -> None:
        self.applied: set[int] = set()
        self.postal_code = random.choice(SEARCH_PLACES)
        sessions = os.environ.get("RENFORT_SESSIONS")
        if sessions:  # "<volunteer id> <session> <csrftoken> <form token>" a line, one line per user
            lines = Path(sessions).read_text().splitlines()
            _, session, csrf, _ = lines[next(_session_lines) % len(lines)].split()
            self.headers = {"Cookie": f"renfort_session={session}; csrftoken={csrf}"}
            self.csrf = csrf
        else:
            self.headers = {}
            self.csrf = self._sign_in()

    def _sign_in(self) -> str:
        """Sign up, ask for a link, read it from the mail sink's folder, confirm: the real journey."""
        address = f"{RUN}.{uuid.uuid4().hex}@example.org"
        self.client.post("/api/v1/volunteers", json=signup_body(address), name="/api/v1/volunteers")
        return sign_in_by_mail(self.client, address)

    @tag("apply")
    @task
    def apply_near_home(self) -> None:
        response = self.client.get("/api/v1/missions", params={"postal_code": self.postal_code, "radius_km": 35,
                                                               "per_page": 50}, name="/api/v1/missions [apply]")
        candidates = [item["id"] for item in response.json()["items"] if item["id"] not in self.applied]
        if not candidates:
            self.postal_code = random.choice(SEARCH_PLACES)
            return
        mission = random.choice(candidates)
        self.applied.add(mission)
        apply_to(self, mission, self.csrf, self.headers)


def apply_to(user: Any, mission: int, csrf: str, headers: dict[str, str], *, report: bool = True) -> str | None:
    """Applies to `mission`; the outcome read from the 303's Location (with `report`, also an APPLY line per
    outcome), or None (a failure) for any other answer."""
    with user.client.post(
        f"/missions/{mission}/candidater",
        data={"_csrf_token": csrf, "message": "Disponible tout de suite."},
        headers=headers,
        name="/missions/[id]/candidater",
        allow_redirects=False,
        catch_response=True,
    ) as answer:
        location = answer.headers.get("location") or ""
        outcome = (parse_qs(urlsplit(location).query).get("resultat") or [""])[0]
        if answer.status_code != 303 or outcome not in OUTCOMES:
            answer.failure(f"expected a 303 with an outcome, got {answer.status_code} {location!r}")
            return None
        answer.success()
    if report:
        user.environment.events.request.fire(request_type="APPLY", name=outcome, response_time=0,
                                             response_length=0, exception=None, context={})
    return outcome


def csrf_of(client: Any, path: str, **params: Any) -> str:
    """The CSRF token of the form a page carries (its cookie stays in the client's jar)."""
    response = client.get(path, params=params, name=path)
    match = CSRF_FIELD.search(response.text or "")
    if match is None:
        raise RuntimeError(f"{path}: no CSRF field (status {response.status_code})")
    return match[1]


def sign_in_by_mail(client: Any, address: str, deadline_seconds: float = 120) -> str:
    """Asks for a sign-in link, reads it from the mail sink's folder and confirms it; returns the session's CSRF
    token."""
    token = csrf_of(client, "/connexion")
    asked = time.time()
    client.post("/connexion", data={"email": address, "_csrf_token": token}, name="/connexion")
    return confirm_link(client, link_from_mail(address, deadline=time.monotonic() + deadline_seconds, since=asked))


def confirm_link(client: Any, link: str) -> str:
    """Confirms a sign-in link's token on its page, as a person does; returns the session's CSRF token."""
    token = csrf_of(client, "/connexion/lien", jeton=link)
    with client.post("/connexion/lien", data={"jeton": link, "_csrf_token": token}, name="/connexion/lien",
                     allow_redirects=False, catch_response=True) as answer:
        if answer.status_code != 303:
            answer.failure(f"sign-in: expected a 303, got {answer.status_code}")
            raise RuntimeError(f"sign-in refused ({answer.status_code})")
    return token


def link_from_mail(address: str, deadline: float, since: float = 0) -> str:
    """The token of the newest sign-in e-mail to `address` in the mail sink's folder (RENFORT_MAIL_DIR), stored after
    `since` (epoch seconds): an account signing in again has older, spent links there."""
    folder = Path(os.environ.get("RENFORT_MAIL_DIR", ".local/mail"))
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml"), reverse=True):
            if path.stat().st_mtime < since - 1:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if str(message["To"]).strip().lower() == address and message["Subject"] == LINK_SUBJECT:
                match = LINK.search(message.get_content())
                if match:
                    return match[1]
        time.sleep(1)  # cooperative: Locust runs users on gevent
    raise TimeoutError("no sign-in e-mail: is a worker running, and RENFORT_MAIL_DIR the sink's folder?")
