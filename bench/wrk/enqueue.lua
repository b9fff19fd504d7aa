-- POST /v1/tasks: a durable enqueue of a no-op task (202 only after commit).
wrk.method = "POST"
wrk.body = '{"type":"demo.noop","payload":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"

-- Count non-202 answers, so a run that is refused is not mistaken for a fast one.
local refused = 0
function response(status, headers, body)
  if status ~= 202 then refused = refused + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("refused %d\n", refused))
end
