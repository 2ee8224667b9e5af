-- Prelude of every mission script (concatenated in front of each at load time).
-- KEYS, the same for every mission script: 1 meta, 2 holders, 3 waitlist, 4 status, 5 epoch, 6 proposals (the
-- mission's, see MissionKeys), 7 sequence, 8 the application queue's pending list, 9 its drain mark, 10 engaged,
-- then, for the scripts that take volunteers, each volunteer's mission index (in the order of their ARGV).
-- ARGV, first two for every mission script: 1 mission id, 2 drain mark TTL (seconds); then the script's own.
local META, HOLDERS, WAITLIST, STATUS, EPOCH, PROPOSALS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local SEQUENCE, PENDING, DRAIN_MARK, ENGAGED = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local FIRST_INDEX = 11
local MISSION, DRAIN_TTL = ARGV[1], ARGV[2]

-- Numbers one change and queues it for PostgreSQL (field names: ApplicationEvent's wire names).
local function push(volunteer, status, kind, message, reason, run, expires_at)
  local version = redis.call('INCR', SEQUENCE)
  local now = redis.call('TIME')
  redis.call('RPUSH', PENDING, cjson.encode({m = tonumber(MISSION), v = tonumber(volunteer), s = status, n = version,
    k = kind, msg = message or '', r = reason or '', d = run, x = expires_at,
    t = tonumber(now[1]) + tonumber(now[2]) / 1000000}))
  return version
end

-- Moves wait-listed volunteers into the free places, first come first served.
local function promote()
  local meta = redis.call('HMGET', META, 'capacity', 'open')
  local promoted = 0
  if not meta[1] or (meta[2] ~= '1' and meta[2] ~= 'w') then return 0 end
  while redis.call('SCARD', HOLDERS) < tonumber(meta[1]) do
    local first = redis.call('ZPOPMIN', WAITLIST)
    if #first == 0 then break end
    redis.call('SADD', HOLDERS, first[1])
    redis.call('HSET', STATUS, first[1], 'pending')
    push(first[1], 'pending', 'promoted')
    promoted = promoted + 1
  end
  return promoted
end

-- '1' when the caller should enqueue a drain (nobody has in the last DRAIN_TTL seconds).
local function drain_needed()
  if redis.call('SET', DRAIN_MARK, '1', 'NX', 'EX', DRAIN_TTL) then return '1' end
  return '0'
end

-- Whether `meta` was read from PostgreSQL after the mission's last change (and holds the age rule: a `meta` seeded
-- before it had one is read again).
local function fresh()
  local meta = redis.call('HMGET', META, 'capacity', 'epoch', 'minors')
  return meta[1] and meta[3] and meta[2] == (redis.call('GET', EPOCH) or '0')
end

-- Whether a person of age on `adult_on` (ISO date, '' unknown) may take this mission on `today` (ISO date): a
-- mission closed to minors checks the age on its start date, or today once started or without one.
local function old_enough(adult_on, today)
  local meta = redis.call('HMGET', META, 'minors', 'start')
  if meta[1] == '1' then return true end
  local day = today
  if meta[2] and meta[2] > today then day = meta[2] end
  return adult_on ~= '' and adult_on <= day
end

-- `engaged` maps a volunteer to "<mission>:<expiry>" while they hold a dispatch proposal (or have confirmed one) on
-- that mission; it ends when that application ends here, or by itself at the proposal's expiry.
local function release(volunteer)
  local engaged = redis.call('HGET', ENGAGED, volunteer)
  if engaged and string.match(engaged, '^(%d+):') == MISSION then redis.call('HDEL', ENGAGED, volunteer) end
end
