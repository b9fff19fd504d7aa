// The dashboard against a server with --auth-token: the page loads without
// a token (its assets hold no data), asks for one, refuses a wrong one
// plainly and works with the right one.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { newPage, openBrowser, Server } from "./harness.mjs";

const TOKEN = "e2e-token-0123456789abcdef";
let server;
let browser;

before(async () => {
  server = await Server.start(["--auth-token", TOKEN], TOKEN);
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("a wrong token is refused and the right one works", async () => {
  await server.enqueue({ type: "demo.noop", queue: "secret" });
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.base + "/");
  await page.getByText("This server needs a token").waitFor();
  await page.getByLabel("Token").fill("not-the-token-at-all");
  await page.getByRole("button", { name: "Use token" }).click();
  await page.getByText("The server refused that token").waitFor();
  await page.getByLabel("Token").fill(TOKEN);
  await page.getByRole("button", { name: "Use token" }).click();
  await page.locator('table.queues tr[data-queue="secret"]').waitFor();
  assert.equal(await page.getByRole("alert").count(), 0);
  // The token stays in this tab: a reload needs no new one.
  await page.reload();
  await page.locator('table.queues tr[data-queue="secret"]').waitFor();
  // Chromium logs each 401 it was shown as a failed resource; nothing else.
  assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);
  await context.close();
});
