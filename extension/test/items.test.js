"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const items = require("../lib/items.js");
const { claimFor } = require("./helpers.js");

const PAGE = "https://news.example/post/1?utm=private#c";

test("the claim's text (the attribute as written) keys the item when given", () => {
  const env = claimFor("https://news.example/a.png");
  const table = new items.KeyTable();
  const a = items.mediaItem({ envelope: env, claimText: "abc", mediaUrl: "https://news.example/a.png" }, PAGE, { keys: table });
  const b = items.mediaItem({ envelope: env, claimText: "abc", mediaUrl: "https://news.example/a.png" }, PAGE, { keys: table });
  const c = items.mediaItem({ envelope: env, claimText: "abd", mediaUrl: "https://news.example/a.png" }, PAGE, { keys: table });
  assert.equal(a.key, b.key);
  assert.notEqual(a.key, c.key);
});

test("a claimed item carries the claim, the media URL and only the page origin", () => {
  const env = claimFor("https://news.example/a.png");
  const { key, item } = items.mediaItem({ envelope: env, mediaUrl: "https://news.example/a.png" }, PAGE);
  assert.deepEqual(item, { claim: env, media_url: "https://news.example/a.png", page_url: "https://news.example" });
  assert.equal(typeof key, "string");
  assert.ok(!JSON.stringify(item).includes("utm=private"));
});

test("unlabelled media never leaves the browser unless the viewer asked", () => {
  const found = { mediaUrl: "https://news.example/plain.png" };
  assert.equal(items.mediaItem(found, PAGE), null);
  assert.equal(items.mediaItem(found, PAGE, { checkUnlabelled: false }), null);
  const { item } = items.mediaItem(found, PAGE, { checkUnlabelled: true });
  assert.deepEqual(item, { media_url: "https://news.example/plain.png", page_url: "https://news.example" });
  assert.equal(items.mediaItem({ mediaUrl: "blob:https://news.example/1" }, PAGE, { checkUnlabelled: true }), null);
  assert.equal(items.mediaItem({ mediaUrl: null }, PAGE, { checkUnlabelled: true }), null);
});

test("a claim on a data: or blob: image is sent without a media URL", () => {
  const env = claimFor("https://news.example/a.png");
  const { item } = items.mediaItem({ envelope: env, mediaUrl: "data:image/png;base64,AAAA" }, PAGE);
  assert.equal(item.media_url, undefined);
});

test("the page meta item holds the raw meta content and the origin", () => {
  const { item, key } = items.pageMetaItem({ content: '{"Label":"1"}' }, PAGE);
  assert.deepEqual(item, { signals: { meta: '{"Label":"1"}' }, page_url: "https://news.example" });
  assert.notEqual(key, items.pageMetaItem({ content: '{"Label":"2"}' }, PAGE).key);
});

test("cache keys: same claim and URL agree; any difference separates", () => {
  const a = claimFor("https://news.example/a.png");
  const b = claimFor("https://news.example/b.png");
  const k = (env, url) => items.cacheKey({ envelope: env, mediaUrl: url });
  assert.equal(k(a, "u1"), k(JSON.parse(JSON.stringify(a)), "u1"));
  assert.notEqual(k(a, "u1"), k(a, "u2"));
  assert.notEqual(k(a, "u1"), k(b, "u1"));
  assert.notEqual(k(a, "u1"), k(null, "u1"));
  const table = new items.KeyTable();
  const keys = new Set();
  for (let i = 0; i < 5000; i++) keys.add(table.key(`claim-${i}`));
  assert.equal(keys.size, 5000);
  assert.equal(table.key("claim-7"), table.key("claim-7"));
  assert.ok([...keys].every((k) => k.length < 8)); // short keys keep messages small
});

test("batches never exceed 100 items and keep order", () => {
  const list = Array.from({ length: 1001 }, (_, i) => i);
  const batches = items.chunk(list);
  assert.equal(batches.length, 11);
  assert.ok(batches.every((b) => b.length <= 100));
  assert.deepEqual(batches.flat(), list);
  assert.deepEqual(items.chunk([]), []);
  assert.deepEqual(items.chunk([1, 2, 3], 2), [[1, 2], [3]]);
  assert.throws(() => items.chunk([1], 0), RangeError);
});

test("back-off doubles from the base up to the cap, with half jitter", () => {
  const lo = { random: () => 0 };
  const hi = { random: () => 1 };
  assert.equal(items.backoff(0, lo), 500);
  assert.equal(items.backoff(0, hi), 1000);
  assert.equal(items.backoff(3, hi), 8000);
  assert.equal(items.backoff(20, hi), 60000);
  assert.equal(items.backoff(20, lo), 30000);
});

test("could-not-check results have the verdict shape", () => {
  assert.deepEqual(items.uncheckedResult("server_unreachable"),
    { status: "unchecked", category: null, reasons: ["server_unreachable"], producer: null, receipt: null });
});

