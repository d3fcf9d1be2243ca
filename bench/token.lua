-- wrk script: the client credentials grant with client_secret_post.
-- Reads CV_CLIENT_ID and CV_CLIENT_SECRET; done() prints one RESULT line for bench/run.py.

local function urlencode(value)
  return (value:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local client_id = assert(os.getenv("CV_CLIENT_ID"), "CV_CLIENT_ID is not set")
local client_secret = assert(os.getenv("CV_CLIENT_SECRET"), "CV_CLIENT_SECRET is not set")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=" .. urlencode(client_id) ..
  "&client_secret=" .. urlencode(client_secret)

dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
