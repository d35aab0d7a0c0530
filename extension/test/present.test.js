"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const present = require("../lib/present.js");

function localeMsg(lang) {
  const messages = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "_locales", lang, "messages.json"), "utf8"));
  // chrome.i18n.getMessage with named placeholders bound to $1, $2 …
  return (name, subs = []) => {
    const m = messages[name];
    if (!m) return "";
    return m.message.replace(/\$([A-Z_]+)\$/g, (_, p) => {
      const ph = m.placeholders[p.toLowerCase()];
      return subs[Number(ph.content.slice(1)) - 1];
    });
  };
}

test("invalid verdicts are shown by their cause", () => {
  const inv = (reasons) => present.stateOf({ status: "invalid", reasons });
  assert.equal(inv(["signature_invalid"]), "tampered");
  assert.equal(inv(["signature_ok", "content_mismatch"]), "mismatch");
  assert.equal(inv(["revoked_key"]), "revoked");
  assert.equal(inv(["unknown_key"]), "unknown");
  assert.equal(inv(["expired"]), "expired");
  assert.equal(inv(["malformed"]), "invalid");
  assert.equal(present.stateOf({ status: "verified" }), "verified");
  assert.equal(present.stateOf({ status: "something new" }), "unchecked");
  assert.equal(present.stateOf(null), "unchecked");
  assert.equal(present.toneOf("tampered"), "bad");
  assert.equal(present.toneOf("verified"), "ok");
});

test("GB 45438 explicit-label wording in Chinese, plain English otherwise", () => {
  const zh = localeMsg("zh_CN");
  const en = localeMsg("en");
  const cases = [
    [{ status: "verified", category: "confirmed" }, "人工智能生成·标识已验证", "AI-generated · label verified"],
    [{ status: "declared", category: "possible" }, "可能为人工智能生成·声明标识，未签名", "Possibly AI-generated · declared, unsigned"],
    [{ status: "declared", category: "suspected" }, "疑似人工智能生成·声明标识，未签名", "Suspected AI-generated · declared, unsigned"],
    [{ status: "invalid", category: null, reasons: ["signature_invalid"] }, "标识被篡改", "label tampered"],
    [{ status: "unchecked", reasons: ["server_unreachable"] }, "暂时无法核验", "could not be checked"],
    [{ status: "invalid", category: "confirmed", reasons: ["revoked_key"] }, "生成者密钥已吊销·人工智能生成",
      "producer key revoked · AI-generated"],
  ];
  for (const [result, zhText, enText] of cases) {
    assert.equal(present.wording(result, zh).short, zhText);
    assert.equal(present.wording(result, en).short, enText);
  }
  assert.equal(present.wording(cases[0][0], en).full, "labelcheck: AI-generated · label verified. Press for details.");
});

test("details list producer, filing, reasons and the receipt", () => {
  const rows = present.details({
    producer: { name: "acme", filing: "Beijing-123" }, reasons: ["signature_ok", "content_match"],
    receipt: { index: 0, leaf_hash: "abc=" },
  });
  assert.deepEqual(rows, [
    ["details_producer", "acme"], ["details_filing", "Beijing-123"],
    ["details_reasons", "signature_ok, content_match"],
    ["details_receipt_index", "0"], ["details_receipt_leaf", "abc="],
  ]);
  assert.deepEqual(present.details({ status: "unchecked" }), []);
});

test("unlabelled media the server could not fetch shows and counts as no label", () => {
  const failed = { status: "unverified", category: null, reasons: ["fetch_failed"], producer: null, claim_digest: null, signals: [] };
  assert.equal(present.stateOf(failed), "none");
  assert.equal(present.isLabelled(failed), false);
  // A claim whose bytes could not be fetched is still a label: signed, bytes not checked.
  const claimed = { status: "unverified", category: "confirmed", reasons: ["signature_ok", "fetch_failed"],
    producer: { name: "acme" }, claim_digest: "abc" };
  assert.equal(present.stateOf(claimed), "unverified");
  assert.equal(present.isLabelled(claimed), true);
});

test("a valid C2PA manifest is worded as signed, never as unsigned", () => {
  const en = localeMsg("en");
  const zh = localeMsg("zh_CN");
  const c2pa = { status: "declared", category: "confirmed", reasons: [], signals: [{ source: "c2pa", status: "valid" }] };
  assert.equal(present.stateOf(c2pa), "signed");
  assert.equal(present.wording(c2pa, en).short, "AI-generated · C2PA-signed, signer not trusted");
  assert.ok(!present.wording(c2pa, zh).short.includes("未签名"));
  const xmp = { status: "declared", category: "confirmed", signals: [{ source: "gb45438_xmp", status: "declared" }] };
  assert.equal(present.stateOf(xmp), "declared");
});

test("conflicts are flagged and listed in the details", () => {
  const r = { status: "declared", category: "confirmed", reasons: ["signals_conflict"], conflicts: ["c2pa says AI, iptc says not"] };
  assert.equal(present.hasConflict(r), true);
  assert.equal(present.hasConflict({ status: "verified", reasons: ["signature_ok"] }), false);
  assert.deepEqual(present.details(r).at(-1), ["details_conflict", "c2pa says AI, iptc says not"]);
});

test("the four failures have four distinct icons, none shared with verified", () => {
  const icons = ["tampered", "mismatch", "unknown", "revoked"].map(present.iconOf);
  assert.equal(new Set(icons).size, 4);
  assert.ok(!icons.includes(present.iconOf("verified")));
});

