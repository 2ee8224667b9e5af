-- wrk script for the application rush: signed-in volunteers POST "candidater" forms, each pair at most once.
--
--   RENFORT_SESSIONS=sessions.txt RENFORT_MISSIONS=missions.txt RENFORT_THREADS=2 RENFORT_RECEIPTS=pairs.txt \
--     wrk -t2 -c64 -d15s -s loadtests/wrk/apply.lua http://127.0.0.1:8000
--
-- sessions.txt: "<volunteer id> <renfort_session cookie> <csrftoken cookie> <form-encoded token>" a line; thread
-- t of n takes every n-th line, so threads never share a volunteer. missions.txt: one mission id a line.
-- Requests go round the missions, each to the mission's next volunteer of this thread, so no pair repeats.
-- The 303's Location names the mission and the outcome but not the volunteer: a thread keeps at most one request
-- in flight per mission, so the answer for mission m belongs to the volunteer it last sent to m. Every answered
-- pair is written to RENFORT_RECEIPTS as "<mission> <volunteer> <outcome>" (report.lua's receipts).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local report_init, report_response = init, response
local threads_total = tonumber(os.getenv("RENFORT_THREADS") or "1")
local volunteers, missions, sent, in_flight = {}, {}, {}, {}
local position = 0

function init(args)
  report_init(args)
  local line_number = 0
  for line in io.lines(os.getenv("RENFORT_SESSIONS")) do
    line_number = line_number + 1
    local id, session, csrf, form_csrf = line:match("^(%d+) (%S+) (%S+) (%S+)$")
    if id and (line_number - 1) % threads_total == tid - 1 then
      volunteers[#volunteers + 1] = {
        id = id,
        headers = {
          ["Cookie"] = "renfort_session=" .. session .. "; csrftoken=" .. csrf,
          ["Content-Type"] = "application/x-www-form-urlencoded",
        },
        body = "_csrf_token=" .. form_csrf .. "&message=Disponible+tout+de+suite.",
      }
    end
  end
  for line in io.lines(os.getenv("RENFORT_MISSIONS")) do
    if line ~= "" then
      missions[#missions + 1] = line
      sent[line] = 0
    end
  end
  position = tid * 13
end

function request()
  for _ = 1, #missions do
    position = position % #missions + 1
    local mission = missions[position]
    local count = sent[mission]
    if not in_flight[mission] and count < #volunteers then
      sent[mission] = count + 1
      local volunteer = volunteers[(count + position) % #volunteers + 1]  -- distinct for count < #volunteers
      in_flight[mission] = volunteer.id
      return wrk.format("POST", "/missions/" .. mission .. "/candidater", volunteer.headers, volunteer.body)
    end
  end
  return wrk.format("GET", "/health")  -- every pair used (or every mission in flight): counted apart, as 200s
end

function response(status, headers, body)
  report_response(status, headers, body)
  local location = headers["location"] or headers["Location"]
  if location then
    local mission, outcome = location:match("mission=(%d+)&resultat=(%a+)")
    if mission and in_flight[mission] then
      receipts[#receipts + 1] = mission .. " " .. in_flight[mission] .. " " .. outcome
      in_flight[mission] = nil
    end
  end
end
