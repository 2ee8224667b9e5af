#!lua flags=allow-oom
-- Extends a claim's lease while its consumer is still writing.
-- KEYS: lease
-- ARGV: lease token, lease seconds
-- → 1 renewed, 0 the lease is no longer this claim's (it ran out and the batch was taken back)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
