-- One application changes status (a manager's decision, the volunteer's answer, an expiry, a deletion).
-- KEYS: the mission script KEYS (common.lua)
-- ARGV: mission, drain TTL, today, volunteer, target status, allowed current statuses (comma-separated), kind, reason
-- → {outcome (done | refused | minor | unknown), previous status, promoted count, drain flag}
local volunteer, target, allowed, kind, reason = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if not fresh() then return {'unknown', '', 0, '0'} end
local current = redis.call('HGET', STATUS, volunteer)
if not current or not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return {'refused', current or '', 0, '0'}
end
-- A proposal's confirmation checks the age rule as the mission has it now: it may have closed to minors, or moved its
-- start date, since the proposal (which stays, unanswered, until it lapses or the volunteer declines it).
if current == 'proposed' and target == 'accepted'
    and not of_age(redis.call('HGET', ADULTS, volunteer), age_day()) then
  return {'minor', current, 0, '0'}
end
redis.call('HSET', STATUS, volunteer, target)
push(volunteer, target, kind, '', reason)
-- A confirmed proposal keeps its engagement (until the proposal's expiry); anything else ends it.
if target ~= 'proposed' and target ~= 'accepted' then release(volunteer) end
if target ~= 'proposed' and target ~= 'waitlisted' then redis.call('HDEL', ADULTS, volunteer) end
local promoted = 0
if target == 'cancelled' or target == 'declined' then
  redis.call('ZREM', WAITLIST, volunteer)
  if redis.call('SREM', HOLDERS, volunteer) == 1 then promoted = promote() end
end
return {'done', current, promoted, drain_needed()}
