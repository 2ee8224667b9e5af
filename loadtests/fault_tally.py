"""The fault benchmark's tally: every answer the clients recorded, looked for in PostgreSQL and in Redis's queues.

Read by key layout (`<prefix>pending`, `inflight:<consumer>`, the dead letters) from outside, as ops would: the
benchmark imports nothing of the platform. Rows are counted for the run only (its e-mail prefix, its missions), so
the tally holds on a platform that has data and traffic of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from redis import Redis

from loadtests.bench_missions import APPLICATIONS_PENDING, APPLIED, HOLDING, Postgres
from loadtests.fault_traffic import Ledger
from loadtests.harness import get_json

SIGNUPS = "renfort:signups:"
APPLICATIONS = APPLICATIONS_PENDING.removesuffix("pending")
FAILURES = ("lost", "duplicates", "oversold", "resurrected", "stuck", "errors")


def failed(result: dict[str, Any]) -> int:
    """The exit status: 1 when any figure that must be 0 is not."""
    return 1 if any(result[key] for key in FAILURES) else 0


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def records(redis: Redis, keys: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """The JSON records kept in Redis lists or hash values (a queue's pending, in-flight or dead records)."""
    found = []
    for key in keys:
        kind = text(redis.type(key))
        raws = redis.lrange(key, 0, -1) if kind == "list" else redis.hvals(key) if kind == "hash" else []
        for raw in raws:
            with suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict):
                    found.append(record)
    return found


def queue_keys(redis: Redis, prefix: str) -> list[bytes | str]:
    return [prefix + "pending", *redis.scan_iter(match=prefix + "inflight:*", count=1000)]


def queued(redis: Redis) -> int:
    """Records still waiting in either queue (pending or in a consumer's hands) plus the consumers holding them."""
    total = 0
    for prefix in (SIGNUPS, APPLICATIONS):
        total += sum(int(redis.llen(key)) for key in queue_keys(redis, prefix)) + int(redis.scard(prefix + "consumers"))
    return total


def dead_keys(prefix: str) -> list[str]:
    # A list of records until the queues' dead letters became a hash (record key → record): either is read.
    return [prefix + "dead", prefix + "dead-letters"]


def dead_letter_counts(base: str, redis: Redis) -> dict[str, int]:
    """Dead letters per queue: /ready's figures where it gives them, else the lengths of the `dead` lists."""
    counts = {"signups": len(records(redis, dead_keys(SIGNUPS))),
              "applications": len(records(redis, dead_keys(APPLICATIONS)))}
    try:
        queue = get_json(f"{base}/ready").get("queue") or {}
    except (OSError, ValueError, AttributeError):
        queue = {}
    for key, value in queue.items():
        if "dead" in key:
            counts["applications" if "application" in key else "signups"] = int(value)
    return counts


def split_missing(missing: list[Any], queued: set[Any]) -> tuple[list[Any], list[Any]]:
    """(lost, stuck): stuck ones are still in a queue after the drain wait, lost ones nowhere."""
    return [item for item in missing if item not in queued], [item for item in missing if item in queued]


def tally_signups(ledger: Ledger, run: str, db: Postgres, redis: Redis) -> dict[str, Any]:
    deleted = {person.email for person in ledger.deleted}  # sent, answered or not: their rows may be gone
    confirmed = {person.email for person in ledger.deleted if person.confirmed}
    deleted_receipts = {receipt for person in ledger.deleted for receipt in person.receipts}
    rows = db.fetch("SELECT receipt, email_normalized FROM volunteers WHERE email_normalized LIKE $1", run + ".%")
    receipts, emails = {row["receipt"] for row in rows}, {row["email_normalized"] for row in rows}
    dead = {record.get("receipt") for record in records(redis, dead_keys(SIGNUPS))}
    dead |= {text(key) for key in redis.hkeys(SIGNUPS + "dead-reasons")}
    queued = {record.get("receipt") for record in records(redis, queue_keys(redis, SIGNUPS))}
    # A receipt is saved when its row is there, or its person's (a retry whose idempotency key was lost gets a new
    # receipt for the same address: one row, both receipts answered).
    persisted = {receipt for receipt, (address, _) in ledger.receipts.items()
                 if address not in deleted and (receipt in receipts or address in emails)}
    missing = [receipt for receipt in ledger.receipts
               if receipt not in persisted and receipt not in dead and receipt not in deleted_receipts]
    lost, stuck = split_missing(missing, queued)
    duplicates = db.scalar("SELECT (count(*) - count(DISTINCT email_normalized))"
                           " + (count(receipt) - count(DISTINCT receipt)) FROM volunteers"
                           " WHERE email_normalized LIKE $1", run + ".%")
    return {"accepted": len(ledger.receipts), "persisted": len(persisted), "deleted": len(deleted_receipts),
            "dead_lettered": len(dead & set(ledger.receipts)), "lost": lost, "stuck": stuck,
            "duplicates": int(duplicates), "resurrected": confirmed & emails}


