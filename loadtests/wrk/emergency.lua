-- wrk script for the public emergency page: GETs cycling through the paths listed in RENFORT_PATHS (one a line;
-- the share of each variant is how often it is listed), checking that every 200 carries the page's title.
--
--   RENFORT_PATHS=paths.txt RENFORT_EXPECT="Crues" RENFORT_CHECK=check.txt \
--     wrk -t2 -c64 -d15s -s loadtests/wrk/emergency.lua http://127.0.0.1:8000
--
-- done() writes "<200s without the title> <200s checked>" to RENFORT_CHECK; statuses go to WRK_JSON as usual.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local paths = {}
for line in io.lines(os.getenv("RENFORT_PATHS")) do
  if line ~= "" then
    paths[#paths + 1] = line
  end
end
local expect = os.getenv("RENFORT_EXPECT")
local check_path = os.getenv("RENFORT_CHECK")
local counter = 0
local checked_threads = {}

local report_setup, report_init, report_response, report_done = setup, init, response, done

function setup(thread)
  report_setup(thread)
  checked_threads[#checked_threads + 1] = thread
end

function init(args)
  report_init(args)
  wrong, checked = 0, 0
end

function request()
  counter = counter + 1
  -- Each thread starts at a different line, so the connections spread over every variant.
  return wrk.format("GET", paths[(counter + tid * 7) % #paths + 1])
end

function response(status, headers, body)
  report_response(status, headers, body)
  if status == 200 then
    checked = checked + 1
    if not string.find(body or "", expect, 1, true) then
      wrong = wrong + 1
    end
  end
end

function done(summary, latency, requests)
  report_done(summary, latency, requests)
  local total_wrong, total_checked = 0, 0
  for _, thread in ipairs(checked_threads) do
    total_wrong = total_wrong + thread:get("wrong")
    total_checked = total_checked + thread:get("checked")
  end
  local out = io.open(check_path, "w")
  out:write(string.format("%d %d\n", total_wrong, total_checked))
  out:close()
end
