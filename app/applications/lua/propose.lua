-- A coordinator's dispatch on one mission. A volunteer is proposed only if they never had an application on this
-- mission (whatever became of it: nobody is pushed back onto a mission they left or declined), are not engaged by a
-- live proposal elsewhere, are old enough for the mission (its age rule as it stands now), and a place is free; so a
-- proposal never oversells, nobody holds two live proposals, and running the script again for the same run proposes
-- nobody twice.
-- KEYS: the mission script KEYS (common.lua), then 12… each volunteer's mission index, in the order of ARGV
-- ARGV: mission, drain TTL, today, run, expiry (epoch seconds), index TTL, then (volunteer, 18th birthday as an ISO
--       date or '' unknown) pairs; a proposed volunteer's birthday is kept in `adults` for their confirmation
-- → {outcome (done | closed | unknown | unseeded), proposed now, proposed earlier by this run,
--    engaged elsewhere, too young, drain flag}
local run, expires_at, index_ttl = ARGV[4], ARGV[5], ARGV[6]
if not fresh() then return {'unknown', 0, 0, 0, 0, '0'} end
if redis.call('HGET', META, 'open') ~= '1' then return {'closed', 0, 0, 0, 0, '0'} end
-- Without its marker, `engaged` may have been lost: the caller rebuilds it from PostgreSQL first.
if redis.call('HGET', ENGAGED, 'seeded') ~= '1' then return {'unseeded', 0, 0, 0, 0, '0'} end
local capacity = tonumber(redis.call('HGET', META, 'capacity'))
local now, day = tonumber(redis.call('TIME')[1]), age_day()
local proposed, earlier, elsewhere, young = 0, 0, 0, 0
for i = 7, #ARGV, 2 do
  local volunteer = ARGV[i]
  local current = redis.call('HGET', STATUS, volunteer)
  if current then
    if current == 'proposed' and redis.call('HGET', PROPOSALS, volunteer) == run then earlier = earlier + 1 end
  elseif not of_age(ARGV[i + 1], day) then
    young = young + 1
  else
    local busy = false
    local engaged = redis.call('HGET', ENGAGED, volunteer)
    if engaged then
      local mission, until_ = string.match(engaged, '^(%d+):(.+)$')
      busy = mission ~= MISSION and tonumber(until_) > now
    end
    if busy then
      elsewhere = elsewhere + 1
    elseif redis.call('SCARD', HOLDERS) < capacity then
      redis.call('SADD', HOLDERS, volunteer)
      redis.call('HSET', STATUS, volunteer, 'proposed')
      redis.call('HSET', PROPOSALS, volunteer, run)
      redis.call('HSET', ENGAGED, volunteer, MISSION .. ':' .. expires_at)
      redis.call('HSET', ADULTS, volunteer, ARGV[i + 1])
      push(volunteer, 'proposed', 'proposed', '', '', tonumber(run), tonumber(expires_at))
      local index = KEYS[FIRST_INDEX + (i - 7) / 2]
      redis.call('SADD', index, MISSION)
      redis.call('EXPIRE', index, index_ttl)
      proposed = proposed + 1
    end
  end
end
if proposed > 0 then return {'done', proposed, earlier, elsewhere, young, drain_needed()} end
return {'done', 0, earlier, elsewhere, young, '0'}
