"""The local PostgreSQL, Redis and mail sink behave like the real services the platform and fault tests rely on."""

from __future__ import annotations

import shutil
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
import redis

from ops.services import (
    LocalPostgres,
    LocalRedis,
    MailSink,
    free_port,
    local_environment,
    read_messages,
    scratch_folder,
)


@pytest.fixture
def folder() -> Iterator[Path]:
    path = scratch_folder()
    yield path
    shutil.rmtree(path)


@pytest.fixture
def postgres(folder: Path) -> Iterator[LocalPostgres]:
    server = LocalPostgres(folder / "postgres", free_port())
    yield server
    server.stop("immediate")


@pytest.fixture
def valkey(folder: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(folder / "redis", free_port())
    yield server
    server.kill()


async def fetch_notes(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [row["body"] for row in await connection.fetch("SELECT body FROM notes ORDER BY id")]
    finally:
        await connection.close()


async def test_postgres_keeps_committed_rows_across_a_restart(postgres: LocalPostgres) -> None:
    postgres.start()
    postgres.create_database("scratch")
    postgres.create_database("scratch")  # idempotent
    connection = await asyncpg.connect(postgres.url("scratch"))
    await connection.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    await connection.execute("INSERT INTO notes (body) VALUES ('bénévole'), ('mission')")
    await connection.close()

    postgres.stop()
    assert not postgres.is_running()
    postgres.start()

    assert postgres.is_running()
    assert await fetch_notes(postgres.url("scratch")) == ["bénévole", "mission"]


async def test_postgres_recovers_committed_rows_after_being_killed(postgres: LocalPostgres) -> None:
    postgres.start()
    postgres.create_database("scratch")
    connection = await asyncpg.connect(postgres.url("scratch"))
    await connection.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    await connection.execute("INSERT INTO notes (body) VALUES ('acknowledged')")

    postgres.kill()
    assert not postgres.is_running()
    postgres.start()

    assert await fetch_notes(postgres.url("scratch")) == ["acknowledged"]
    connection.terminate()


def test_postgres_start_is_idempotent_and_drop_database_removes_it(postgres: LocalPostgres) -> None:
    postgres.start()
    postgres.start()
    postgres.create_database("scratch")
    postgres.drop_database("scratch")
    postgres.drop_database("scratch")

    assert postgres.sql("SELECT count(*) FROM pg_database WHERE datname = 'scratch'") == "0"
    assert postgres.url("renfort") == f"postgresql://postgres@127.0.0.1:{postgres.port}/renfort"


def test_postgres_quotes_database_names_it_is_given(postgres: LocalPostgres) -> None:
    postgres.start()
    postgres.create_database("Odd-Name; DROP DATABASE postgres")

    assert (
        postgres.sql(
            "SELECT count(*) FROM pg_database WHERE datname IN ('Odd-Name; DROP DATABASE postgres', 'postgres')"
        )
        == "2"
    )


def test_redis_brings_keys_back_from_the_append_only_file_after_a_crash(valkey: LocalRedis) -> None:
    valkey.start()
    client = redis.Redis.from_url(valkey.url())
    client.set("signup:42", "queued")
    client.close()

    valkey.kill()  # no SHUTDOWN, so nothing gets a chance to save a snapshot
    assert not valkey.is_running()
    valkey.start()

    client = redis.Redis.from_url(valkey.url())
    assert client.get("signup:42") == b"queued"
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    client.close()
    assert not (valkey.data_dir / "dump.rdb").exists()


def test_redis_stop_then_start_keeps_data_and_start_is_idempotent(valkey: LocalRedis) -> None:
    valkey.start()
    valkey.start()
    client = redis.Redis.from_url(valkey.url(3))
    client.set("counter", 7)
    client.close()

    valkey.stop()
    assert not valkey.is_running()
    valkey.start()

    client = redis.Redis.from_url(valkey.url(3))
    assert client.get("counter") == b"7"
    client.close()


def test_mail_sink_stores_each_message_as_a_readable_eml_file(tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"] = "Renfort <ne-pas-repondre@renfort.example>"
    message["To"] = "camille@example.org"
    message["Subject"] = "Votre mission commence demain"
    message.set_content("Bonjour Camille, rendez-vous à 9 h à la banque alimentaire.")

    with MailSink(tmp_path / "mail", free_port()) as sink:
        with smtplib.SMTP(sink.host, sink.port) as smtp:
            smtp.send_message(message)
        stored = read_messages(sink.directory)

    assert len(stored) == 1
    assert stored[0]["Subject"] == "Votre mission commence demain"
    assert stored[0]["X-Envelope-To"] == "camille@example.org"
    body = stored[0].get_body()
    assert body is not None
    assert "rendez-vous à 9 h" in body.get_content()


def test_local_environment_reuses_given_urls_and_keeps_one_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal:5432/renfort")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SMTP_URL", raising=False)

    first = local_environment(tmp_path)
    second = local_environment(tmp_path)

    assert first["DATABASE_URL"] == "postgresql://app@db.internal:5432/renfort"
    assert first["REDIS_URL"] == "redis://cache.internal:6379/0"
    assert first["SMTP_URL"] == "smtp://127.0.0.1:1025"
    assert len(first["SECRET_KEY"]) >= 64
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert (tmp_path / ".local" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / ".local" / "postgres").exists()
