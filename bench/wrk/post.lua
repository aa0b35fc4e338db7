-- POSTs one JSON body on every request and prints the results as one JSON line.
-- Environment (read by every wrk thread):
--   BENCH_BODY_FILE     the request body (required)
--   BENCH_MAX_REQUESTS  stop after about this many responses in total (0 = run for the duration)
--   BENCH_THREADS       wrk's -t, to split BENCH_MAX_REQUESTS between threads

local file = assert(io.open(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is required"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"

local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
if max_requests > 0 then
  local quota = math.ceil(max_requests / threads)
  local seen = 0
  response = function(status, headers, body)
    seen = seen + 1
    if seen == quota then
      -- wrk itself runs until -d: tell the harness, which interrupts wrk once every thread is done
      io.stdout:write("BENCH_THREAD_DONE\n")
      io.stdout:flush()
      wrk.thread:stop()
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,' ..
    '"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
