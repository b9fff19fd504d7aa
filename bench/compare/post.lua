-- wrk script of bench/compare/run: POST the JSON in $BODY. With $DELAY_MS,
-- each connection waits that long between requests (a paced load, for the
-- latency-at-half-load workload); wrk reports the latency of each request.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
