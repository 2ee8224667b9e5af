-- Cancelling a run on one mission: its proposals still waiting for an answer (made by this run, or of unknown run
-- after Redis lost its state) become cancelled, their engagement ends, and the freed places go to the wait-list.
-- KEYS: the mission script KEYS (common.lua)
-- ARGV: mission, drain TTL, today, run, kind, reason, then the volunteers
-- → {outcome (done | unknown), cancelled, promoted, drain flag}
local run, kind, reason = ARGV[4], ARGV[5], ARGV[6]
if not fresh() then return {'unknown', 0, 0, '0'} end
local cancelled = 0
for i = 7, #ARGV do
  local volunteer = ARGV[i]
  if redis.call('HGET', STATUS, volunteer) == 'proposed' then
    local by = redis.call('HGET', PROPOSALS, volunteer)
    if not by or by == run then
      redis.call('HSET', STATUS, volunteer, 'cancelled')
      redis.call('SREM', HOLDERS, volunteer)
      release(volunteer)
      redis.call('HDEL', ADULTS, volunteer)
      push(volunteer, 'cancelled', kind, '', reason)
      cancelled = cancelled + 1
    end
  end
end
local promoted = promote()
if cancelled > 0 then return {'done', cancelled, promoted, drain_needed()} end
return {'done', 0, promoted, '0'}
