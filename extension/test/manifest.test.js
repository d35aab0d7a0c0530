"use strict";
/* The unpacked extension is complete and consistent: every file the manifest
 * names exists, both locales define the same messages, and every message the
 * code asks for exists. */
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "manifest.json"), "utf8"));
const locale = (l) => JSON.parse(fs.readFileSync(path.join(ROOT, "_locales", l, "messages.json"), "utf8"));

test("every file named by the manifest exists", () => {
  const files = [
    manifest.background.service_worker, ...manifest.background.scripts,
    ...manifest.content_scripts.flatMap((c) => c.js), ...Object.values(manifest.icons),
    manifest.action.default_popup, manifest.options_ui.page, ...Object.values(manifest.action.default_icon),
  ];
  for (const f of files) assert.ok(fs.existsSync(path.join(ROOT, f)), f);
});

test("one tree for both browsers: service worker, scripts, gecko id", () => {
  assert.equal(manifest.manifest_version, 3);
  assert.equal(manifest.background.scripts.at(-1), manifest.background.service_worker);
  assert.match(manifest.browser_specific_settings.gecko.id, /@/);
  // Libraries load before the scripts that use them.
  const cs = manifest.content_scripts[0].js;
  assert.ok(cs.indexOf("lib/discover.js") > cs.indexOf("lib/urls.js"));
  assert.equal(cs.at(-1), "content.js");
  assert.ok(!manifest.host_permissions.includes("<all_urls>"));
});

test("en and zh_CN define the same messages, with the GB 45438 wording", () => {
  const en = locale("en");
  const zh = locale("zh_CN");
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  assert.equal(zh.category_confirmed.message, "人工智能生成");
  assert.equal(zh.category_possible.message, "可能为人工智能生成");
  assert.equal(zh.category_suspected.message, "疑似人工智能生成");
});

test("every message the code uses is defined", () => {
  const en = locale("en");
  const sources = ["badge.js", "content.js", "background.js", "lib/present.js", "popup/popup.js", "popup/popup.html",
    "options/options.js", "options/options.html", "receipts.js", "manifest.json"].map((f) => fs.readFileSync(path.join(ROOT, f), "utf8"));
  const names = new Set();
  for (const src of sources) {
    for (const m of src.matchAll(/(?:getMessage\(|msg\(|data-i18n=)["'`]([a-z_A-Z]+)["'`]/g)) names.add(m[1]);
    for (const m of src.matchAll(/__MSG_([A-Za-z_]+)__/g)) names.add(m[1]);
  }
  for (const state of ["verified", "unverified", "declared", "tampered", "mismatch", "revoked", "unknown", "expired", "invalid", "unchecked", "none"]) {
    names.add(`state_${state}`);
  }
  assert.ok(names.size > 20);
  for (const n of names) assert.ok(en[n], `message ${n} is missing`);
});
