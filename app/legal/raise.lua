-- Raises fields of the legal versions hash, never lowers them: two publications whose after-commit updates arrive
-- out of order still leave the higher version in place.
-- KEYS[1]: the hash of current versions (LegalKeys.current)
-- ARGV: field, version, field, version, …
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
