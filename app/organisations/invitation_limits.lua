-- Counts one invitation against two rolling windows, or refuses it and counts nothing.
-- KEYS[1]: the organisation's sorted set of invitations sent, KEYS[2]: the recipient address's (both scored by time)
-- ARGV[1]: now (ms), ARGV[2]: the window (ms), ARGV[3]: the organisation's limit, ARGV[4]: the address's limit,
-- ARGV[5]: a member naming this invitation
-- Returns {outcome, retry_after_ms}: outcome is "ok", "organisation" or "address".
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local outcomes = {"organisation", "address"}
for i = 1, 2 do
  redis.call("ZREMRANGEBYSCORE", KEYS[i], "-inf", now - window)
  if redis.call("ZCARD", KEYS[i]) >= limits[i] then
    local oldest = redis.call("ZRANGE", KEYS[i], 0, 0, "WITHSCORES")
    local retry = window
    if oldest[2] then
      retry = tonumber(oldest[2]) + window - now
    end
    return {outcomes[i], retry}
  end
end
for i = 1, 2 do
  redis.call("ZADD", KEYS[i], now, ARGV[5])
  redis.call("PEXPIRE", KEYS[i], window)
end
return {"ok", 0}
