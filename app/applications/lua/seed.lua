-- Gives Redis a mission as PostgreSQL has it: capacity, openness, the age rule, the epoch it was read at and, when
-- Redis holds no application state for it (first use, or Redis lost it), the saved applications.
-- KEYS: the mission script KEYS (common.lua)
-- ARGV: mission, drain TTL, capacity, open ("1", "w" or "0"), epoch (read before PostgreSQL), highest saved version,
--       open to minors ("1" or "0"), start date (ISO date, '' none), then (volunteer, status, version) triples
-- → 'stale' (changed since it was read: read again), '1' (promotions queued: drain needed) or '0'
local capacity, open, epoch, highest = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local minors, start = ARGV[7], ARGV[8]
if epoch ~= (redis.call('GET', EPOCH) or '0') then return 'stale' end
redis.call('HSET', META, 'capacity', capacity, 'open', open, 'epoch', epoch, 'minors', minors, 'start', start)
if tonumber(redis.call('GET', SEQUENCE) or '0') < highest then redis.call('SET', SEQUENCE, highest) end
if redis.call('EXISTS', STATUS) == 0 then
  for i = 9, #ARGV, 3 do
    local volunteer, status = ARGV[i], ARGV[i + 1]
    redis.call('HSET', STATUS, volunteer, status)
    if status == 'waitlisted' then redis.call('ZADD', WAITLIST, ARGV[i + 2], volunteer)
    elseif status == 'pending' or status == 'accepted' or status == 'done' or status == 'proposed' then
      redis.call('SADD', HOLDERS, volunteer)
    end
  end
end
if promote() > 0 then return drain_needed() end
return '0'
