-- A volunteer applies: a place if one is free, else the wait-list.
-- KEYS: the mission script KEYS (common.lua), then 12 the volunteer's mission index
-- ARGV: mission, drain TTL, today, volunteer, message, backlog bound (queued changes), index TTL, the volunteer's
--       18th birthday (ISO date, '' unknown; kept in `adults` while wait-listed, for the promotion)
-- → {outcome (pending | waitlisted | exists | closed | minor | backlogged | unknown), current status or drain flag}
local volunteer, message, backlog, index_ttl, adult_on = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
if not fresh() then return {'unknown', ''} end
local current = redis.call('HGET', STATUS, volunteer)
if current and current ~= 'cancelled' then return {'exists', current} end
if redis.call('HGET', META, 'open') ~= '1' then return {'closed', ''} end
if not of_age(adult_on, age_day()) then return {'minor', ''} end
if redis.call('LLEN', PENDING) >= backlog then return {'backlogged', ''} end
local status = 'waitlisted'
if redis.call('SCARD', HOLDERS) < tonumber(redis.call('HGET', META, 'capacity')) then
  redis.call('SADD', HOLDERS, volunteer)
  status = 'pending'
end
redis.call('HSET', STATUS, volunteer, status)
local version = push(volunteer, status, 'applied', message)
if status == 'waitlisted' then
  redis.call('ZADD', WAITLIST, version, volunteer)
  redis.call('HSET', ADULTS, volunteer, adult_on)
end
redis.call('SADD', KEYS[FIRST_INDEX], MISSION)
redis.call('EXPIRE', KEYS[FIRST_INDEX], index_ttl)
return {status, drain_needed()}
