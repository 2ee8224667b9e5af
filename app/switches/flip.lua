#!lua flags=allow-oom
-- Sets one switch and files the change for the journal, in one step: a flip is never left unjournaled, and setting
-- a switch to the value it has files nothing. Allowed at Redis's memory limit: that is when maintenance is needed.
-- KEYS: switch values (hash: name → '1' | '0'), journal (list of changes waiting for PostgreSQL)
-- ARGV: switch name, '1' (on) or '0' (off), the change as JSON
-- → 1 when the switch changed, 0 when it already had that value
local current = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
if current == ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
