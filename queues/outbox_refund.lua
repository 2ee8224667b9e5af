-- Gives back to a recipient's budget one e-mail that did not leave (refused, or the server hung up).
-- KEYS[1]  the budget counter (family, recipient digest)
-- No ARGV. Returns the count after the refund; a window that ended meanwhile is left ended (nothing to give back).
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
