-- wrk script for the partners' read API: GETs each path of RENFORT_PATHS exactly once, then stops.
--
--   RENFORT_PATHS=paths.txt RENFORT_API_KEY=<key> RENFORT_THREADS=2 RENFORT_DONE=<folder> \
--     wrk -t2 -c32 -d120s -s loadtests/wrk/partners.lua http://127.0.0.1:8000
--
-- Thread t of n takes every n-th line, so no path is asked twice in a run (no result cache can help). A
-- connection with nothing left to ask is parked (delay) instead of repeating a path; once the thread has every
-- answer it writes "<folder>/<tid>" and stops. wrk itself sleeps its whole -d, so the caller sends it SIGINT
-- when every thread's file is there; the elapsed time is measured here (first request sent → last answer read)
-- on the monotonic clock, since wrk's own duration would be the -d or the signal's arrival.
-- Each 200 is checked: a JSON object with "ok": true, a numeric "total" and a "data" array.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } renfort_timespec;
  int clock_gettime(int clock_id, renfort_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("renfort_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

local report_setup, report_init, report_response, report_done = setup, init, response, done
local PARKED_MS = 3600 * 1000
local all_threads = {}
local paths, headers = {}, {}
local reserved, sent, done_dir = 0, 0, nil

function setup(thread)
  report_setup(thread)
  all_threads[#all_threads + 1] = thread
end

function init(args)
  report_init(args)
  local threads_total = tonumber(os.getenv("RENFORT_THREADS") or "1")
  local line_number = 0
  for line in io.lines(os.getenv("RENFORT_PATHS")) do
    if line ~= "" then
      if line_number % threads_total == tid - 1 then
        paths[#paths + 1] = line
      end
      line_number = line_number + 1
    end
  end
  headers = { ["x-api-key"] = os.getenv("RENFORT_API_KEY") or "", ["Accept"] = "application/json" }
  done_dir = os.getenv("RENFORT_DONE")
  answered, wellformed, with_results, results_total, resent = 0, 0, 0, 0, 0
  first_us, last_us, expected = 0, 0, #paths
end

-- Called before each request of a connection: a path is reserved here, so two connections never take the last
-- one between this call and request().
function delay()
  if reserved >= #paths then
    return PARKED_MS
  end
  reserved = reserved + 1
  return 0
end

function request()
  if sent >= reserved then
    -- No path reserved: wrk checking the script before the run (it calls request() once, nothing is sent), or a
    -- request sent again on a new connection after the server closed one with a request in flight (counted in
    -- `resent`: that request's path went unanswered).
    if reserved > 0 then
      resent = resent + 1
    end
    return wrk.format("GET", paths[math.max(sent, 1)], headers)
  end
  if first_us == 0 then
    first_us = now_us()
  end
  sent = sent + 1
  return wrk.format("GET", paths[sent], headers)
end

local function finish()
  if done_dir then
    local marker = io.open(done_dir .. "/" .. tid, "w")
    if marker then
      marker:write(answered, "\n")
      marker:close()
    end
  end
  wrk.thread:stop()
end

function response(status, response_headers, body)
  report_response(status, response_headers, body)
  last_us = now_us()
  answered = answered + 1
  if status == 200 and body then
    local total = tonumber(body:match('^%s*{.-"total"%s*:%s*(%d+)'))
    if total and body:find('"ok"%s*:%s*true') and body:find('"data"%s*:%s*%[') then
      wellformed = wellformed + 1
      results_total = results_total + total
      if total > 0 then
        with_results = with_results + 1
      end
    end
  end
  if answered >= #paths then
    finish()
  end
end

function done(summary, latency, requests)
  local first, last = nil, 0
  local sums = { answered = 0, wellformed = 0, with_results = 0, results_total = 0, expected = 0, resent = 0 }
  for _, thread in ipairs(all_threads) do
    local started = thread:get("first_us")
    if started and started > 0 and (first == nil or started < first) then
      first = started
    end
    last = math.max(last, thread:get("last_us") or 0)
    for name, _ in pairs(sums) do
      sums[name] = sums[name] + (thread:get(name) or 0)
    end
  end
  local elapsed = (first and last > first) and (last - first) / 1e6 or 0
  print(string.format(
    'PARTNERS_JSON {"elapsed_s":%.6f,"expected":%d,"answered":%d,"wellformed":%d,"with_results":%d,' ..
    '"results_total":%d,"resent":%d}', elapsed, sums.expected, sums.answered, sums.wellformed, sums.with_results,
    sums.results_total, sums.resent))
  report_done(summary, latency, requests)
end
