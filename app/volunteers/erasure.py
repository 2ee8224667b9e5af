"""Erasing a person from the sign-up queue: every queued copy of their sign-up, wherever it waits.

A copy can be in `pending`, in a drain consumer's `inflight:<consumer>` list, or in `dead`. One Lua script sweeps all
those lists at once, so no claim, requeue or dead-letter retry can move a copy from a list not yet swept into one
already swept. A copy in flight is different: its consumer has decoded it and may insert the row at any moment, and
removing the copy from Redis would not stop that. So the sweep leaves the copies of a live consumer (one holding its
lease) where they are and reports them; the caller sweeps again until none is left (the consumer committed and
acknowledged its batch, or gave it back to `pending`, where the next sweep takes it), and only then deletes the rows:
whatever a consumer wrote is committed by then, and no copy remains that could write it again. A consumer whose
lease ran out is taken for dead, as the drain's own recovery takes it: its copies are removed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from app.volunteers.signup_queue import SignupQueue, receipt_key

log = logging.getLogger("renfort.erasure")

# KEYS: pending, dead, dead-reasons, consumers; ARGV: the record's exact `"email_normalized":"…"` fragment, the
# e-mail itself, the in-flight key prefix, the receipt key prefix, "1" to remove live consumers' copies too, the
# lease key prefix → the number of copies left in flight with a live consumer.
# The fragment is a cheap filter (a quote inside a JSON string is escaped, so it cannot match inside another field);
# the decode confirms. LREM removes exact raw values, so nothing else in a list moves.
PURGE = """
local function sweep(key, remove)
  local found = 0
  for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if string.find(item, ARGV[1], 1, true) then
      local record = cjson.decode(item)
      if record.email_normalized == ARGV[2] then
        found = found + 1
        if remove then
          redis.call('LREM', key, 0, item)
          redis.call('HDEL', KEYS[3], record.receipt)
          redis.call('DEL', ARGV[4] .. record.receipt)
        end
      end
    end
  end
  return found
end
sweep(KEYS[1], true)
sweep(KEYS[2], true)
local in_flight = 0
for _, consumer in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local live = ARGV[5] ~= '1' and redis.call('EXISTS', ARGV[6] .. consumer) == 1
  if live then in_flight = in_flight + sweep(ARGV[3] .. consumer, false) else sweep(ARGV[3] .. consumer, true) end
end
return in_flight
"""


async def purge_signups(queue: SignupQueue, email_normalized: str, *, in_flight_too: bool = False) -> int:
    """Removes this e-mail's queued sign-ups from `pending`, `dead` and dead consumers' batches; returns how many
    copies live consumers hold (removed too with `in_flight_too`)."""
    fragment = msgspec.json.encode({"email_normalized": email_normalized}).decode()[1:-1]
    keys = [queue.pending, queue.dead, queue.dead_reasons, queue.consumers_key]
    args = [fragment, email_normalized, queue.inflight_key(""), receipt_key(""), "1" if in_flight_too else "0",
            queue.lease_key("")]
    return int(await queue.redis.eval(PURGE, len(keys), *keys, *args))


async def erase_from_queue(queue: SignupQueue, email_normalized: str, *, lease_seconds: int) -> bool:
    """Purges every queued copy and forgets the e-mail's dedupe mark. Returns False when a live consumer still held
    a copy after a lease's length (stalled yet renewing): its copy is then removed, but it could still write."""
    deadline = time.monotonic() + lease_seconds + 2
    released = True
    while await purge_signups(queue, email_normalized):
        if time.monotonic() >= deadline:
            released = False
            await purge_signups(queue, email_normalized, in_flight_too=True)
            log.warning("a drain consumer held a sign-up being erased for a whole lease; copy removed")
            break
        await asyncio.sleep(0.05)
    await queue.forget_email(email_normalized)
    return released
