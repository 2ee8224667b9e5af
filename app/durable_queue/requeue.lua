#!lua flags=allow-oom
-- Puts an in-flight batch back at the head of `pending`, in its original order, and releases its consumer.
-- Either the consumer gives its own batch back (its token must still hold the lease), or a dead consumer's batch
-- is recovered (token '': only once its lease has run out). Check and move are one step, so a live consumer's
-- batch is never taken from under it.
-- KEYS: inflight, pending, lease, consumers
-- ARGV: consumer name, lease token or ''
-- → the number of records put back, or -1 when refused
local lease = redis.call('GET', KEYS[3])
if ARGV[2] == '' then
  if lease then return -1 end
elseif lease ~= ARGV[2] then
  return -1
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
-- LPUSH puts its last argument at the head: push from the end of the batch, each chunk reversed.
for last = #items, 1, -1000 do
  local chunk = {}
  for i = last, math.max(last - 999, 1), -1 do chunk[#chunk + 1] = items[i] end
  redis.call('LPUSH', KEYS[2], unpack(chunk))
end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return #items
