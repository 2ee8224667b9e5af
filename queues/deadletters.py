"""Ops command for sign-ups that could not be written: `python -m queues.deadletters [list|retry]`."""

from __future__ import annotations

import argparse
import asyncio

from redis.asyncio import Redis

from app.settings import get_settings
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue


async def main(command: str, limit: int) -> int:
    settings = get_settings()
    redis = Redis.from_url(settings.redis_url)
    queue = SignupQueue(redis, settings.secret_key.reveal())
    try:
        if command == "list":
            letters = await queue.dead_letters(limit=limit)
            print(f"{await queue.dead_count()} inscription(s) en lettres mortes")
            for letter in letters:
                print(f"{letter.failed_at}  reçu {letter.record.receipt}  {letter.reason}")
        else:
            moved = await queue.retry_dead_letters()
            if moved:
                await queue.request_drain()
                enqueue.drain_signups(enqueue.connect(settings.redis_url))
            print(f"{moved} inscription(s) remise(s) dans la file")
    finally:
        await redis.aclose()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["list", "retry"], nargs="?", default="list")
    parser.add_argument("--limit", type=int, default=100)
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments.command, arguments.limit)))
