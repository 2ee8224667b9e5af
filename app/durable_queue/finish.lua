#!lua flags=allow-oom
-- Ends a drain cycle: clears the drain mark, and takes it again at once when records or effects are waiting, so
-- the caller carries on instead of leaving them to a drain nobody scheduled.
-- KEYS: drain-scheduled, pending, effects list
-- ARGV: the mark's TTL
-- → 1 carry on, 0 nothing left
redis.call('DEL', KEYS[1])
if redis.call('LLEN', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then return 0 end
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 1 end
return 0
