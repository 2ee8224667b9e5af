"""Turning switches on and off, and their journal.

A change is flipped in Redis together with its journal entry (store.py's script), so the switch works while
PostgreSQL is down — which is when maintenance is needed — and the entry waits in Redis until `copy_journal` writes it
into `switch_changes` (idempotent on the change's id) in the caller's transaction; the Redis copy is dropped only
once that transaction committed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.db.after_commit import Clients, after_commit
from app.switches.models import SwitchChangeRow
from app.switches.schemas import REASON_LENGTH, JournalEntry, Switch
from app.switches.store import SwitchStore
from app.text_rules import TextRefused, clean_text


class SwitchRefused(Exception):
    """The request names no switch, or its reason cannot be kept; `message` is French."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def parse_switch(raw: object) -> Switch:
    try:
        return Switch(str(raw or ""))
    except ValueError:
        names = ", ".join(switch.value for switch in Switch)
        raise SwitchRefused(f"Cet interrupteur n'existe pas. Interrupteurs : {names}.", "switch") from None


def parse_reason(raw: object) -> str | None:
    try:
        return clean_text(raw, "Motif", REASON_LENGTH, collapse=True) or None
    except TextRefused as refused:
        raise SwitchRefused(refused.message, "reason") from None


async def copy_journal(session: AsyncSession, store: SwitchStore) -> int:
    """Writes the changes waiting in Redis into `switch_changes`; returns how many were waiting."""
    waiting = await store.unjournaled()
    if not waiting:
        return 0
    rows = [{"change_id": change.id, "at": change.at, "switch": change.switch.value, "old_value": change.was_on,
             "new_value": change.on, "actor": change.actor, "actor_user_id": change.actor_user_id,
             "reason": change.reason} for _, change in waiting]
    # An admin deleted since the flip: the change stays journaled, without their id.
    actors = {row["actor_user_id"] for row in rows if row["actor_user_id"] is not None}
    known = set(await session.scalars(select(User.id).where(User.id.in_(actors)))) if actors else set()
    for row in rows:
        if row["actor_user_id"] not in known:
            row["actor_user_id"] = None
    await session.execute(insert(SwitchChangeRow).values(rows).on_conflict_do_nothing(index_elements=["change_id"]))
    entries = [entry for entry, _ in waiting]

    async def forget(clients: Clients) -> None:
        await SwitchStore(clients.redis).forget_journaled(entries)

    after_commit(session, forget)
    return len(waiting)


async def journal(session: AsyncSession, limit: int = 100) -> list[JournalEntry]:
    """The latest changes first."""
    rows = await session.execute(
        select(SwitchChangeRow.at, SwitchChangeRow.switch, SwitchChangeRow.old_value, SwitchChangeRow.new_value,
               SwitchChangeRow.actor, User.email, SwitchChangeRow.reason)
        .outerjoin(User, User.id == SwitchChangeRow.actor_user_id)
        .order_by(SwitchChangeRow.at.desc(), SwitchChangeRow.id.desc())
        .limit(limit)
    )
    return [JournalEntry(at=at, switch=switch, was_on=old, on=new, actor=actor, actor_email=email, reason=reason)
            for at, switch, old, new, actor, email, reason in rows]
