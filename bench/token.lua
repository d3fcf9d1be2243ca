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

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f " ..
    "max_ms=%.2f errors_status=%d errors_connect=%d errors_read=%d errors_write=%d " ..
    "errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
