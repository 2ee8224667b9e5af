"""Work that must happen once a transaction has committed (enqueue a job, bump a cache version), and only then.

Services register it on the session they were given; whoever owns the transaction — the request (`provide_db`) or
the job (`unit_of_work`) — runs it right after the commit, with the clients it holds. A rolled-back transaction
runs nothing. Actions with the same `key` in one transaction run once (one cache bump for many changes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("renfort.after_commit")
ACTIONS = "after_commit"


@dataclass(frozen=True, slots=True)
class Clients:
    """What an action may use: the owner's Redis client, and the synchronous connection RQ enqueues through."""

    redis: Redis
    rq_connection: SyncRedis


Action = Callable[[Clients], Awaitable[None]]


def after_commit(session: AsyncSession, action: Action, *, key: str | None = None) -> None:
    actions: dict[object, Action] = session.info.setdefault(ACTIONS, {})
    actions.setdefault(key if key is not None else object(), action)


def pending(session: AsyncSession) -> bool:
    return bool(session.info.get(ACTIONS))


async def run_after_commit(session: AsyncSession, clients: Clients) -> None:
    """Runs and forgets the session's actions, in the order they were registered. The commit happened: an action
    that fails is logged and the others still run (each one's own design says how it is made up for — e.g. the
    workers' tick schedules a drain nobody enqueued)."""
    actions: dict[object, Action] = session.info.pop(ACTIONS, {})
    for action in actions.values():
        try:
            await action(clients)
        except Exception as error:
            log.warning("an after-commit action failed (%s)", type(error).__name__)
