-- Frees a build lock after a failed build, if it is still the builder's (an expired lock may be someone else's).
-- KEYS: the variant's build lock
-- ARGV: the lock's token
-- → 1 freed, 0 not ours
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
