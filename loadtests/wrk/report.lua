-- Shared by the wrk scripts: counts responses per status and prints one "WRK_JSON {...}" line in done().
--
-- RENFORT_RECEIPTS=<file> makes done() write the "receipt" of every 202 body there, one per line.

local receipts_path = os.getenv("RENFORT_RECEIPTS")
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  receipts = {}
  math.randomseed(tid * 7919 + os.time())
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 and receipts_path then
    local receipt = string.match(body or "", '"receipt"%s*:%s*"([^"]+)"')
    if receipt then
      receipts[#receipts + 1] = receipt
    end
  end
end

local function json_object(map)
  local parts = {}
  for key, value in pairs(map) do
    parts[#parts + 1] = string.format('"%s":%s', tostring(key), tostring(value))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local statuses_total = {}
  local out = receipts_path and io.open(receipts_path, "w")
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      statuses_total[status] = (statuses_total[status] or 0) + count
    end
    if out then
      for _, receipt in ipairs(thread:get("receipts")) do
        out:write(receipt, "\n")
      end
    end
  end
  if out then
    out:close()
  end
  local ms = function(us) return string.format("%.3f", us / 1000) end
  print("WRK_JSON " .. json_object({
    duration_s = string.format("%.3f", summary.duration / 1e6),
    requests = summary.requests,
    bytes = summary.bytes,
    statuses = json_object(statuses_total),
    errors = json_object(summary.errors),
    latency_ms = json_object({
      p50 = ms(latency:percentile(50)), p90 = ms(latency:percentile(90)), p99 = ms(latency:percentile(99)),
      max = ms(latency.max), mean = ms(latency.mean),
    }),
  }))
end
