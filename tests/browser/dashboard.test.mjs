// The dashboard end to end, in headless Chromium (Debian's chromium driven by playwright-core):
// sign in with an API token, see a pool healthy, watch it turn red when its real origin dies —
// without a reload — and see the event appear. Screenshots go to $SCREENSHOTS (default
// target/screenshots; `SCREENSHOTS=docs` refreshes the ones in docs/).
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const bin = process.env.VANTAGE_BIN || join(root, "target/debug/vantage");
const shots = resolve(root, process.env.SCREENSHOTS || "target/screenshots");
const TOKEN = "browser-test-token-0123456789abcdefghijklmnopqrstuv";
mkdirSync(shots, { recursive: true });

function startVantage(dir) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir], {
      env: { ...process.env, VANTAGE_BOOTSTRAP_TOKEN: TOKEN, VANTAGE_LOG: "info" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    child.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/listening on ([0-9.:]+)/);
      if (m) ok({ child, base: "http://" + m[1] });
    });
    child.on("exit", (code) => fail(new Error(`vantage exited (${code}):\n${log}`)));
  });
}

function startOrigin() {
  const sockets = new Set();
  const server = createServer((req, res) => res.end("ok"));
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok({
    port: server.address().port,
    kill: () => { server.close(); for (const s of sockets) s.destroy(); },
  })));
}

async function call(base, method, path, body) {
  const r = await fetch(base + "/client/v4" + path, {
    method,
    headers: { Authorization: "Bearer " + TOKEN, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const v = await r.json();
  assert.ok(v.success, `${method} ${path}: ${JSON.stringify(v.errors)}`);
  return v.result;
}

const dir = mkdtempSync(join(tmpdir(), "vantage-browser-"));
const { child, base } = await startVantage(join(dir, "data"));
const origin = await startOrigin();
let browser;
try {
  const [account] = await call(base, "GET", "/accounts");
  const zone = await call(base, "POST", "/zones", { name: "example.com", account: { id: account.id } });
  const monitor = await call(base, "POST", `/accounts/${account.id}/load_balancers/monitors`,
    { type: "http", expected_codes: "200", interval: 5, timeout: 1, retries: 0, description: "web" });
  const pool = await call(base, "POST", `/accounts/${account.id}/load_balancers/pools`,
    { name: "web", monitor: monitor.id, origins: [{ name: "web-1", address: "127.0.0.1", port: origin.port }] });
  const backup = await call(base, "POST", `/accounts/${account.id}/load_balancers/pools`,
    { name: "backup", origins: [{ name: "static-1", address: "192.0.2.80" }] });
  await call(base, "POST", `/zones/${zone.id}/load_balancers`,
    { name: "www.example.com", default_pools: [pool.id], fallback_pool: backup.id, proxied: true,
      rules: [{ name: "static", priority: 5, condition: 'starts_with(http.request.uri.path, "/static/")', overrides: { default_pools: [backup.id] } },
              { name: "down", condition: 'http.request.uri.path eq "/down"', fixed_response: { status_code: 503 }, priority: 0, disabled: true }] });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  await page.goto(base + "/");

  // A wrong token is refused, a right one signs in.
  await page.fill("#token", "not-a-valid-token-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
  await page.click("#signin button");
  await page.waitForSelector("#signin-error:has-text('not accepted')");
  await page.fill("#token", TOKEN);
  await page.click("#signin button");
  await page.waitForSelector('[data-pool="web"][data-state="Healthy"]', { timeout: 20000 });
  assert.equal(await page.locator('[data-lb="www.example.com"] .pool[data-pool="web"] .star').textContent(), "★");
  await page.waitForSelector("#live.on");
  // The rules, in evaluation order (priority 0 first), with what each does.
  const rules = await page.locator('[data-lb="www.example.com"] .rule').allTextContents();
  assert.equal(rules.length, 2);
  assert.match(rules[0], /^down .*answers 503.*disabled/);
  assert.match(rules[1], /^static starts_with\(http.request.uri.path, "\/static\/"\) → pools backup$/);
  await page.screenshot({ path: join(shots, "dashboard.png") });

  // The origins × regions grid, with the verdict per region.
  await page.click('[data-lb="www.example.com"] [data-pool="web"]');
  await page.waitForSelector('tr[data-origin="web-1"] td.up');
  const history = await (await fetch(`${base}/dashboard/v1/rtt/${pool.id}`, { headers: { Authorization: "Bearer " + TOKEN } })).json();
  assert.ok(history.result["web-1"].length >= 1, "the server keeps RTT history: " + JSON.stringify(history));
  await page.screenshot({ path: join(shots, "dashboard-grid.png") });

  // The origin dies: the page turns red by itself (the marker proves there was no reload),
  // the failure reason shows, the fallback takes the star, and the event appears.
  await page.evaluate(() => { window.noReload = true; });
  origin.kill();
  await page.waitForSelector('[data-lb="www.example.com"] [data-pool="web"][data-state="Critical"]', { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.noReload), true, "updated live, not reloaded");
  await page.waitForSelector('tr[data-origin="web-1"] td.down[title="TCP connection failed"]');
  await page.waitForSelector('#events li:has-text("web") .bad');
  assert.equal(await page.locator('[data-lb="www.example.com"] .pool[data-pool="backup"] .star').textContent(), "★");
  await page.screenshot({ path: join(shots, "dashboard-critical.png") });
  console.log("dashboard: sign-in, live red on origin death, event timeline — ok");
} finally {
  await browser?.close();
  child.kill("SIGTERM");
  origin.kill();
  rmSync(dir, { recursive: true, force: true });
}
