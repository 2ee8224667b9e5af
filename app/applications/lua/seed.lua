-- Gives Redis a mission as PostgreSQL has it: capacity, openness, the age rule, the epoch it was read at and, when
-- Redis holds no application state for it (first use, or Redis lost it), the saved applications; whenever they
-- were read, the 18th birthdays of those now wait-listed or proposed go to `adults`.
-- KEYS: the mission script KEYS (common.lua)
-- ARGV: mission, drain TTL, today, capacity, open ("1", "w" or "0"), epoch (read before PostgreSQL), highest saved
--       version, open to minors ("1" or "0"), start date (ISO date, '' none), then (volunteer, status, version,
--       18th birthday as an ISO date) quadruples
-- → 'stale' (changed since it was read: read again), '1' (promotions queued: drain needed) or '0'
local capacity, open, epoch, highest = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local minors, start = ARGV[8], ARGV[9]
if epoch ~= (redis.call('GET', EPOCH) or '0') then return 'stale' end
redis.call('HSET', META, 'capacity', capacity, 'open', open, 'epoch', epoch, 'minors', minors, 'start', start,
  'ages', '1')
if tonumber(redis.call('GET', SEQUENCE) or '0') < highest then redis.call('SET', SEQUENCE, highest) end
local rebuild = redis.call('EXISTS', STATUS) == 0
for i = 10, #ARGV, 4 do
  local volunteer, status = ARGV[i], ARGV[i + 1]
  if rebuild then
    redis.call('HSET', STATUS, volunteer, status)
    if status == 'waitlisted' then redis.call('ZADD', WAITLIST, ARGV[i + 2], volunteer)
    elseif status == 'pending' or status == 'accepted' or status == 'done' or status == 'proposed' then
      redis.call('SADD', HOLDERS, volunteer)
    end
  end
  local now = redis.call('HGET', STATUS, volunteer)
  if now == 'waitlisted' or now == 'proposed' then redis.call('HSET', ADULTS, volunteer, ARGV[i + 3]) end
end
if promote() > 0 then return drain_needed() end
return '0'
