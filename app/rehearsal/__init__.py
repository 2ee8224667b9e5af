"""Load rehearsals (loadtests/rehearse.py): traffic marked by the reserved domain `rehearsal.invalid` (RFC 2606),
the missions it applies to, its applicants' sign-in links, the integrity check after a run and the purge that
leaves nothing behind, all behind the ops token (`/ops/rehearsal/…`) or on the command line (`python -m
app.rehearsal`).

Rehearsal sign-ups go the whole real way (accept → Redis → drain → PostgreSQL); only their e-mails stop, at the
outbox (queues/outbox.py), since nobody reads a mailbox under a domain that cannot exist.
"""

from __future__ import annotations

DOMAIN = "rehearsal.invalid"


def is_rehearsal_address(email_normalized: str) -> bool:
    """Whether an address (normalised, as validated at sign-up) belongs to rehearsal traffic."""
    return email_normalized.rpartition("@")[2] == DOMAIN
