// One BullMQ worker node for the several-nodes workload: a Worker with
// `concurrency` takes no-op jobs from QUEUE (filled by pending.mjs) until N
// jobs of the queue have completed, counting every node's. Prints when its
// first job started and its last one ended (ms since the epoch, stamped inside
// the processor) and how many it ran; the harness takes N / (last end - first
// start) over the nodes.
// Usage: node work.mjs REDIS_PORT QUEUE N CONCURRENCY
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";

const [port, name, n, concurrency] = process.argv.slice(2);
const connection = { host: "127.0.0.1", port: Number(port) };
const queue = new Queue(name, { connection });
await queue.waitUntilReady();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();

let ran = 0;
let first_ms;
let last_ms;
const worker = new Worker(
  name,
  async () => {
    first_ms ??= now();
    ran += 1;
    last_ms = now();
  },
  { connection, concurrency: Number(concurrency) },
);
// As errand's driver does: look at the shared count every 5 ms (not timed).
while ((await queue.getCompletedCount()) < Number(n)) await sleep(5);
console.log(JSON.stringify({ first_ms, last_ms, ran }));
await worker.close();
await queue.close();
