-- Counts a sign-in request against its fixed windows: the per-address counter first; the per-e-mail one only
-- counts requests that got past it.
-- KEYS: the address's counter for this window, the e-mail's counter for this window
-- ARGV: per-address limit (0 = none), its window (seconds), per-e-mail limit (0 = none), its window
-- → {'ok', 0}, or {'ip' | 'email', seconds until the window ends}
local ip_limit, email_limit = tonumber(ARGV[1]), tonumber(ARGV[3])
if ip_limit > 0 then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  if count > ip_limit then return {'ip', redis.call('TTL', KEYS[1])} end
end
if email_limit > 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
  if count > email_limit then return {'email', redis.call('TTL', KEYS[2])} end
end
return {'ok', 0}
