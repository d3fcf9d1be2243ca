-- wrk script: GET with "Authorization: Bearer $CV_BEARER" (no header when CV_BEARER is
-- unset or empty, e.g. for the JWKS). done() prints one RESULT line for bench/run.py.

local token = os.getenv("CV_BEARER")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
