#!lua flags=no-writes
-- Reads one cached variant and tells whether it is current, in one round trip.
-- KEYS: the owner's version counter, the variant's entry ("<version built at>:<value>"), its fresh marker
-- ARGV: none
-- → {state, value or false, the owner's current version}; state: 0 no copy, 1 fresh, 2 stale (current version,
--   past its freshness), 3 previous (built before the owner's last change)
local version = redis.call('GET', KEYS[1]) or '0'
local entry = redis.call('GET', KEYS[2])
if not entry then return {0, false, version} end
local cut = string.find(entry, ':', 1, true)
local value = string.sub(entry, cut + 1)
if string.sub(entry, 1, cut - 1) ~= version then return {3, value, version} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {1, value, version} end
return {2, value, version}
