"""Stopping a web process's background loops (the switch sampler, the postcode watch) at shutdown."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("renfort.web")


async def stop_background(task: asyncio.Task[None], grace: float) -> None:
    """Cancels `task` and waits at most `grace` seconds for it to end. A client library can swallow a cancellation
    (redis-py does when its reply is already in): the loops also check a stop flag of their own, and a shutdown never
    waits for them forever."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.warning("%s did not stop within %.1f s; left behind", task.get_name(), grace)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("%s ended with %s", task.get_name(), type(task.exception()).__name__)
