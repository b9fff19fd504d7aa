// BullMQ behind an HTTP server, as a service that accepts work over HTTP
// runs it: Node's own http module, one process (one JavaScript thread, as
// errand --threads 1 and Gin GOMAXPROCS=1), `POST /async-task` with a JSON
// body, queue.add(), then 202 with the job's id once Redis has it.
// Prints "port N" on stderr when it listens.
// Usage: node http_enqueue.mjs REDIS_PORT
import http from "node:http";
import { Queue } from "bullmq";

const [redisPort] = process.argv.slice(2).map(Number);
const queue = new Queue(`http-enqueue-${process.pid}`, {
  connection: { host: "127.0.0.1", port: redisPort },
});
await queue.waitUntilReady();

const reply = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};
const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/async-task") {
    reply(res, 404, { error: "not found" });
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    let task;
    try {
      task = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      reply(res, 400, { error: "invalid JSON" });
      return;
    }
    try {
      const job = await queue.add(typeof task.type === "string" ? task.type : "noop", task);
      reply(res, 202, { id: job.id });
    } catch (e) {
      reply(res, 503, { error: String(e) });
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.error(`port ${server.address().port}`));
const stop = async () => {
  server.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
