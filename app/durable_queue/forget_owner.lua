#!lua flags=allow-oom
-- Deletes every dead letter of one owner (a person being erased), through the owner's index: no list is read.
-- KEYS: the owner's index, dead, dead-reasons, dead-order
-- → the number of dead letters deleted
local keys = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(keys) do
  redis.call('HDEL', KEYS[2], key)
  redis.call('HDEL', KEYS[3], key)
  redis.call('ZREM', KEYS[4], key)
end
redis.call('DEL', KEYS[1])
return #keys
