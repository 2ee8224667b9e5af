-- One application changes status (a manager's decision, the volunteer's answer, an expiry, a deletion).
-- KEYS: the mission script KEYS (common.lua)
-- ARGV: mission, drain TTL, volunteer, target status, allowed current statuses (comma-separated), kind, reason
-- → {outcome (done | refused | unknown), previous status, promoted count, drain flag}
local volunteer, target, allowed, kind, reason = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if not fresh() then return {'unknown', '', 0, '0'} end
local current = redis.call('HGET', STATUS, volunteer)
if not current or not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return {'refused', current or '', 0, '0'}
end
redis.call('HSET', STATUS, volunteer, target)
push(volunteer, target, kind, '', reason)
-- A confirmed proposal keeps its engagement (until the proposal's expiry); anything else ends it.
if target ~= 'proposed' and target ~= 'accepted' then release(volunteer) end
local promoted = 0
if target == 'cancelled' or target == 'declined' then
  redis.call('ZREM', WAITLIST, volunteer)
  if redis.call('SREM', HOLDERS, volunteer) == 1 then promoted = promote() end
end
return {'done', current, promoted, drain_needed()}
