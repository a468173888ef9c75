-- wrk script of the API load benchmark.
-- BENCH_AUTH (optional): the Authorization header's value.
-- BENCH_BODY (optional): a JSON body; the requests become POSTs of it.
-- At the end it prints one line, "WRK_JSON " and a JSON object: requests, seconds, errors
-- (sockets and non-2xx answers) and latency percentiles in milliseconds.

local auth = os.getenv("BENCH_AUTH")
local body = os.getenv("BENCH_BODY")

if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "errors": %d, "non_2xx": %d, "timeouts": %d, '
      .. '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, failed, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
