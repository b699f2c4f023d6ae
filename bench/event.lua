-- wrk script: a binary-mode event of the function's default type with a unique ce-id per
-- request, so the function's dedupe never short-circuits the handler. Prints a JSON summary at
-- the end. BENCH_TYPE and BENCH_BODY (the type and its payload as JSON) come from bench/run.py,
-- which reads them off the function it drives (bench/target.py).
local counter = 0
local prefix = ""
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = "bench-" .. tostring(tid) .. "-" .. tostring(os.time()) .. "-"
end

-- BENCH_GET=1 loads FastAPI's hello world (GET /) with the same connections and durations.
local get = os.getenv("BENCH_GET") == "1"

local event_type = os.getenv("BENCH_TYPE") or ""
local body = os.getenv("BENCH_BODY") or ""
if not get and (event_type == "" or body == "") then
  error("BENCH_TYPE and BENCH_BODY name the event to send: run wrk through bench/run.py")
end
local headers = {
  ["ce-specversion"] = "1.0",
  ["ce-source"] = "/bench/wrk",
  ["ce-type"] = event_type,
  ["content-type"] = "application/json",
}

-- BENCH_TOKEN: an OIDC token sent on every request, the same bytes each time (Knative's
-- dispatcher caches a token per audience until shortly before it expires).
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  headers["authorization"] = "Bearer " .. token
end

-- The request is formatted once, around a marker where the id goes: per request, wrk only
-- joins three strings. Formatting the whole request each time (`wrk.format` walks the headers
-- table) cost the load generator CPU that grows with the headers, and on a 2-core machine that
-- CPU is taken from the server under test: a longer header (the OIDC token) then looked like a
-- slower server.
local MARK = "\0ce-id\0"
local before, after

function init_request()
  if get then
    before = wrk.format("GET", "/")
    return
  end
  headers["ce-id"] = MARK
  local whole = wrk.format("POST", "/", headers, body)
  local at = string.find(whole, MARK, 1, true)
  before = string.sub(whole, 1, at - 1)
  after = string.sub(whole, at + #MARK)
end

function request()
  if before == nil then
    init_request()
  end
  if get then
    return before
  end
  counter = counter + 1
  return before .. prefix .. counter .. after
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
