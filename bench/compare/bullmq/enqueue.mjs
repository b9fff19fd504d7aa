// BullMQ enqueue rate: `concurrency` producers calling queue.add() (or
// addBulk() of `bulk` jobs) for `seconds`. With `rate`, the producers are
// paced to offer that many jobs per second in all, and the latency of each
// add() is recorded. Prints {"jobs_per_s", "jobs", "p99_ms"}.
// Usage: node enqueue.mjs REDIS_PORT SECONDS CONCURRENCY [BULK=1] [RATE=0]
import { Queue } from "bullmq";

const [port, seconds, concurrency, bulk = 1, rate = 0] = process.argv.slice(2).map(Number);
const connection = { host: "127.0.0.1", port };
const queue = new Queue(`enqueue-${process.pid}`, { connection });
await queue.waitUntilReady();

let done = 0;
const latencies = [];
const start = Date.now();
const deadline = start + seconds * 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const producer = async (p) => {
  // Paced: producer p sends at start + (p + k * concurrency) / rate.
  for (let k = 0; Date.now() < deadline; k++) {
    if (rate > 0) {
      const due = start + ((p + k * concurrency) * 1000) / rate;
      if (due > Date.now()) await sleep(due - Date.now());
      if (Date.now() >= deadline) break;
    }
    const t0 = performance.now();
    if (bulk > 1) {
      const jobs = Array.from({ length: bulk }, (_, i) => ({ name: "noop", data: { i } }));
      await queue.addBulk(jobs);
      done += bulk;
    } else {
      await queue.add("noop", { i: done });
      done += 1;
    }
    latencies.push(performance.now() - t0);
  }
};
await Promise.all(Array.from({ length: concurrency }, (_, p) => producer(p)));
const elapsed = (Date.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const p99 = latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] : 0;
console.log(JSON.stringify({ jobs_per_s: done / elapsed, jobs: done, p99_ms: Number(p99.toFixed(2)) }));
await queue.obliterate({ force: true });
await queue.close();
