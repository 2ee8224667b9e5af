"""A sign-up wave as citizens live it: sign up once, then watch the receipt until the sign-up is saved.

Headless, against a running platform (start workers too, or receipts stay "queued"):

    locust -f loadtests/locustfile.py --headless -u 200 -r 50 -t 60s --host http://127.0.0.1:8000

Each Locust user plays one citizen after another: a valid sign-up with an e-mail no one used before, then a
few polls of `GET /api/v1/receipts/{id}` until it says "saved". The "accept → saved" line times how long the
citizen waited, to the poll interval (0.5 to 1.5 s). About one citizen in ten sends invalid data and must get a
422 with a per-field error. Tags select a part: `--tags signup` (valid journeys only) or `--tags invalid`.
The platform's per-IP limit counts every user as one client: run with SIGNUP_IP_LIMIT_PER_MINUTE=0.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import date
from typing import Any

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


def signup_body() -> dict[str, Any]:
    postal_code, commune_code = random.choice(PLACES)
    return {
        "first_name": random.choice(FIRST_NAMES),
        "last_name": random.choice(LAST_NAMES),
        "email": f"{RUN}.{uuid.uuid4().hex}@example.org",
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
