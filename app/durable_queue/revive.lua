#!lua flags=allow-oom
-- Puts one dead letter back at the end of `pending` (after ops fixed the cause).
-- KEYS: dead, dead-reasons, dead-order, pending, the owner's index
-- ARGV: key
-- → 1 moved, 0 gone meanwhile
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('RPUSH', KEYS[4], record)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
return 1
