// N pending no-op jobs (addBulk), left in Redis for the harness to measure
// redis-server's memory, or for work.mjs to drain.
// Usage: node pending.mjs REDIS_PORT N [QUEUE=pending]
import { Queue } from "bullmq";

const [port, n] = process.argv.slice(2, 4).map(Number);
const name = process.argv[4] ?? "pending";
const queue = new Queue(name, { connection: { host: "127.0.0.1", port } });
for (let i = 0; i < n; i += 1000) {
  const count = Math.min(1000, n - i);
  await queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: "noop", data: { i: i + k } })));
}
console.log(JSON.stringify({ jobs: n }));
await queue.close();
