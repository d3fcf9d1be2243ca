-- wrk script: GET with "Authorization: Bearer $CV_BEARER" (no header when CV_BEARER is
-- unset or empty, e.g. for the JWKS). With CV_DELAY_MS, each connection waits that many
-- milliseconds before each request (a paced load instead of as fast as possible).
-- done() prints one RESULT line for bench/run.py.

local token = os.getenv("CV_BEARER")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local pause = tonumber(os.getenv("CV_DELAY_MS") or "")
if pause ~= nil and pause > 0 then
  function delay()
    return pause
  end
end

dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
