// The dashboard in headless Chromium against a real errand server: what an
// operator sees and does. Every test also checks that the page logged no
// console error or warning.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { eventually, newPage, openBrowser, Server } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await Server.start(["--queues", "default=2,mail=1,reports=1"]);
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(path, options) {
  const p = await newPage(browser, options);
  await p.page.goto(server.base + path);
  return p;
}

async function deadTasks(n, queue = "reports") {
  const r = await server.api("POST", "/v1/tasks/batch", {
    tasks: Array.from({ length: n }, () => ({
      type: "demo.sleep",
      queue,
      payload: { seconds: 0, fail_attempts: 1 },
      max_attempts: 1,
    })),
  });
  const ids = r.tasks.map((t) => t.id);
  await eventually(async () => {
    const all = await Promise.all(ids.map((id) => server.task(id)));
    return all.every((t) => t.state === "dead");
  }, `${n} tasks to die`);
  return ids;
}

test("/ redirects to the overview, which lists the queues and their counts", async () => {
  await server.api("POST", "/v1/queues/mail/pause");
  for (let i = 0; i < 3; ++i) await server.enqueue({ type: "demo.noop", queue: "mail" });
  const { page, problems, context } = await open("/");
  assert.match(page.url(), /\/ui\/$/);
  const row = page.locator('table.queues tr[data-queue="mail"]');
  await row.waitFor();
  await eventually(async () => (await row.locator('td[data-state="pending"]').innerText()) === "3",
                   "3 pending in mail");
  assert.match(await row.innerText(), /paused/);
  await page.locator('table.queues tr[data-queue="default"]').waitFor();
  await page.getByRole("heading", { name: "Last 15 minutes" }).waitFor();
  await server.api("POST", "/v1/queues/mail/resume");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a demo.sleep task's progress bar advances to done", async () => {
  // Held in a paused queue until the page watches the bar: a slow page open
  // cannot miss the steps between 0 and 100.
  await server.api("POST", "/v1/queues/mail/pause");
  let paused = true;
  try {
    const { id } = await server.enqueue({ type: "demo.sleep", queue: "mail", payload: { seconds: 4, steps: 4 } });
    const { page, problems, context } = await open(`/ui/#/tasks/${id}`);
    const bar = page.getByRole("progressbar");
    await bar.waitFor();
    // Every value the bar shows, as the page changes it.
    await page.evaluate(() => {
      window.seen = [];
      const note = () => {
        const el = document.querySelector('[role="progressbar"]');
        if (el) window.seen.push(Number(el.getAttribute("aria-valuenow")));
      };
      note();
      new MutationObserver(note).observe(document.body, { subtree: true, attributes: true, childList: true });
    });
    await server.api("POST", "/v1/queues/mail/resume");
    paused = false;
    await eventually(async () => (await bar.getAttribute("aria-valuenow")) === "100", "the bar at 100");
    await page.locator(".badge.state-succeeded").first().waitFor();
    const seen = await page.evaluate(() => window.seen);
    assert.ok(seen.some((v) => v > 0 && v < 100), `a value between 0 and 100 in ${seen}`);
    assert.match(await page.getByLabel("Result").innerText(), /slept_ms/);
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    // Not left paused for the tests after this one, however this one ends.
    if (paused) await server.api("POST", "/v1/queues/mail/resume");
  }
});

