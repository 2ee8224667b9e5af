-- A mission was cancelled or finished: its applications in one of the given statuses become cancelled, in one go
-- per call, and their volunteers are filed in `closing` so that each is told once (the job reads it, queues the
-- e-mails, then forgets them). The mission is offline by then: nobody is promoted into the freed places.
-- KEYS: the mission script KEYS (common.lua), then 12 the mission's closing hash
-- ARGV: mission, drain TTL, today, statuses to close (comma-separated), kind, reason, closing TTL, then the volunteers
-- → {outcome (done | online | unknown), closed, drain flag}
local allowed, kind, reason, ttl = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local CLOSING = KEYS[FIRST_INDEX]
if not fresh() then return {'unknown', 0, '0'} end
if redis.call('HGET', META, 'open') ~= '0' then return {'online', 0, '0'} end
local closed = 0
for i = 8, #ARGV do
  local volunteer = ARGV[i]
  local current = redis.call('HGET', STATUS, volunteer)
  if current and string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
    redis.call('HSET', STATUS, volunteer, 'cancelled')
    redis.call('SREM', HOLDERS, volunteer)
    redis.call('ZREM', WAITLIST, volunteer)
    release(volunteer)
    redis.call('HDEL', ADULTS, volunteer)
    push(volunteer, 'cancelled', kind, '', reason)
    redis.call('HSET', CLOSING, volunteer, kind)
    closed = closed + 1
  end
end
if closed == 0 then return {'done', 0, '0'} end
redis.call('EXPIRE', CLOSING, ttl)
return {'done', closed, drain_needed()}
