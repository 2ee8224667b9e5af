"""`pause_jobs` with a real worker, Redis, PostgreSQL and SMTP sink: while it is on, sign-ups are still saved and
sign-in e-mails still leave, but the welcome e-mail waits — held, not failed, not lost — and leaves once it is off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from app.switches.store import KEYS
from ops.services import MailSink
from queues.connection import job_queue
from tests.conftest import REDIS_URL, ROOT
from tests.factories import signup
from tests.helpers import eventually, kill_worker
from tests.test_organisations import post_form
from tests.test_switches import switches_command

WELCOME = "Bienvenue sur Renfort, votre inscription est enregistrée"


def subjects(sink: MailSink, address: str) -> list[str]:
    return [message["Subject"] for message in sink.messages() if message["To"] == address]


def held_functions(rq: SyncRedis) -> list[str]:
    return [Job.fetch(job_id.decode(), connection=rq, serializer=JSONSerializer).func_name
            for job_id in rq.lrange(KEYS.held_jobs, 0, -1)]  # type: ignore[union-attr]


def start_logged_worker(log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as output:
        return subprocess.Popen([sys.executable, "-m", "queues.worker"], env={**os.environ, **env}, cwd=ROOT,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


async def test_a_paused_worker_holds_the_welcome_mail_keeps_saving_signups_and_sending_sign_in_links(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, tmp_path: Path
) -> None:
    assert switches_command("on", "pause_jobs", "--reason", "vague").returncode == 0
    address = "en.attente@example.org"
    assert (await client.post("/api/v1/volunteers", json=signup(email=address))).status_code == 202
    log = tmp_path / "worker.log"
    worker = start_logged_worker(log, {"SMTP_URL": mail_sink.url})
    rq = SyncRedis.from_url(REDIS_URL)
    try:
        async def saved() -> bool:
            return await db.fetchval("SELECT count(*) FROM volunteers WHERE email = $1", address) == 1

        await eventually(saved, timeout=60)  # the drain is essential: it runs while paused

        await eventually(lambda: "queues.mail.send_volunteer_mails" in held_functions(rq), timeout=30)
        assert "tâche(s) de fond mise(s) de côté" in switches_command("list").stdout
        ready = (await client.get("/ready")).json()["queue"]
        assert ready["jobs_held"] >= 1 and ready["jobs_queued"] == 0  # what waits shows, apart from the queue
        signin = await post_form(client, "/connexion", {"email": address}, "/connexion")
        assert signin.status_code == 200
        await eventually(lambda: "Votre lien de connexion à Renfort" in subjects(mail_sink, address), timeout=60)
        assert WELCOME not in subjects(mail_sink, address)
        assert FailedJobRegistry(queue=job_queue(rq)).count == 0  # waiting is not failing
        assert job_queue(rq).count == 0  # and it does not spin through the queue

        assert switches_command("off", "pause_jobs").returncode == 0
        await eventually(lambda: WELCOME in subjects(mail_sink, address), timeout=60)
        assert subjects(mail_sink, address).count(WELCOME) == 1
        assert await redis.llen(KEYS.held_jobs) == 0
        assert FailedJobRegistry(queue=job_queue(rq)).count == 0
    except AssertionError:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        rq.close()
        kill_worker(worker)
