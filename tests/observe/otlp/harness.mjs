// What the tracing tests share: a real OTLP receiver process (receiver.mjs,
// @elastic/mockotlpserver) and a real `errand serve` process ($ERRAND_BIN)
// on ephemeral ports. Waits are on conditions with generous deadlines, never
// fixed sleeps: these run on noisy 2-core machines, under ASan.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const DEADLINE = 30_000;
const here = dirname(fileURLToPath(import.meta.url));

export async function eventually(check, what, deadline = DEADLINE) {
  const until = Date.now() + deadline;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Receiver {
  static async start() {
    const child = spawn(process.execPath, [join(here, "receiver.mjs")], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const r = new Receiver();
    r.child = child;
    r.all = [];
    r.requests = 0;
    const lines = createInterface({ input: child.stdout });
    r.url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the OTLP receiver did not start")), DEADLINE);
      child.on("exit", (code) => reject(new Error(`the OTLP receiver exited (${code})`)));
      lines.on("line", (line) => {
        const msg = JSON.parse(line);
        if (msg.url) {
          clearTimeout(timer);
          resolve(msg.url.replace(/\/$/, ""));
        } else if (msg.spans) {
          r.requests += 1;
          r.all.push(...msg.spans);
        }
      });
    });
    return r;
  }

  spans(traceId) {
    return this.all.filter((s) => s.traceId === traceId);
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.on("exit", r));
    this.child.stdin.end();
    await exited;
  }
}

export class Server {
  static async start(args = [], env = {}) {
    const bin = process.env.ERRAND_BIN;
    if (!bin) throw new Error("set ERRAND_BIN to the errand executable");
    const dir = mkdtempSync(join(tmpdir(), "errand-otlp-"));
    const child = spawn(
      bin,
      ["serve", "--listen", "127.0.0.1:0", "--db", join(dir, "errand.db"), ...args],
      // Export batches quickly: the tests wait for spans, not for the 1 s default.
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, OTEL_BSP_SCHEDULE_DELAY: "100", ...env } },
    );
    let log = "";
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`errand did not start:\n${log}`)), DEADLINE);
      child.stderr.on("data", (d) => {
        log = (log + d).slice(-262144);
        const m = /"msg":"listening".*?"port":(\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on("exit", (code) => reject(new Error(`errand exited (${code}):\n${log}`)));
    });
    const s = new Server();
    Object.assign(s, { child, dir, port, base: `http://127.0.0.1:${port}`, log: () => log });
    return s;
  }

  async api(method, path, body, headers = {}) {
    const res = await fetch(this.base + path, {
      method,
      headers: { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async metric(name, labels = "") {
    const res = await fetch(`${this.base}/metrics`);
    const text = await res.text();
    const line = text.split("\n").find((l) => l.startsWith(name + labels + " ") || l === name + labels);
    return line ? Number(line.split(" ").pop()) : 0;
  }

  // SIGTERM, then the exit code (a sanitizer's report makes it non-zero).
  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
      this.child.kill("SIGTERM");
      const code = await exited;
      rmSync(this.dir, { recursive: true, force: true });
      if (code !== 0) throw new Error(`errand exited with ${code}:\n${this.log().slice(-4000)}`);
    }
  }
}
