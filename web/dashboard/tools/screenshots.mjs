// Regenerates the dashboard's screenshots in docs/screenshots/ (run by
// scripts/screenshots): starts `errand serve` ($ERRAND_BIN) with some queues
// and a schedule, gives it a little of everything to show, and photographs
// each page in headless Chromium. Also prints the time to first render.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually, newPage, openBrowser, Server } from "../e2e/harness.mjs";

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "docs", "screenshots");
mkdirSync(out, { recursive: true });

const server = await Server.start([
  "--queues", "default=4,mail=2,reports=1",
  "--schedule", "nightly-report=cron:0 3 * * *:demo.noop:reports",
  "--schedule", "heartbeat=every:30s:demo.noop",
]);
const browser = await openBrowser();
try {
  // Ten seconds of traffic for the charts: successes, some failures, a slow one.
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    await server.api("POST", "/v1/tasks/batch", {
      tasks: [
        ...Array.from({ length: 20 }, () => ({ type: "demo.sleep", payload: { seconds: 0.05 } })),
        ...Array.from({ length: 5 }, () => ({ type: "demo.sleep", queue: "mail", payload: { seconds: 0.2 } })),
        { type: "demo.sleep", queue: "mail", payload: { seconds: 0, fail_attempts: 1 }, max_attempts: 1 },
      ],
    });
    await new Promise((r) => setTimeout(r, 250));
  }
  for (let i = 0; i < 12; ++i) {
    await server.enqueue({ type: "demo.sleep", queue: "reports", payload: { seconds: 30 }, delay_ms: 600_000 * (i + 1) });
  }
  const { id } = await server.enqueue({
    type: "demo.sleep",
    queue: "reports",
    payload: { seconds: 60, steps: 10 },
    unique_key: "report-2026-12",
  });
  await eventually(async () => (await server.task(id)).progress?.percent >= 10, "progress");
  await server.api("POST", "/v1/queues/mail/pause");
  for (let i = 0; i < 8; ++i) await server.enqueue({ type: "demo.noop", queue: "mail" });
  await new Promise((r) => setTimeout(r, 5500)); // one stats publication (5 s)

  const shots = [
    ["overview", "/ui/#/", "table.queues tbody tr"],
    ["tasks", "/ui/#/tasks?queue=mail&state=dead", "table.tasks tbody tr"],
    ["task", `/ui/#/tasks/${id}`, '[role="progressbar"]'],
    ["queues", "/ui/#/queues", "tr[data-schedule]"],
    ["api", "/ui/api.html", ".opblock"],
  ];
  for (const [name, path, ready] of shots) {
    const { page, context } = await newPage(browser, { width: 1280, height: 860 });
    const started = Date.now();
    await page.goto(server.base + path);
    await page.locator(ready).first().waitFor();
    if (name === "overview") {
      console.log(`overview: first render with data ${Date.now() - started} ms ` +
                  `(DOMContentLoaded at ${await page.evaluate(() =>
                    Math.round(performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd))} ms)`);
      await page.locator(".chart canvas").first().waitFor();
    }
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: name !== "api" });
    await context.close();
    console.log(`docs/screenshots/${name}.png`);
  }
  const phone = await newPage(browser, { width: 390, height: 844 });
  await phone.page.goto(server.base + "/ui/#/");
  await phone.page.locator("table.queues tbody tr").first().waitFor();
  await phone.page.screenshot({ path: join(out, "overview-phone.png") });
  await phone.context.close();
  console.log("docs/screenshots/overview-phone.png");
} finally {
  await browser.close();
  await server.stop();
}
