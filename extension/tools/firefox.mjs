// Runs the extension in Debian's firefox-esr over WebDriver BiDi
// (puppeteer-core, browser "firefox"; it never downloads a browser) against
// a labelcheck server: installs the add-on temporarily (BiDi
// webExtension.install), opens demo pages and prints one JSON line:
// {case: [{status, category, state, label, media}]}.
//
// BiDi may not navigate to moz-extension: pages, so the options page cannot
// set the server: EXTENSION_DIR must be a copy whose default server is
// SERVER_URL (tests/test_extension_firefox.py makes one).
//
// node tools/firefox.mjs SERVER_URL CASE[:COUNT]... (FIREFOX overrides the binary;
// SLOW_MEDIA=TEXT[,TEXT...] holds back every request whose URL holds one of
// them for 1.5 s, as a slow network would)
import puppeteer from "puppeteer-core";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [server, ...cases] = process.argv.slice(2);
const extension = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  extraPrefsFirefox: {
    // MV3 host access is opt-in in Firefox; a test profile grants it at install.
    "extensions.originControls.grantByDefault": true,
    "network.proxy.type": 0,
  },
});
const out = {};
try {
  await browser.installExtension(process.env.EXTENSION_DIR || extension);
  const page = await browser.newPage();
  if (process.env.SLOW_MEDIA) {
    const slow = process.env.SLOW_MEDIA.split(",");
    await page.setRequestInterception(true);
    page.on("request", (request) => {
      if (request.isInterceptResolutionHandled()) return;
      const later = slow.some((text) => request.url().includes(text)) ? 1500 : 0;
      setTimeout(() => request.continue(), later);
    });
  }
  for (const spec of cases) {
    const [name, count] = spec.split(":");
    out.at = name; // named in the error when this case times out
    await page.goto(`${server}/demo/${name}`);
    await page.waitForFunction(
      (n) => document.querySelectorAll("labelcheck-badge:not([data-scope=page]):not([status=unchecked])").length >= n,
      { timeout: 60000, polling: 250 }, Number(count || 1));
    out[name] = await page.evaluate(() => [...document.querySelectorAll("labelcheck-badge:not([data-scope=page])")]
      .map((b) => ({ status: b.getAttribute("status"), category: b.getAttribute("category"),
        state: b.getAttribute("data-state"), label: b.getAttribute("data-label"),
        media: b.nextElementSibling && (b.nextElementSibling.id ||
          (b.nextElementSibling.querySelector("img") || {}).id || null) })));
  }
  delete out.at;
} catch (e) {
  out.error = `case ${out.at}: ` + String(e && e.stack || e);
  out.snapshot = await snapshot().catch((e2) => String(e2));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

// What the page showed when a case timed out: each badge (status, scope, the
// media after it) and each image (id, loaded, the end of its URL).
async function snapshot() {
  const page = (await browser.pages()).at(-1);
  return page.evaluate(() => ({
    badges: [...document.querySelectorAll("labelcheck-badge")].map((b) => [b.getAttribute("status"),
      b.getAttribute("data-scope"), b.nextElementSibling && (b.nextElementSibling.id ||
        (b.nextElementSibling.querySelector("img") || {}).id || null)]),
    images: [...document.images].map((i) => [i.id, i.complete, i.currentSrc.slice(-24)]),
  }));
}
