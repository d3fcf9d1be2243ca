-- Shared by the wrk scripts: done() prints one RESULT line that bench/run.py parses.

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
