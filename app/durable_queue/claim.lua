#!lua flags=allow-oom
-- Moves up to a batch of records from the head of `pending` to the consumer's in-flight list and takes its lease.
-- KEYS: pending, inflight, lease, consumers
-- ARGV: batch size, lease seconds, consumer name, lease token
-- → the records claimed (oldest first)
-- Copied in chunks before the trim: unpack() refuses a few thousand values, and a script that fails half-way does
-- not roll back. allow-oom: the queue must keep shrinking when Redis is at its memory limit.
-- A consumer name holds one batch at a time: a second claim would be acknowledged together with the first.
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('consumer already holds a batch') end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
for first = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, first, math.min(first + 999, #items)))
end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
return items
