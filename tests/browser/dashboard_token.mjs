// The dashboard of a hub with principals: it asks for a token, refuses one without
// health:read, and shows the connectors once given one that has it.
// Usage: node dashboard_token.mjs URL WRONG_TOKEN TOKEN
import { fail, launch } from "./browser.mjs";

const [url, wrong, token] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(url);
  const login = page.locator("#login");
  await login.waitFor({ state: "visible", timeout: 15000 });
  const why = async () => (await page.locator("#login-why").innerText()).trim();
  if ((await why()) !== "this hub needs a token") fail(`asked with "${await why()}"`);
  await page.fill("#token", wrong);
  await page.click("#login button");
  await page.waitForFunction(
    () => document.querySelector("#login-why").textContent === "this token lacks health:read",
    null,
    { timeout: 15000 },
  );
  await page.fill("#token", token);
  await page.click("#login button");
  await login.waitFor({ state: "hidden", timeout: 15000 });
  await page.waitForFunction(
    () => !document.querySelector("#instance").textContent.includes("…"),
    null,
    { timeout: 15000 },
  );
  console.log(`dashboard shown for ${await page.locator("#instance").innerText()}`);
} catch (e) {
  fail(String(e));
} finally {
  await browser.close();
}
