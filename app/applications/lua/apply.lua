-- A volunteer applies: a place if one is free, else the wait-list.
-- KEYS: the mission script KEYS (common.lua), then 11 the volunteer's mission index
-- ARGV: mission, drain TTL, volunteer, message, backlog bound (queued changes), index TTL, the volunteer's 18th
--       birthday (ISO date, '' unknown), today (ISO date)
-- → {outcome (pending | waitlisted | exists | closed | minor | backlogged | unknown), current status or drain flag}
local volunteer, message, backlog, index_ttl = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local adult_on, today = ARGV[7], ARGV[8]
if not fresh() then return {'unknown', ''} end
local current = redis.call('HGET', STATUS, volunteer)
if current and current ~= 'cancelled' then return {'exists', current} end
if redis.call('HGET', META, 'open') ~= '1' then return {'closed', ''} end
if not old_enough(adult_on, today) then return {'minor', ''} end
if redis.call('LLEN', PENDING) >= backlog then return {'backlogged', ''} end
local status = 'waitlisted'
if redis.call('SCARD', HOLDERS) < tonumber(redis.call('HGET', META, 'capacity')) then
  redis.call('SADD', HOLDERS, volunteer)
  status = 'pending'
end
redis.call('HSET', STATUS, volunteer, status)
local version = push(volunteer, status, 'applied', message)
if status == 'waitlisted' then redis.call('ZADD', WAITLIST, version, volunteer) end
redis.call('SADD', KEYS[FIRST_INDEX], MISSION)
redis.call('EXPIRE', KEYS[FIRST_INDEX], index_ttl)
return {status, drain_needed()}
