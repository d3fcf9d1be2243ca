-- wrk script: POST {pan, exp_month, exp_year} with a fresh random Luhn-valid Visa-range PAN
-- per request (to /cards, or to /network-tokens to enrol and provision at once).
-- Header "Authorization: Bearer $CV_BEARER". done() prints one RESULT line.

local token = os.getenv("CV_BEARER")
local year = tonumber(os.date("%Y")) + 3
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

local function check_digit(body)
  local sum, double = 0, true
  for i = #body, 1, -1 do
    local d = tonumber(body:sub(i, i))
    if double then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    double = not double
  end
  return tostring((10 - sum % 10) % 10)
end

function request()
  local digits = { "4" }
  for i = 2, 15 do digits[i] = tostring(math.random(0, 9)) end
  local body = table.concat(digits)
  local pan = body .. check_digit(body)
  return wrk.format(nil, nil, nil,
    string.format('{"pan":"%s","exp_month":12,"exp_year":%d}', pan, year))
end

dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
