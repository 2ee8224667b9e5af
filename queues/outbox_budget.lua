-- Takes one e-mail from a recipient's budget for a family of e-mails. The window starts with the first e-mail
-- counted and ends ARGV[2] ms later, when the budget frees up whole.
-- KEYS[1]  the budget counter (family, recipient digest)
-- ARGV[1]  e-mails allowed per window
-- ARGV[2]  window length in milliseconds
-- Returns 0 when the e-mail may leave now, else the milliseconds left until the window ends.
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count < tonumber(ARGV[1]) then
  redis.call('INCR', KEYS[1])
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  -- A counter without expiry would hold the e-mails back for ever: give it the window it should have had.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return left
