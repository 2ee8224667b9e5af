"""Ops command for queued writes that could not be written (sign-ups, application changes):
`python -m queues.deadletters [list|retry] [--queue signups|applications]` (both queues unless one is named).

It prints record keys (receipts; mission:volunteer:version), reasons and times: never names or e-mails."""

from __future__ import annotations

import argparse
import asyncio

from redis.asyncio import Redis

from app.applications.capacity import ApplicationQueue
from app.console.dead_letters import Drain, listing, retry, write_queues
from app.settings import get_settings
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue


async def main(command: str, queue_name: str | None, limit: int) -> int:
    settings = get_settings()
    redis = Redis.from_url(settings.redis_url)
    connection = enqueue.connect(settings.redis_url)
    queues = write_queues(SignupQueue(redis, settings.secret_key.reveal()), ApplicationQueue(redis))
    chosen = [queues[queue_name]] if queue_name else list(queues.values())

    async def request_drain(drain: Drain) -> None:
        drain(connection)

    try:
        for queue in chosen:
            if command == "list":
                found = await listing(queue, limit)
                print(f"{found.total} {queue.noun} en lettres mortes")
                for letter in found.letters:
                    print(f"  {letter.failed_at}  {letter.key}  {letter.reason}")
            else:
                moved = await retry(queue, request_drain)
                print(f"{moved} {queue.noun} {queue.put_back} dans la file")
    finally:
        await redis.aclose()
        connection.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["list", "retry"], nargs="?", default="list")
    parser.add_argument("--queue", choices=["signups", "applications"], default=None)
    parser.add_argument("--limit", type=int, default=100)
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments.command, arguments.queue, arguments.limit)))
