-- Prelude of every mission script (concatenated in front of each at load time).
-- KEYS, the same for every mission script: 1 meta, 2 holders, 3 waitlist, 4 status, 5 epoch, 6 proposals (the
-- mission's, see MissionKeys), 7 sequence, 8 the application queue's pending list, 9 its drain mark, 10 engaged,
-- 11 the mission's adults (the 18th birthdays of the wait-listed and the proposed, whom the age rule may still
-- check; gone once their application moves on), then, for the scripts that take volunteers, each volunteer's mission
-- index (in the order of their ARGV).
-- ARGV, first three for every mission script: 1 mission id, 2 drain mark TTL (seconds), 3 today (ISO date, France's
-- day); then the script's own.
local META, HOLDERS, WAITLIST, STATUS, EPOCH, PROPOSALS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local SEQUENCE, PENDING, DRAIN_MARK, ENGAGED, ADULTS = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local FIRST_INDEX = 12
local MISSION, DRAIN_TTL, TODAY = ARGV[1], ARGV[2], ARGV[3]

-- Numbers one change and queues it for PostgreSQL (field names: ApplicationEvent's wire names).
local function push(volunteer, status, kind, message, reason, run, expires_at)
  local version = redis.call('INCR', SEQUENCE)
  local now = redis.call('TIME')
  redis.call('RPUSH', PENDING, cjson.encode({m = tonumber(MISSION), v = tonumber(volunteer), s = status, n = version,
    k = kind, msg = message or '', r = reason or '', d = run, x = expires_at,
    t = tonumber(now[1]) + tonumber(now[2]) / 1000000}))
  return version
end

-- The day this mission checks a person's age on (app/volunteers/age.py, checked_on): nil when it is open to minors,
-- else its start date, or today once started or without one.
local function age_day()
  local meta = redis.call('HMGET', META, 'minors', 'start')
  if meta[1] == '1' then return nil end
  if meta[2] and meta[2] > TODAY then return meta[2] end
  return TODAY
end

-- Whether a person whose 18th birthday is `adult_on` (ISO date; '' or absent: unknown, so too young) may take the
-- mission when it checks ages on `day` (nil: it takes any age).
local function of_age(adult_on, day)
  return day == nil or (adult_on ~= false and adult_on ~= nil and adult_on ~= '' and adult_on <= day)
end

-- Moves wait-listed volunteers into the free places, first come first served. On a mission closed to minors, one
-- too young stays wait-listed (the age rule may change again) and the next in line moves up instead.
local function promote()
  local meta = redis.call('HMGET', META, 'capacity', 'open')
  if not meta[1] or (meta[2] ~= '1' and meta[2] ~= 'w') then return 0 end
  local free = tonumber(meta[1]) - redis.call('SCARD', HOLDERS)
  local day, promoted, skipped = age_day(), 0, 0
  while promoted < free do
    local batch = redis.call('ZRANGE', WAITLIST, skipped, skipped + 99)
    if #batch == 0 then break end
    for _, volunteer in ipairs(batch) do
      if promoted == free then break end
      if of_age(redis.call('HGET', ADULTS, volunteer), day) then
        redis.call('ZREM', WAITLIST, volunteer)
        redis.call('HDEL', ADULTS, volunteer)
        redis.call('SADD', HOLDERS, volunteer)
        redis.call('HSET', STATUS, volunteer, 'pending')
        push(volunteer, 'pending', 'promoted')
        promoted = promoted + 1
      else
        skipped = skipped + 1
      end
    end
  end
  return promoted
end

-- '1' when the caller should enqueue a drain (nobody has in the last DRAIN_TTL seconds).
local function drain_needed()
  if redis.call('SET', DRAIN_MARK, '1', 'NX', 'EX', DRAIN_TTL) then return '1' end
  return '0'
end

-- Whether `meta` was read from PostgreSQL after the mission's last change (and holds the age rule, with the
-- applicants' birthdays in `adults`: a `meta` seeded before either existed is read again).
local function fresh()
  local meta = redis.call('HMGET', META, 'capacity', 'epoch', 'minors', 'ages')
  return meta[1] and meta[3] and meta[4] and meta[2] == (redis.call('GET', EPOCH) or '0')
end

-- `engaged` maps a volunteer to "<mission>:<expiry>" while they hold a dispatch proposal (or have confirmed one) on
-- that mission; it ends when that application ends here, or by itself at the proposal's expiry.
local function release(volunteer)
  local engaged = redis.call('HGET', ENGAGED, volunteer)
  if engaged and string.match(engaged, '^(%d+):') == MISSION then redis.call('HDEL', ENGAGED, volunteer) end
end
