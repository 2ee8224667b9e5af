-- Counts one request of a partner in its current window and reads the partners' version, in one round trip: the
-- web process learns both whether the partner is over its limit and whether its copy of the keys is current.
-- KEYS[1]: the partners' version (bumped after every admin change of a partner or a key)
-- KEYS[2]: the partner's request counter for the current window
-- ARGV[1]: the window's length, in milliseconds
-- Returns {version ('' when never bumped), requests counted in this window, milliseconds until the window resets}
local count = redis.call('INCR', KEYS[2])
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {redis.call('GET', KEYS[1]) or '', count, ttl}