test("the session cache digest covers claim, media URL and signals exactly", async () => {
  const { webcrypto } = require("node:crypto");
  const a = claimFor("https://news.example/a.png");
  const d = (item) => items.itemDigest(item, webcrypto.subtle);
  const base = await d({ claim: a, media_url: "u1" });
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(await d({ claim: JSON.parse(JSON.stringify(a)), media_url: "u1" }), base);
  const tampered = JSON.parse(JSON.stringify(a));
  tampered.payload = tampered.payload.slice(0, -4) + "AAAA"; // same signature, other payload
  assert.notEqual(await d({ claim: tampered, media_url: "u1" }), base);
  assert.notEqual(await d({ claim: a, media_url: "u2" }), base);
  assert.notEqual(await d({ claim: a, media_url: "u1", signals: { meta: "x" } }), base);
  // page_url is not part of what is checked: the same claim on another site shares the verdict
  assert.equal(await d({ claim: a, media_url: "u1", page_url: "https://other.example" }), base);
  // Bytes hashed in the page are part of the question: other bytes, another verdict.
  const h1 = await d({ claim: a, media_url: "u1", content_sha256: "1".repeat(64) });
  assert.notEqual(h1, base);
  assert.notEqual(await d({ claim: a, media_url: "u1", content_sha256: "2".repeat(64) }), h1);
});

test("an attribute claim left undecoded by the page is decoded by the worker, keyed as before", () => {
  const discover = require("../lib/discover.js");
  const { h } = require("./fakedom.js");
  const { attrValue } = require("./helpers.js");
  const env = claimFor("https://news.example/a.png");
  const text = attrValue(env);
  const doc = h("html", {}, h("img", { src: "/a.png", "data-labelcheck-claim": text }),
    h("img", { src: "/b.png", "data-labelcheck-claim": "bm90LWpzb24" }));
  const index = new discover.ClaimIndex(PAGE);
  const [good, bad] = discover.mediaUnder(doc).map((el) => discover.examine(el, index, { deferAttribute: true }));
  assert.equal(good.envelope, undefined);
  assert.equal(good.claimAttr, text);
  assert.equal(bad.error, undefined); // not decoded on the page

  const table = new items.KeyTable();
  const lazy = items.mediaItem(good, PAGE, { keys: table });
  const eager = items.mediaItem(discover.examine(good.el, index), PAGE, { keys: table });
  assert.equal(lazy.key, eager.key);
  assert.equal(lazy.item.claim, undefined);

  // The worker's side: the same item as an eagerly decoded one.
  items.claimEntry(lazy, discover.parseAttributeClaim);
  assert.deepEqual(lazy.item, eager.item);
  assert.deepEqual(Object.keys(lazy.item), Object.keys(eager.item));
  assert.equal(lazy.claimAttr, undefined);
  assert.equal(lazy.local, undefined);

  // A malformed one gets the same local verdict the page used to give.
  const broken = items.claimEntry(items.mediaItem(bad, PAGE, { keys: table }), discover.parseAttributeClaim);
  assert.deepEqual(broken.local, { status: "invalid", category: null, reasons: ["malformed"], producer: null, receipt: null });
  assert.equal(broken.item.claim, undefined);
  // Entries without an undecoded claim pass through untouched.
  const plain = { key: "k", item: { media_url: "https://news.example/x.png" } };
  assert.deepEqual(items.claimEntry(plain, discover.parseAttributeClaim), { key: "k", item: { media_url: "https://news.example/x.png" } });
});

test("entries cross to the worker packed in one string, and malformed messages give none", () => {
  const entries = [{ key: "k0", kind: "media", labelled: true, claimAttr: "eyJh", item: { media_url: "https://news.example/a.png", page_url: "https://news.example" } },
    { key: "k1", kind: "page", item: { signals: { meta: "{\"Label\":\"1\"}" } } }];
  const message = { type: "verify", data: items.packEntries(entries) };
  assert.equal(typeof message.data, "string");
  assert.deepEqual(items.unpackEntries(message), entries);
  // The unpacked form (older senders) still works.
  assert.deepEqual(items.unpackEntries({ type: "verify", entries }), entries);
  assert.deepEqual(items.unpackEntries({ type: "verify", data: "{not json" }), []);
  assert.deepEqual(items.unpackEntries({ type: "verify", data: "{\"key\":\"k\"}" }), []);
  assert.deepEqual(items.unpackEntries({ type: "verify" }), []);
  assert.deepEqual(items.unpackEntries(null), []);
});

test("many claims under one media URL keep distinct, stable keys (and parts never collide by joining)", () => {
  const table = new items.KeyTable();
  const first = [];
  for (let i = 0; i < 40; i++) first.push(table.key(`claim-${i}`, "-", "https://news.example/same.png"));
  assert.equal(new Set(first).size, 40);
  for (let i = 0; i < 40; i++) assert.equal(table.key(`claim-${i}`, "-", "https://news.example/same.png"), first[i]);
  assert.notEqual(table.key("a\u0000b", "c", "https://news.example/same.png"),
    table.key("a", "b\u0000c", "https://news.example/same.png"));
  assert.notEqual(table.key("claim-0", "-", "https://news.example/other.png"), first[0]);
});
