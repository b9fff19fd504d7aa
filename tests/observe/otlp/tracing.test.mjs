// errand's spans, as a real OTLP receiver gets them from a real `errand serve`.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { after, before, test } from "node:test";
import { Receiver, Server, eventually } from "./harness.mjs";

const hex = (n) => randomBytes(n).toString("hex");
const ERROR = "STATUS_CODE_ERROR";

let receiver;
before(async () => {
  receiver = await Receiver.start();
});
after(async () => {
  await receiver?.stop();
});

// An HTTP endpoint that answers 503 to its first request and 200 after,
// keeping the traceparent of each.
async function flakyDownstream() {
  const seen = [];
  const states = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.headers.traceparent);
    states.push(req.headers.tracestate);
    req.resume();
    req.on("end", () => {
      if (seen.length === 1) {
        res.writeHead(503, { "Retry-After": "1" });
        res.end("busy");
      } else {
        res.writeHead(200);
        res.end("ok");
      }
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { srv, seen, states, url: `http://127.0.0.1:${srv.address().port}/hook` };
}

async function finished(server, id) {
  return eventually(async () => {
    const t = await server.api("GET", `/v1/tasks/${id}`);
    return ["succeeded", "dead"].includes(t.state) && t;
  }, `task ${id} to finish`);
}

test("one trace from the request through the enqueue, both attempts and their calls", async () => {
  const down = await flakyDownstream();
  const server = await Server.start(["--otlp-endpoint", receiver.url], {
    OTEL_SERVICE_NAME: "errand-e2e",
  });
  try {
    const traceId = hex(16);
    const caller = hex(8);
    const { id } = await server.api(
      "POST",
      "/v1/tasks",
      // Credentials in the URL: used for the call, never shown in a span.
      {
        type: "http.request",
        payload: { url: down.url.replace("http://", "http://user:secret@"), method: "POST", body: "{}" },
      },
      { traceparent: `00-${traceId}-${caller}-01`, tracestate: "vendor=abc" },
    );
    const task = await finished(server, id);
    assert.equal(task.state, "succeeded");
    assert.equal(task.attempt, 2);

    const byKind = (spans, kind) => spans.filter((s) => s.kind === `SPAN_KIND_${kind}`);
    const spans = await eventually(() => {
      const s = receiver.spans(traceId);
      return byKind(s, "CLIENT").length === 2 && byKind(s, "CONSUMER").length === 2 && s;
    }, "the trace's spans");

    const [request] = byKind(spans, "SERVER").filter((s) => s.name === "POST /v1/tasks");
    assert.ok(request, "a server span for the request");
    assert.equal(request.parentSpanId, caller);
    assert.equal(request.attributes["http.route"], "/v1/tasks");
    assert.equal(request.attributes["http.request.method"], "POST");
    assert.equal(request.attributes["http.response.status_code"], 202);
    assert.equal(request.attributes["client.address"], "127.0.0.1");
    assert.equal(request.resource["service.name"], "errand-e2e");
    assert.ok(request.resource["service.instance.id"], "the node id is the resource's instance");

    const [producer] = byKind(spans, "PRODUCER");
    assert.equal(producer.name, "enqueue http.request");
    assert.equal(producer.parentSpanId, request.spanId);
    assert.equal(producer.attributes["messaging.message.id"], id);
    assert.equal(producer.attributes["messaging.destination.name"], "default");

    const consumers = byKind(spans, "CONSUMER").sort(
      (a, b) => a.attributes["errand.task.attempt"] - b.attributes["errand.task.attempt"],
    );
    for (const c of consumers) {
      assert.equal(c.name, "process http.request");
      assert.equal(c.parentSpanId, producer.spanId, "each attempt is a child of the enqueue");
      assert.ok(BigInt(c.start) >= BigInt(producer.end), "the queue wait is the gap");
    }
    const [first, second] = consumers;
    assert.equal(first.attributes["errand.task.attempt"], 1);
    assert.equal(first.status.code, ERROR);
    assert.equal(first.attributes["errand.task.outcome"], "retrying");
    const retry = first.events.find((e) => e.name === "errand.retry");
    assert.ok(retry, "an event says why the attempt will be retried");
    assert.match(retry.attributes["errand.retry.reason"], /503/);
    assert.equal(retry.attributes["errand.retry.next_attempt"], 2);
    assert.equal(retry.attributes["errand.retry.delay_ms"], 1000, "as the 503's Retry-After: 1 asked");
    assert.equal(second.attributes["errand.task.attempt"], 2);
    assert.notEqual(second.status.code, ERROR);
    assert.equal(second.attributes["errand.task.outcome"], "succeeded");

    const clients = byKind(spans, "CLIENT");
    for (const [i, consumer] of consumers.entries()) {
      const call = clients.find((c) => c.parentSpanId === consumer.spanId);
      assert.ok(call, `attempt ${i + 1} has a client span`);
      assert.equal(call.name, "POST");
      assert.equal(call.attributes["url.full"], down.url);
      assert.equal(call.attributes["server.address"], "127.0.0.1");
      assert.equal(call.attributes["http.response.status_code"], i === 0 ? 503 : 200);
      assert.equal(call.status.code === ERROR, i === 0);
      // The downstream saw this span as its parent, and the caller's tracestate.
      assert.equal(down.seen[i], `00-${traceId}-${call.spanId}-01`);
      assert.equal(down.states[i], "vendor=abc");
    }
  } finally {
    down.srv.close();
    await server.stop();
  }
});

test("a handler that throws records the exception on its attempt's span", async () => {
  const server = await Server.start(["--otlp-endpoint", receiver.url]);
  try {
    const { id } = await server.api("POST", "/v1/tasks", {
      type: "demo.sleep",
      payload: { seconds: 0.01, steps: 1, fail_attempts: 1 },
    });
    assert.equal((await finished(server, id)).state, "succeeded");
    const attempts = await eventually(() => {
      const a = receiver.all.filter(
        (s) => s.kind === "SPAN_KIND_CONSUMER" && s.attributes["messaging.message.id"] === id,
      );
      return a.length === 2 && a;
    }, "both attempts' spans");
    const failed = attempts.find((s) => s.attributes["errand.task.attempt"] === 1);
    assert.equal(failed.status.code, ERROR);
    const exception = failed.events.find((e) => e.name === "exception");
    assert.ok(exception, "an exception event");
    assert.equal(exception.attributes["exception.type"], "std::runtime_error");
    assert.match(exception.attributes["exception.message"], /failing attempt 1 on purpose/);
    assert.equal(failed.resource["service.name"], "errand");
  } finally {
    await server.stop();
  }
});

test("sampling: new traces by ratio, a caller's decision kept", async () => {
  const server = await Server.start(["--otlp-endpoint", receiver.url, "--trace-sample-ratio", "0"]);
  try {
    const sampled = hex(16);
    const unsampled = hex(16);
    await server.api("GET", "/healthz", undefined, { traceparent: `00-${sampled}-${hex(8)}-01` });
    await server.api("GET", "/healthz", undefined, { traceparent: `00-${unsampled}-${hex(8)}-00` });
    const res = await fetch(`${server.base}/healthz`);
    const fresh = res.headers.get("traceparent");
    assert.match(fresh, /-00$/, "ratio 0: a new trace is not sampled, and says so downstream");
    await eventually(() => receiver.spans(sampled).length === 1, "the sampled request's span");
    assert.equal(receiver.spans(unsampled).length, 0);
    assert.equal(receiver.spans(fresh.split("-")[1]).length, 0);
  } finally {
    await server.stop();
  }
});

test("shutdown sends what is still queued", async () => {
  const server = await Server.start(["--otlp-endpoint", receiver.url], {
    OTEL_BSP_SCHEDULE_DELAY: "60000", // nothing is sent before shutdown
  });
  const traceId = hex(16);
  await server.api("GET", "/healthz", undefined, { traceparent: `00-${traceId}-${hex(8)}-01` });
  assert.equal(receiver.spans(traceId).length, 0);
  await server.stop();
  await eventually(() => receiver.spans(traceId).length === 1, "the span flushed at shutdown");
});

test("with the collector down the server keeps serving; spans are dropped and counted", async () => {
  // Port 1: no test binds it (a port taken and let go could be bound by a
  // test running beside this one, whose server would get our spans).
  const port = 1;
  const server = await Server.start(["--otlp-endpoint", `http://127.0.0.1:${port}`], {
    OTEL_BSP_MAX_QUEUE_SIZE: "8",
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4",
  });
  try {
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${server.base}/healthz`);
      assert.equal(res.status, 200);
      await res.text();
    }
    await eventually(
      async () => (await server.metric("otel_spans_dropped_total", '{reason="export_failed"}')) >= 1,
      "spans dropped for the failed export",
    );
    await eventually(
      async () => (await server.metric("otel_spans_dropped_total", '{reason="queue_full"}')) >= 1,
      "spans dropped for the full queue",
    );
    assert.ok((await server.metric("otel_export_failures_total")) >= 1);
    assert.equal(await server.metric("otel_spans_exported_total"), 0);
    // One line says so, not one per span or per request.
    const lines = server.log().split("\n").filter((l) => l.includes("span export failed"));
    assert.equal(lines.length, 1, server.log().slice(-2000));
  } finally {
    await server.stop();
  }
});
