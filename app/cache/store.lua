-- Stores a built value, unless a value built at a later version is already there, and frees the build lock if it
-- is still the builder's.
-- KEYS: the variant's entry, its fresh marker, its build lock
-- ARGV: the owner's version the build started at, the value, keep seconds, fresh seconds, the lock's token ('' when
--       the build ran without the lock)
-- → 1 stored, 0 a later value was kept
local stored = 0
local entry = redis.call('GET', KEYS[1])
local built = -1
if entry then built = tonumber(string.sub(entry, 1, string.find(entry, ':', 1, true) - 1)) or -1 end
if built <= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
  stored = 1
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) == ARGV[5] then redis.call('DEL', KEYS[3]) end
return stored
