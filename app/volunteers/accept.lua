-- Accepts the sign-ups that reached the web process in one event-loop tick, in one step each: replays an
-- idempotency key (only for the same body), counts the address's minute, bounds the queue, dedupes the e-mail,
-- queues the record and writes its receipt.
-- KEYS: pending, drain-scheduled, the queue's totals (hash: `accepted` counts the records queued), then per sign-up
--       4 keys: e-mail mark, idempotency key (or the mark again when the request has none: unused), receipt, the
--       address's counter for this minute
-- ARGV: per-address limit (0 = none), queue bound, receipt TTL, idempotency TTL, e-mail mark TTL, drain mark TTL,
--       then per sign-up 5 values: has an idempotency key ('1'/'0'), body digest, record, repeat record, receipt
-- → per sign-up (outcome, receipt) with outcome accepted | replay | conflict | backlogged; then the drain flag.
-- Past the per-address limit a sign-up is still queued, marked unconfirmed (many citizens share one address
-- behind a mobile carrier): its JSON gets `"unconfirmed":true` (records are encoded without default fields, so
-- the name cannot be there already), and its e-mail mark ends in ':u', so that a later sign-up of the same address
-- within the limit is saved in full over it rather than taken for a repeat.
local limit, backlog = tonumber(ARGV[1]), tonumber(ARGV[2])
local depth, pushed, out = redis.call('LLEN', KEYS[1]), 0, {}
local n = (#KEYS - 3) / 4
for s = 0, n - 1 do
  local email, idem, receipt_key, rate = KEYS[4 + 4 * s], KEYS[5 + 4 * s], KEYS[6 + 4 * s], KEYS[7 + 4 * s]
  local has_idem, body = ARGV[7 + 5 * s] == '1', ARGV[8 + 5 * s]
  local record, repeat_record, receipt = ARGV[9 + 5 * s], ARGV[10 + 5 * s], ARGV[11 + 5 * s]
  local outcome, value = 'accepted', receipt
  local previous = has_idem and redis.call('GET', idem)
  if previous then
    local bar = string.find(previous, '|', 1, true)
    if bar and string.sub(previous, bar + 1) == body then
      outcome, value = 'replay', string.sub(previous, 1, bar - 1)
    else
      outcome, value = 'conflict', ''
    end
  elseif depth >= backlog then
    outcome = 'backlogged'
  else
    local count = 0
    if limit > 0 then
      count = redis.call('INCR', rate)
      if count == 1 then redis.call('EXPIRE', rate, 60) end
    end
    local held_back = limit > 0 and count > limit
    local mark = receipt
    if held_back then mark = receipt .. ':u' end
    local pushed_record = record
    if not redis.call('SET', email, mark, 'NX', 'EX', ARGV[5]) then
      local known = redis.call('GET', email) or ''
      if not held_back and string.sub(known, -2) == ':u' then
        -- The address was only ever signed up past a limit (maybe by someone else): this sign-up is saved in full
        -- and takes its place, instead of being a repeat of a row nobody confirmed.
        redis.call('SET', email, mark, 'EX', ARGV[5])
      else
        pushed_record = repeat_record
      end
    end
    if held_back then pushed_record = string.sub(pushed_record, 1, -2) .. ',"unconfirmed":true}' end
    redis.call('RPUSH', KEYS[1], pushed_record)
    redis.call('SET', receipt_key, 'queued', 'EX', ARGV[3])
    if has_idem then redis.call('SET', idem, receipt .. '|' .. body, 'EX', ARGV[4]) end
    depth, pushed = depth + 1, pushed + 1
  end
  out[#out + 1] = outcome
  out[#out + 1] = value
end
local drain = '0'
if pushed > 0 then redis.call('HINCRBY', KEYS[3], 'accepted', pushed) end
if pushed > 0 and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then drain = '1' end
out[#out + 1] = drain
return out
