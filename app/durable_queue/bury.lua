#!lua flags=allow-oom
-- Moves one record of a consumer's batch to the dead letters, with why, indexed by its owner (the person it is
-- about) so that erasing that person finds it without reading the others.
-- KEYS: inflight, lease, dead (hash key → record), dead-reasons (hash key → why), dead-order (zset key → time),
--       the owner's index (set of keys), totals (hash: `dead_lettered` counts the records ever buried)
-- ARGV: lease token, key, record, why (JSON), time (epoch seconds)
-- → 1 buried, 0 refused (lease lost)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[2])
redis.call('SADD', KEYS[6], ARGV[2])
redis.call('HINCRBY', KEYS[7], 'dead_lettered', 1)
return 1
