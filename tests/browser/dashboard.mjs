// Opens the sync-health dashboard in headless Chromium while records flow and checks what an
// operator must see: connector rows, counters that grow, a dead letter's reason.
// Usage: node dashboard.mjs URL CONNECTOR REASON SCREENSHOT [XAPI_CONNECTOR STATEMENTS]
// (with the last two: that xAPI source's row shows that many statements)
import { fail, launch } from "./browser.mjs";

const [url, connector, reason, screenshot, xapiConnector, statements] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  const row = page.locator(`#connectors tr[data-connector="${connector}"]`);
  await row.waitFor({ timeout: 15000 });
  const received = async () => Number(await row.locator("td.received").innerText());
  const first = await received();
  // Counters update live (the page polls once a second) while records keep arriving.
  let later = first;
  for (let i = 0; i < 30 && later <= first; i++) {
    await page.waitForTimeout(500);
    later = await received();
  }
  if (!(later > first)) fail(`received stayed at ${first}`);
  const state = await row.locator("td.state-cell").innerText();
  if (state.trim() !== "running") fail(`state is ${state}`);
  const dead = page.locator(`#dead-letters tr[data-reason="${reason}"]`);
  await dead.waitFor({ timeout: 15000 });
  const newest = await page.locator("#newest tbody").innerText();
  if (!newest.includes(reason)) fail(`newest dead letters lack ${reason}`);
  if (xapiConnector) {
    const xapiRow = page.locator(`#connectors tr[data-connector="${xapiConnector}"]`);
    await xapiRow.waitFor({ timeout: 15000 });
    const shown = (await xapiRow.locator("td.statements").innerText()).trim();
    if (shown !== statements) fail(`${xapiConnector} shows ${shown} statements, not ${statements}`);
  }
  const rows = await page.locator("#connectors tbody tr").count();
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ connector, first, later, state: state.trim(), rows, reason }));
} finally {
  await browser.close();
}
