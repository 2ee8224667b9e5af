-- wrk script for the mission search: GETs cycling through the queries listed in RENFORT_PATHS, one path a line.
--
--   RENFORT_PATHS=paths.txt wrk -t2 -c64 -d15s -s loadtests/wrk/search.lua http://127.0.0.1:8000
--
-- Each thread starts at a different line, so the connections spread over every cached query.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local paths = {}
for line in io.lines(os.getenv("RENFORT_PATHS")) do
  if line ~= "" then
    paths[#paths + 1] = line
  end
end
local counter = 0

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter + tid * 7) % #paths + 1])
end
