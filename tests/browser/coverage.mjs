// Opens the coverage map (数字图谱) in headless Chromium as an organisation department's staff
// member would: token, purpose and as-of date, then the charts, the table, a drill-down from
// the group with the most RED persons to its list, every warning list, and the English view.
// Prints what the page shows as JSON (the test compares it with GetCoverage) and keeps a
// screenshot of each view in OUTDIR.
// Usage: node coverage.mjs URL TOKEN PURPOSE AS_OF OUTDIR
import { fail, launch } from "./browser.mjs";

const [url, token, purpose, asOf, outdir] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  if ((await page.locator("html").getAttribute("lang")) !== "zh-CN") fail("the page is not zh-CN");
  await page.fill("#token", token);
  await page.fill("#purpose", purpose);
  await page.fill("#as-of", asOf);
  await page.click("#show");
  await page.locator("#groups tbody tr").first().waitFor({ timeout: 15000 });
  const loaded = (key, list) =>
    page.waitForSelector(`#warnings-section[data-loaded="${key}/${list}"]`, { timeout: 15000 });
  await loaded("*", "red");

  const groups = await page.$$eval("#groups tbody tr", (rows) =>
    rows.map((tr) => {
      const out = { key: tr.dataset.group };
      for (const td of tr.querySelectorAll("td.num")) {
        const name = [...td.classList].find((c) => c !== "num");
        out[name] = Number(td.dataset.value);
        out[name + "_text"] = td.textContent;
      }
      return out;
    }),
  );
  const totals = await page.$$eval("#totals [data-figure]", (nodes) =>
    Object.fromEntries(nodes.map((n) => [n.dataset.figure, Number(n.dataset.value)])),
  );
  const charts = {
    bars: await page.locator("#bars rect").count(),
    trend_lines: await page.locator("#trend polyline").count(),
    trend_points: await page.locator("#trend circle").count(),
    light_bars: await page.locator("#lights rect").count(),
  };
  const about = await page.locator("#about").innerText();
  if (!about.includes(asOf)) fail(`the page does not say its as-of date: ${about}`);
  await page.screenshot({ path: `${outdir}/coverage-map.png`, fullPage: true });

  // Drill down from the group with the most RED persons to its list.
  const worst = groups.reduce((a, b) => (b.red > a.red ? b : a));
  await page.locator(`#groups tr[data-group="${worst.key}"] a.drill`).click();
  await loaded(worst.key, "red");
  const persons = await page.$$eval("#warnings tbody tr", (rows) => rows.map((r) => r.dataset.person));
  const reasonZh = await page.locator("#warnings tbody tr td.reason").first().innerText();
  if (!reasonZh.includes("未参加脱产")) fail(`the reason is not in Chinese: ${reasonZh}`);
  await page.screenshot({ path: `${outdir}/coverage-drill-down.png`, fullPage: true });

  // Each warning list of that group.
  const lists = {};
  for (const list of ["behind", "remedial", "long-training", "red"]) {
    await page.locator(`#tabs button[data-list="${list}"]`).click();
    await loaded(worst.key, list);
    lists[list] = await page.$$eval("#warnings tbody tr", (rows) => rows.map((r) => r.dataset.person));
    await page.screenshot({ path: `${outdir}/coverage-list-${list}.png`, fullPage: true });
  }

  // The English view.
  await page.click("#lang");
  const title = await page.locator("#title").innerText();
  if (!title.includes("coverage map")) fail(`English title: ${title}`);
  const reasonEn = await page.locator("#warnings tbody tr td.reason").first().innerText();
  if (!reasonEn.startsWith("no off-job")) fail(`the reason is not in English: ${reasonEn}`);
  await page.screenshot({ path: `${outdir}/coverage-map-en.png`, fullPage: true });
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ groups, totals, charts, drill: { group: worst.key, persons }, lists }));
} finally {
  await browser.close();
}