def places(db: Postgres, answered: dict[tuple[int, int], str], missions: list[int]) -> dict[str, int]:
    """`oversold` over the run's missions: places held (pending, accepted, done, proposed) beyond a mission's places;
    `status_mismatch`: answered pairs whose row holds another status than the one answered."""
    oversold = db.scalar(
        "SELECT coalesce(sum(greatest(0, h.held - m.places)), 0) FROM missions m JOIN"
        " (SELECT mission_id, count(*) AS held FROM applications WHERE status = ANY($1) AND mission_id = ANY($2)"
        " GROUP BY 1) h ON h.mission_id = m.id",
        list(HOLDING), missions,
    )
    pairs = list(answered.items())
    mismatched = db.scalar(
        "SELECT count(*) FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS p(m, v, outcome)"
        " JOIN applications a ON a.mission_id = p.m AND a.volunteer_id = p.v WHERE a.status <> p.outcome",
        [mission for (mission, _), _ in pairs], [volunteer for (_, volunteer), _ in pairs],
        [outcome for _, outcome in pairs],
    )
    return {"oversold": int(oversold), "status_mismatch": int(mismatched)}


def tally_applications(ledger: Ledger, db: Postgres, redis: Redis, missions: list[int]) -> dict[str, Any]:
    deleted_ids = {person.volunteer_id for person in ledger.deleted}
    confirmed = {person.volunteer_id for person in ledger.deleted if person.confirmed}
    answered = {pair: outcome for pair, (outcome, _) in ledger.pairs.items()
                if outcome in APPLIED and pair[1] not in deleted_ids}
    rows = {(int(row["mission_id"]), int(row["volunteer_id"])) for row in db.fetch(
        "SELECT mission_id, volunteer_id FROM applications WHERE mission_id = ANY($1)", missions)}

    def pairs(found: list[dict[str, Any]]) -> set[tuple[int, int]]:
        return {(int(record["m"]), int(record["v"])) for record in found if "m" in record and "v" in record}

    dead = pairs(records(redis, dead_keys(APPLICATIONS)))
    queued = pairs(records(redis, queue_keys(redis, APPLICATIONS)))
    persisted = [pair for pair in answered if pair in rows]
    lost, stuck = split_missing([pair for pair in answered if pair not in rows and pair not in dead], queued)
    duplicates = db.scalar("SELECT count(*) - count(DISTINCT (mission_id, volunteer_id)) FROM applications"
                           " WHERE mission_id = ANY($1)", missions)
    held = places(db, answered, missions)
    return {"accepted": len(answered), "persisted": len(persisted), "dead_lettered": len(dead & set(answered)),
            "lost": lost, "stuck": stuck, "duplicates": int(duplicates), "oversold": held["oversold"],
            "status_mismatch": held["status_mismatch"],
            # Wherever they applied: an erased person's application to any mission is a resurrection.
            "resurrected": {int(row["volunteer_id"]) for row in db.fetch(
                "SELECT DISTINCT volunteer_id FROM applications WHERE volunteer_id = ANY($1)", sorted(confirmed))}}


def summary(ledger: Ledger, signups: dict[str, Any], applications: dict[str, Any], dead: dict[str, int],
            figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON line's figures; adds each phase's answers, errors and losses to `figures`."""
    deleted_ids = {person.volunteer_id: person.email for person in ledger.deleted}
    resurrected = signups["resurrected"] | {deleted_ids[volunteer] for volunteer in applications["resurrected"]}
    for name, phase in figures.items():
        phase["answers"] = dict(sorted(ledger.answers[name].items()))
        phase["errors"] = dict(sorted(ledger.errors[name].items()))
        phase["lost"] = sum(1 for receipt in signups["lost"] if ledger.receipts[receipt][1] == name) + sum(
            1 for pair in applications["lost"] if ledger.pairs[pair][1] == name)
    result = {
        "accepted": signups["accepted"] + applications["accepted"],
        "persisted": signups["persisted"] + applications["persisted"],
        "lost": len(signups["lost"]) + len(applications["lost"]),
        "duplicates": signups["duplicates"] + applications["duplicates"],
        "oversold": applications["oversold"],
        "dead_letters": sum(dead.values()),
        "resurrected": len(resurrected),
        "stuck": len(signups["stuck"]) + len(applications["stuck"]),
        "errors": ledger.error_count(),
        # Requests a web process killed on purpose never answered; each was sent again (allowed, not an error).
        "unanswered": ledger.unanswered(),
    }
    for name, part in (("signups", signups), ("applications", applications)):
        result[name] = {key: len(value) if isinstance(value, list | set) else value for key, value in part.items()}
    result["dead_letters_by_queue"] = dead
    result["deleted_people"] = sum(person.confirmed for person in ledger.deleted)
    result["deletions_unconfirmed"] = sum(not person.confirmed for person in ledger.deleted)
    return result
