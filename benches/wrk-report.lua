-- wrk's `done` hook for benches/compare.sh: one line of JSON, prefixed `WRK_JSON `, with
-- the requests per second, latency percentiles (microseconds) and errors of the run.
-- Requests are what wrk builds from the command line (-H adds the Authorization header).
--
--   wrk -t1 -c64 -d10s -s benches/wrk-report.lua -H "Authorization: Bearer $TOKEN" URL

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
