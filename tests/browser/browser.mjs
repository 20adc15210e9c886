// What every browser test here shares: Debian's Chromium, headless, and a failure that is
// reported on stderr and sets the exit code without stopping the checks that follow.
import { chromium } from "playwright-core";

export const fail = (message) => {
  console.error(`FAIL: ${message}`);
  process.exitCode = 1;
};

export const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
