-- wrk script for the sign-up wave: every request POSTs a valid sign-up with a unique e-mail.
--
--   RENFORT_RUN=lt-abc123 wrk -t2 -c64 -d20s -s loadtests/wrk/signup.lua http://127.0.0.1:8000/api/v1/volunteers
--
-- E-mails are <RENFORT_RUN>.<thread>.<counter>@<RENFORT_MAIL_DOMAIN> (example.org unless set), so a run's rows can be
-- counted by prefix; `rehearsal.invalid` is the domain the platform never e-mails.
-- Reporting (per-status counts, latency in ms, optional receipts file) is in report.lua beside this file.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

-- Load-test fixtures only (real postal code -> INSEE commune pairs); the platform reads its geography from data.
local places = {
  {"69003", "69123"}, {"75011", "75056"}, {"13001", "13055"}, {"33000", "33063"}, {"59000", "59350"},
  {"31000", "31555"}, {"44000", "44109"}, {"67000", "67482"}, {"34000", "34172"}, {"35000", "35238"},
}
local first_names = {"Ana", "Léa", "Hugo", "Inès", "Lucas", "Chloé", "Karim", "Zoé", "Théo", "Aïcha"}
local last_names = {"Martin", "Bernard", "Dubois", "Lefèvre", "N'Diaye", "Moreau", "Garcia", "Nguyen"}
local domains = {"solidarite-insertion", "sante-pour-tous", "prevention-protection", "education-pour-tous"}
local availability = {"weekends", "weekdays", "evenings", "anytime"}

local run = os.getenv("RENFORT_RUN") or ("lt-" .. os.time())
local mail_domain = os.getenv("RENFORT_MAIL_DOMAIN") or "example.org"
local counter = 0

local function pick(list)
  return list[math.random(#list)]
end

function request()
  counter = counter + 1
  local place = pick(places)
  local body = string.format(
    '{"first_name":"%s","last_name":"%s","email":"%s.%d.%d@%s","phone":"06 %02d %02d %02d %02d",'
      .. '"birth_date":"%d-%02d-%02d","postal_code":"%s","commune_code":"%s","domains":["%s"],'
      .. '"availability":"%s","skills":["permis B"],"consent":true,"emergency":"covid-19"}',
    pick(first_names), pick(last_names), run, tid, counter, mail_domain,
    math.random(0, 99), math.random(0, 99), math.random(0, 99), math.random(0, 99),
    math.random(1950, 2006), math.random(1, 12), math.random(1, 28),
    place[1], place[2], pick(domains), pick(availability))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
