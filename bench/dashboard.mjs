// Opens the dashboard in headless Chromium with a token already in the session, five times,
// and prints how long the first render took: from navigation start, and for the state request
// plus rendering alone. Usage: node bench/dashboard.mjs BASE TOKEN
import { chromium } from "../tests/browser/node_modules/playwright-core/index.mjs";

const [base, token] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const runs = [];
for (let i = 0; i < 5; i++) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.addInitScript((t) => sessionStorage.setItem("vantage-token", t), token);
  await page.goto(base + "/");
  await page.waitForFunction(() => window.vantageRenderedAt !== undefined, null, { timeout: 30000 });
  const r = await page.evaluate(() => ({
    sinceNavigation: window.vantageRenderedAt,
    stateAndRender: window.vantageFirstRender,
    pools: document.querySelectorAll(".pool").length,
  }));
  runs.push(r);
  await page.close();
}
await browser.close();
const med = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[2];
console.log(`RESULT dashboard first_render_ms=${med("sinceNavigation").toFixed(0)} (goal <= 1000) state_and_render_ms=${med("stateAndRender").toFixed(0)} pool_rows=${runs[0].pools} runs=${runs.map((r) => r.sinceNavigation.toFixed(0)).join(",")}`);
