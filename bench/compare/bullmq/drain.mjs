// BullMQ end to end: N no-op jobs are added first (addBulk), then a Worker
// with `concurrency` drains them. Timed by the jobs themselves, as errand's
// and Sidekiq's drivers are: from the first job's start to the Nth job's end,
// stamped inside the processor. Completed jobs are kept, as errand keeps its
// results.
// Usage: node drain.mjs REDIS_PORT N CONCURRENCY   -> {"jobs_per_s": N, ...}
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";

const [port, n, concurrency] = process.argv.slice(2).map(Number);
const connection = { host: "127.0.0.1", port };
const name = `drain-${process.pid}`;
const queue = new Queue(name, { connection });
for (let i = 0; i < n; i += 1000) {
  const count = Math.min(1000, n - i);
  await queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: "noop", data: { i: i + k } })));
}

let ran = 0;
let first;
let last;
let completed = 0;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const worker = new Worker(
  name,
  async () => {
    first ??= performance.now();
    ran += 1;
    last = performance.now();
  },
  { connection, concurrency },
);
worker.on("completed", () => {
  completed += 1;
  if (completed === n) finish();
});
await finished;
const elapsed = (last - first) / 1000;
console.log(JSON.stringify({ jobs_per_s: n / elapsed, jobs: n, ran }));
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
