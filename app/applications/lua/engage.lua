-- Rebuilds the dispatch engagements of one mission after Redis lost `engaged` (run with no prelude). Redis's own
-- state wins where it has one: a proposal answered here since PostgreSQL was read is not engaged again, and one
-- made here but not drained yet is engaged from the mission's `proposals`.
-- KEYS: 1 the mission's status, 2 its proposals, 3 engaged
-- ARGV: mission, number of runs n, n (run, expiry) pairs of the runs whose proposals may still be live, then
--       (volunteer, expiry) pairs of the live proposals and confirmations PostgreSQL holds for this mission
-- → the number of volunteers engaged
local STATUS, PROPOSALS, ENGAGED = KEYS[1], KEYS[2], KEYS[3]
local mission, runs = ARGV[1], tonumber(ARGV[2])
local known = redis.call('EXISTS', STATUS) == 1
local engaged = 0
local function engage(volunteer, expires_at)
  if known then
    local status = redis.call('HGET', STATUS, volunteer)
    if status ~= 'proposed' and status ~= 'accepted' then return end
  end
  engaged = engaged + redis.call('HSETNX', ENGAGED, volunteer, mission .. ':' .. expires_at)
end
for i = 3 + 2 * runs, #ARGV, 2 do engage(ARGV[i], ARGV[i + 1]) end
if known and runs > 0 then
  local expiry = {}
  for i = 3, 2 + 2 * runs, 2 do expiry[ARGV[i]] = ARGV[i + 1] end
  local by_run = redis.call('HGETALL', PROPOSALS)
  for i = 1, #by_run, 2 do
    if expiry[by_run[i + 1]] then engage(by_run[i], expiry[by_run[i + 1]]) end
  end
end
return engaged
