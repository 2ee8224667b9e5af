#!lua flags=allow-oom
-- Removes the effect just handed on, only if it is still the head: should a slow deliverer outlive its lock and
-- another start, neither can remove an effect that nobody sent.
-- KEYS: effects
-- ARGV: the effect handed on
-- → 1 removed, 0 already gone
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
return 1
