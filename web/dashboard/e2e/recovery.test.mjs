// The page when its server goes away and comes back: it says so plainly and
// recovers by itself, with no reload.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { newPage, openBrowser, Server } from "./harness.mjs";

let browser;
const dir = mkdtempSync(join(tmpdir(), "errand-e2e-db-"));

// A port free now, so that the restarted server can listen where the page
// keeps calling.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a server that goes away is reported, and the page recovers when it is back", async () => {
  const port = await freePort();
  const args = ["--listen", `127.0.0.1:${port}`, "--db", join(dir, "errand.db")];
  let server = await Server.start(args);
  await server.enqueue({ type: "demo.noop", queue: "kept" });
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.base + "/ui/");
  await page.locator('table.queues tr[data-queue="kept"]').waitFor();

  await server.stop();
  await page.getByRole("alert").filter({ hasText: "Cannot reach the errand server" }).waitFor();

  server = await Server.start(args);
  await page.getByRole("alert").waitFor({ state: "detached" });
  await page.locator('table.queues tr[data-queue="kept"]').waitFor();
  await context.close();
  await server.stop();
  // Chromium logs each refused connection while the server is down.
  assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|Failed to fetch/.test(p)), []);
});
