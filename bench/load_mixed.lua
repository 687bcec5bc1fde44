-- bench_load's mix for wrk: each request is one of list tickets (40 %), create a ticket (20 %),
-- ingest one alert (20 %), list notifications or read the unread count (10 % each).
-- Arguments: <JWT> <ingestion token> <prefix of created rows> <seconds of the run>. Every created
-- row carries the prefix; done() prints what the answers said was created, to be counted in the
-- database. Writes stop in the last third of the run (at least 5 s; reads go on), so no write is
-- still in flight when wrk stops.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  jwt, ingest, prefix = args[1], args[2], args[3]
  writes_until = os.time() + tonumber(args[4]) - math.max(5, tonumber(args[4]) / 3)
  n, created, ingested, failed = 0, 0, 0, 0
  math.randomseed(id * 7919)
  auth = { ["Authorization"] = "Bearer " .. jwt }
  json_auth = { ["Authorization"] = "Bearer " .. jwt, ["Content-Type"] = "application/json" }
  ingest_auth = { ["Authorization"] = "Bearer " .. ingest, ["Content-Type"] = "application/json" }
end

function request()
  n = n + 1
  local roll = math.random()
  if os.time() >= writes_until and roll >= 0.4 and roll < 0.8 then
    roll = 0.85  -- the last seconds: a read instead of a write
  end
  if roll < 0.4 then
    return wrk.format("GET", "/api/v1/tickets/?page_size=20", auth)
  elseif roll < 0.6 then
    local body = string.format('{"subject":"%s t%d #%d","message":"load","priority":"normal","target_type":"platform"}', prefix, id, n)
    return wrk.format("POST", "/api/v1/tickets/", json_auth, body)
  elseif roll < 0.8 then
    local body = string.format('[{"labels":{"alertname":"%s-t%d-%d","severity":"warning"}}]', prefix, id, n)
    return wrk.format("POST", "/api/v1/alerts/ingest", ingest_auth, body)
  elseif roll < 0.9 then
    return wrk.format("GET", "/api/v1/notifications/?page_size=20", auth)
  end
  return wrk.format("GET", "/api/v1/notifications/unread-count/", auth)
end

function response(status, headers, body)
  if status >= 400 then
    failed = failed + 1
  elseif status == 201 then
    created = created + 1
  else
    local alerts = body:match('"received":%d+,"created":(%d+)')
    if alerts then ingested = ingested + tonumber(alerts) end
  end
end

function done(summary, latency, requests)
  local c, i, f = 0, 0, 0
  for _, t in ipairs(threads) do
    c, i, f = c + t:get("created"), i + t:get("ingested"), f + t:get("failed")
  end
  io.write(string.format("mix: tickets_created=%d alerts_ingested=%d failed=%d\n", c, i, f))
end
