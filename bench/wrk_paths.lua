-- wrk script used by bench/tpf_bench.py: cycles through the request paths listed one a
-- line in the file named by BENCH_PATHS (each thread starts at another offset), sends
-- BENCH_ACCEPT as Accept, counts 200 and other statuses, and prints "BENCH_JSON {...}".

local accept = os.getenv("BENCH_ACCEPT")
if accept and accept ~= "" then wrk.headers["Accept"] = accept end

local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  if line ~= "" then table.insert(paths, line) end
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", counter * 7)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  i = offset or 0
  n200, nother = 0, 0
end

function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end

function response(status, headers, body)
  if status == 200 then n200 = n200 + 1 else nother = nother + 1 end
end

function done(summary, latency, requests)
  local s200, sother = 0, 0
  for _, t in ipairs(threads) do
    s200 = s200 + t:get("n200")
    sother = sother + t:get("nother")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f},"status":{"200":%d,"other":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, s200, sother))
end
