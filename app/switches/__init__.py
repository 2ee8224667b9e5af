"""Runtime switches and load shedding: degraded modes that keep the sign-up, emergency and coordination paths open
while the rest of the platform steps aside.

Switches live in Redis (`store.py`), each web process keeps a copy refreshed by a background sampler that also
watches the sign-up queue's age and its own event-loop lag (`board.py`); one raw ASGI middleware (`gate.py`) reads
that copy on every request and answers 503 with Retry-After where a mode closes a path (`paths.py` lists which).
Admins flip switches on `/administration/interrupteurs` (`controllers.py`) or with `python -m app.switches`; every
change is journaled in PostgreSQL (`service.py`, `models.py`). Workers hold back non-essential jobs while
`pause_jobs` is on (`jobs.py`).
"""
