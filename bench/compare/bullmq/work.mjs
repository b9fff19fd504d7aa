// One BullMQ worker node for the several-nodes workload: a Worker with
// `concurrency` takes no-op jobs from QUEUE (filled by pending.mjs) until N
// jobs of the queue have completed, counting every node's. Prints its start
// and end (ms since the epoch); the harness takes N / (last end - first start).
// Usage: node work.mjs REDIS_PORT QUEUE N CONCURRENCY
import { Queue, Worker } from "bullmq";

const [port, name, n, concurrency] = process.argv.slice(2);
const connection = { host: "127.0.0.1", port: Number(port) };
const queue = new Queue(name, { connection });
await queue.waitUntilReady();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const start_ms = Date.now();
const worker = new Worker(name, async () => {}, { connection, concurrency: Number(concurrency) });
// As errand's driver does: look at the shared count every 5 ms.
while ((await queue.getCompletedCount()) < Number(n)) await sleep(5);
const end_ms = Date.now();
console.log(JSON.stringify({ start_ms, end_ms }));
await worker.close();
await queue.close();
