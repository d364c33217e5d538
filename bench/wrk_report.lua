-- wrk script used by bench/http_bench.py.
--
-- Request headers come from the environment: BENCH_ACCEPT (Accept) and BENCH_INM
-- (If-None-Match). With BENCH_COUNT=1 every response's status is counted (200, 304,
-- other), which costs wrk a little; it is used for the If-None-Match runs only, to show
-- how many answers really were 304. done() prints one line "BENCH_JSON {...}".

local accept = os.getenv("BENCH_ACCEPT")
local inm = os.getenv("BENCH_INM")
if accept and accept ~= "" then wrk.headers["Accept"] = accept end
if inm and inm ~= "" then wrk.headers["If-None-Match"] = inm end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("BENCH_COUNT") == "1" then
  function init(args)
    n200, n304, nother = 0, 0, 0
  end

  function response(status, headers, body)
    if status == 200 then
      n200 = n200 + 1
    elseif status == 304 then
      n304 = n304 + 1
    else
      nother = nother + 1
    end
  end
end

function done(summary, latency, requests)
  local s200, s304, sother, counted = 0, 0, 0, false
  for _, t in ipairs(threads) do
    local a = t:get("n200")
    if a ~= nil then
      counted = true
      s200 = s200 + a
      s304 = s304 + t:get("n304")
      sother = sother + t:get("nother")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  if counted then
    io.write(string.format(',"status":{"200":%d,"304":%d,"other":%d}', s200, s304, sother))
  end
  io.write("}\n")
end
