-- Counts the requests of partners in their current windows and reads the partners' version, in one round trip: the
-- web process learns both whether each partner is over its limit and whether its copy of the keys is current.
-- KEYS[1]: the partners' version (bumped after every admin change of a partner or a key)
-- KEYS[2..n]: one request counter per partner, for its current window
-- ARGV[1]: the window's length, in milliseconds
-- ARGV[2..n]: how many requests to count on the counter of the same rank
-- Returns {version ('' when never bumped), then per counter: requests counted in this window, milliseconds until
-- the window resets}
local result = {redis.call('GET', KEYS[1]) or ''}
for index = 2, #KEYS do
  local count = redis.call('INCRBY', KEYS[index], ARGV[index])
  local ttl = redis.call('PTTL', KEYS[index])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[index], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  result[#result + 1] = count
  result[#result + 1] = ttl
end
return result
