#!lua flags=allow-oom
-- Releases a written batch: marks its receipts saved, files its after-write effects in the effects list, frees the
-- consumer. Fenced: a consumer whose lease was taken over acknowledges nothing.
-- KEYS: inflight, lease, consumers, effects list, totals (hash: `persisted` counts the records acknowledged), then
--       the receipt keys to mark saved
-- ARGV: lease token, consumer name, receipt TTL, then the encoded effects
-- → 1 acknowledged, 0 refused (lease lost)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[5], 'persisted', redis.call('LLEN', KEYS[1]))
for i = 6, #KEYS do redis.call('SET', KEYS[i], 'saved', 'EX', ARGV[3]) end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
