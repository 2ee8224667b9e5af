-- wrk script for plain GETs (the URL's path), reporting like the sign-up script:
--   wrk -t2 -c64 -d10s -s loadtests/wrk/get.lua http://127.0.0.1:8000/page
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