test("zh-CN joins badge parts with Chinese punctuation, never an ASCII colon", () => {
  const zh = localeMsg("zh_CN");
  assert.equal(zh("page_badge", ["本页面", "可能为人工智能生成·声明标识，未签名"]), "本页面：可能为人工智能生成·声明标识，未签名");
  for (const name of ["badge_short", "badge_short_bad", "page_badge"]) assert.ok(!/[:;] /.test(zh(name, ["甲", "乙"])), name);
  assert.equal(localeMsg("en")("page_badge", ["This page", "x"]), "This page: x");
});

test("the details say whether the receipt checked, and a failure blames the ledger, not the media", () => {
  const en = localeMsg("en");
  const zh = localeMsg("zh_CN");
  const base = { status: "verified", category: "confirmed", reasons: ["signature_ok", "content_match"],
    receipt: { index: 4, leaf_hash: "abc=" } };
  const ok = Object.assign({ receipt_check: { ok: true, size: 9, key_id: "log+01020304" } }, base);
  assert.deepEqual(present.receiptCheck(ok, en), { state: "ok",
    text: "checked: the entry is in the ledger's signed checkpoint of 9 entries (key log+01020304)" });
  assert.deepEqual(present.details(ok, en).at(-1), ["details_receipt_check", present.receiptCheck(ok, en).text]);
  const bad = Object.assign({ receipt_check: { ok: false, code: "bad_proof" } }, base);
  const text = present.receiptCheck(bad, en).text;
  assert.match(text, /does NOT check: the inclusion proof/);
  assert.match(text, /problem with the server's ledger, not with the media/);
  assert.match(present.receiptCheck(bad, zh).text, /服务器账本的问题/);
  assert.equal(present.stateOf(bad), "verified"); // the media's verdict is not turned by the ledger's problem
  const changed = Object.assign({ receipt_check: { ok: false, code: "key_changed" } }, base);
  assert.match(present.receiptCheck(changed, en).text, /ledger key other than the one pinned/);
  const odd = Object.assign({ receipt_check: { ok: false, code: "something new" } }, base);
  assert.match(present.receiptCheck(odd, en).text, /malformed or missing/);
  assert.deepEqual(present.receiptCheck(Object.assign({ receipt_check: { ok: null, code: "no_ed25519" } }, base), en),
    { state: "unchecked", text: "receipt not checked (browser lacks Ed25519)" });
  assert.equal(present.receiptCheck(Object.assign({ receipt_check: { ok: null, code: "no_key" } }, base), en).state, "unchecked");
  assert.equal(present.receiptCheck(base, en), null);
  assert.ok(!present.details(base, en).some(([n]) => n === "details_receipt_check"));
});

test("a registry match names its producer: similar is never verified, exact reads as verified", () => {
  const en = localeMsg("en");
  const zh = localeMsg("zh_CN");
  const producer = { name: "Acme AI", key_id: "acme+01020304" };
  const registry = { match: "similar", distance: 12, claim_id: "c-1", claim_digest: "d", key_id: "acme+01020304",
    producer, entry: 7 };
  const similar = { status: "declared", category: "confirmed", reasons: ["registry_similar"], producer, distance: 12, registry };
  assert.equal(present.stateOf(similar), "similar");
  assert.equal(present.toneOf("similar"), "warn");
  assert.equal(present.wording(similar, en).short,
    "AI-generated · Matches a label registered by Acme AI, visually similar (not the same file)");
  assert.equal(present.wording(similar, zh).short, "人工智能生成·与 Acme AI 登记的标识视觉相似（非同一文件）");
  for (const text of [present.wording(similar, en).full, present.wording(similar, zh).full]) {
    assert.ok(!/verified|已验证/.test(text), text);
  }
  // A claim for other bytes that matches its media perceptually: re-encoded, not tampered.
  for (const status of ["declared", "invalid"]) {
    const reencoded = Object.assign({}, similar, { status, reasons: ["signature_ok", "content_mismatch", "registry_similar"] });
    assert.equal(present.stateOf(reencoded), "similar");
    assert.ok(!/tampered|other content/.test(present.wording(reencoded, en).short));
  }
  // The producer from the registry object when the result has none.
  assert.match(present.wording(Object.assign({}, similar, { producer: null }), en).short, /registered by Acme AI/);
  const rows = present.details(similar, en);
  assert.deepEqual(rows.find(([n]) => n === "details_distance"), ["details_distance", "12 of 256 bits differ (PDQ)"]);
  assert.deepEqual(present.details(similar).find(([n]) => n === "details_distance"), ["details_distance", "12/256"]);
  assert.deepEqual(rows.find(([n]) => n === "details_registry_claim"), ["details_registry_claim", "c-1"]);

  const exact = { status: "verified", category: "possible", reasons: ["registry_exact"], producer,
    registry: Object.assign({}, registry, { match: "exact", distance: 0 }) };
  assert.equal(present.stateOf(exact), "registered");
  assert.equal(present.toneOf("registered"), "ok");
  assert.equal(present.iconOf("registered"), present.iconOf("verified"));
  assert.equal(present.wording(exact, en).short, "Possibly AI-generated · Label found in the registry: Acme AI");
  assert.equal(present.wording(exact, zh).short, "可能为人工智能生成·在登记库中找到标识：Acme AI");
  assert.equal(present.isLabelled(exact), true);
});
