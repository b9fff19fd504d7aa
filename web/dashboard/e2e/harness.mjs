// What the end-to-end tests share: a real `errand serve` process (the binary
// in $ERRAND_BIN, a SQLite file in a temp dir, an ephemeral port) and
// Debian's Chromium ($CHROMIUM, /usr/bin/chromium by default) driven by
// playwright-core. Waits are on conditions with generous deadlines, never
// fixed sleeps: these run on noisy 2-core machines, under ASan.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const DEADLINE = 30_000;

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

export class Server {
  static async start(args = [], token = null) {
    const bin = process.env.ERRAND_BIN;
    if (!bin) throw new Error("set ERRAND_BIN to the errand executable");
    const dir = mkdtempSync(join(tmpdir(), "errand-e2e-"));
    // An ephemeral port and a fresh file, unless the test names its own.
    const defaults = [];
    if (!args.includes("--listen")) defaults.push("--listen", "127.0.0.1:0");
    if (!args.includes("--db")) defaults.push("--db", join(dir, "errand.db"));
    const child = spawn(bin, ["serve", ...defaults, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`errand did not start:\n${log}`)), DEADLINE);
      // Read to the end (a full pipe would block the server), keep the tail.
      child.stderr.on("data", (d) => {
        log = (log + d).slice(-65536);
        const m = /"msg":"listening".*?"port":(\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on("exit", (code) => reject(new Error(`errand exited (${code}):\n${log}`)));
    });
    const s = new Server();
    Object.assign(s, { child, dir, port, token, base: `http://127.0.0.1:${port}`, log: () => log });
    return s;
  }

  async api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const res = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  enqueue(task) {
    return this.api("POST", "/v1/tasks", task);
  }

  task(id) {
    return this.api("GET", `/v1/tasks/${id}`);
  }

  // A clean shutdown, or an error with the log's tail (a sanitizer's report
  // makes the exit code non-zero).
  async stop() {
    let code = this.child.exitCode;
    if (code === null) {
      const exited = new Promise((r) => this.child.on("exit", (c) => r(c)));
      this.child.kill("SIGTERM");
      code = await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (code !== 0) throw new Error(`errand exited with ${code}:\n${this.log()}`);
  }
}

// A browser page that records every console error or warning and uncaught
// exception; `expected` lets a test name the ones it provokes (a 401 it
// asked for is logged by Chromium as a failed resource).
export async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  return browser;
}

export async function newPage(browser, { width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE);
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
  return { page, context, problems };
}