test("Cancel on a running task's page cancels it", async () => {
  const { id } = await server.enqueue({ type: "demo.sleep", payload: { seconds: 120, steps: 120 } });
  await eventually(async () => (await server.task(id)).state === "active", "the task to run");
  const { page, problems, context } = await open(`/ui/#/tasks/${id}`);
  page.on("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  await eventually(async () => (await server.task(id)).state === "cancelled", "the task cancelled");
  await page.locator(".badge.state-cancelled").first().waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("Retry on a dead task's page makes it pending again", async () => {
  const [id] = await deadTasks(1);
  // Paused, so the retried task stays pending for the check.
  await server.api("POST", "/v1/queues/reports/pause");
  const { page, problems, context } = await open(`/ui/#/tasks/${id}`);
  await page.locator(".badge.state-dead").first().waitFor();
  // Its one attempt, with how it ended and why.
  const attempt = page.locator('tr[data-attempt="1"]');
  await attempt.locator(".badge.state-dead").waitFor();
  assert.notEqual((await attempt.locator(".error-cell").innerText()).trim(), "");
  await page.getByRole("button", { name: "Retry" }).click();
  await eventually(async () => (await server.task(id)).state === "pending", "the task pending");
  await page.locator(".badge.state-pending").first().waitFor();
  await server.api("POST", "/v1/queues/reports/resume");
  assert.deepEqual(problems, []);
  await context.close();
});

test("Pause and Resume on the queues page change the queue", async () => {
  const { page, problems, context } = await open("/ui/#/queues");
  const row = page.locator('tr[data-queue="default"]');
  await row.getByRole("button", { name: "Pause default" }).click();
  await eventually(async () => {
    const { queues } = await server.api("GET", "/v1/queues");
    return queues.find((q) => q.name === "default").paused;
  }, "default paused");
  await row.locator(".badge.paused").waitFor();
  await row.getByRole("button", { name: "Resume default" }).click();
  await eventually(async () => {
    const { queues } = await server.api("GET", "/v1/queues");
    return !queues.find((q) => q.name === "default").paused;
  }, "default running");
  await eventually(async () => (await row.locator("[data-status]").innerText()) === "running", "shown running");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a bulk retry of 50 dead tasks sends every one back", async () => {
  const ids = await deadTasks(50, "mail");
  // Paused, so the retried tasks stay pending for the check.
  await server.api("POST", "/v1/queues/mail/pause");
  const { page, problems, context } = await open("/ui/#/tasks?queue=mail&state=dead");
  await eventually(async () => (await page.locator("table.tasks tbody tr").count()) === 50, "50 rows");
  await page.getByLabel("Select every task on this page").check();
  await page.getByText("50 selected").waitFor();
  await page.getByRole("button", { name: "Retry selected" }).click();
  await page.getByRole("status").filter({ hasText: "50 retried" }).waitFor();
  const all = await Promise.all(ids.map((id) => server.task(id)));
  assert.equal(all.filter((t) => t.state === "pending").length, 50);
  await eventually(async () => (await page.locator("table.tasks tbody tr").count()) === 0, "the list empty");
  await server.api("POST", "/v1/queues/mail/resume");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the tasks page filters by state and finds a task by id and by unique key", async () => {
  const { id } = await server.enqueue({
    type: "demo.sleep",
    queue: "reports",
    payload: { seconds: 60 },
    unique_key: "order-42",
    delay_ms: 3_600_000,
  });
  // Newer: a find that ignored the key would land here.
  await server.enqueue({ type: "demo.noop", queue: "reports", delay_ms: 3_600_000 });
  const { page, problems, context } = await open("/ui/#/tasks");
  await page.getByLabel("State").selectOption("scheduled");
  await page.locator(`tr[data-id="${id}"]`).waitFor();
  assert.match(page.url(), /state=scheduled/);
  await page.getByLabel("Find").fill("order-42");
  await page.getByRole("button", { name: "Find", exact: true }).click();
  await page.waitForURL(new RegExp(`#/tasks/${id}$`));
  await page.getByText("order-42").waitFor();
  await page.goto(server.base + "/ui/#/tasks");
  await page.getByLabel("Find").fill(id);
  await page.getByRole("button", { name: "Find", exact: true }).click();
  await page.waitForURL(new RegExp(`#/tasks/${id}$`));
  await server.api("POST", `/v1/tasks/${id}/cancel`);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the API page renders the OpenAPI document and Try it out calls this server", async () => {
  const { page, problems, context } = await open("/ui/api.html");
  await page.getByText("/v1/tasks/bulk").first().waitFor();
  const op = page.locator('.opblock-summary-path[data-path="/v1/queues"]').first();
  await op.click();
  await page.getByRole("button", { name: "Try it out" }).first().click();
  await page.getByRole("button", { name: "Execute" }).first().click();
  await page.locator(".live-responses-table .response-col_status").filter({ hasText: "200" }).first().waitFor();
  assert.match(await page.locator(".live-responses-table").first().innerText(), /"queues"/);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the overview reads on a phone-sized screen", async () => {
  const { page, problems, context } = await open("/ui/", { width: 390, height: 844 });
  await page.locator("table.queues").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  assert.deepEqual(problems, []);
  await context.close();
});
