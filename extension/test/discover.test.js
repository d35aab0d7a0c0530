"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const discover = require("../lib/discover.js");
const { h } = require("./fakedom.js");
const { envelope, claimFor, attrValue } = require("./helpers.js");

const PAGE = "https://news.example/post/1";
const scriptTag = (content, attrs = {}) =>
  h("script", Object.assign({ type: discover.CLAIM_TYPE }, attrs), JSON.stringify(content));

function scan(doc) {
  return discover.scan(doc, new discover.ClaimIndex(PAGE));
}

test("the data attribute is found on img, video and audio, with or without padding", () => {
  const a = claimFor("https://news.example/a.png");
  const b = claimFor("https://news.example/b.mp4");
  const c = claimFor("https://news.example/c.mp3x"); // length chosen so padding differs
  const doc = h("html", {},
    h("img", { src: "/a.png", "data-labelcheck-claim": attrValue(a) }),
    h("video", { src: "/b.mp4", "data-labelcheck-claim": attrValue(b, { padded: true }) }),
    h("audio", { src: "/c.mp3x", "data-labelcheck-claim": attrValue(c) }),
    h("img", { src: "/plain.png" }));
  const found = scan(doc);
  assert.equal(found.length, 4);
  assert.deepEqual(found.map((f) => f.source), ["attribute", "attribute", "attribute", null]);
  assert.deepEqual(found[0].envelope, a);
  assert.deepEqual(found[1].envelope, b);
  assert.deepEqual(found[2].envelope, c);
  assert.equal(found[0].mediaUrl, "https://news.example/a.png");
  assert.equal(found[3].envelope, undefined);
});

test("the attribute on a <picture> applies to its img", () => {
  const env = claimFor("https://news.example/p.jpg");
  const img = h("img", { src: "/p.jpg" });
  const doc = h("html", {}, h("picture", { "data-labelcheck-claim": attrValue(env) }, h("source", { srcset: "/p.avif" }), img));
  const [found] = scan(doc);
  assert.equal(found.el, img);
  assert.deepEqual(found.envelope, env);
});

test("a malformed attribute is reported, never sent as a claim", () => {
  const doc = h("html", {},
    h("img", { src: "/x.png", "data-labelcheck-claim": "not base64!!" }),
    h("img", { src: "/y.png", "data-labelcheck-claim": attrValue({ hello: "world" }) }));
  const found = scan(doc);
  assert.deepEqual(found.map((f) => f.error), ["malformed", "malformed"]);
  assert.ok(found.every((f) => f.envelope === undefined));
});

test("claim scripts match media by content.url against currentSrc, srcset, <source> and poster", () => {
  const claims = [
    claimFor("https://news.example/img/big.png"), // srcset 2x candidate
    claimFor("/img/wide.avif"), // relative content.url, <picture><source>
    claimFor("poster.jpg"), // relative to the page: /post/poster.jpg
    claimFor("https://news.example/clip.mp4"), // <video><source>
    claimFor("https://elsewhere.example/none.png"), // not on this page
  ];
  const img = h("img", { src: "/img/small.png", srcset: "/img/small.png 1x, /img/big.png 2x" });
  const picImg = h("img", { src: "/img/fallback.jpg" });
  const video1 = h("video", { poster: "poster.jpg" });
  const video2 = h("video", {}, h("source", { src: "/clip.mp4", type: "video/mp4" }));
  const doc = h("html", {}, h("head", {}, scriptTag(claims)),
    h("body", {}, img, h("picture", {}, h("source", { srcset: "/img/wide.avif 2x" }), picImg), video1, video2));
  const found = scan(doc);
  const by = new Map(found.map((f) => [f.el, f]));
  assert.deepEqual(by.get(img).envelope, claims[0]);
  assert.equal(by.get(img).mediaUrl, "https://news.example/img/big.png");
  assert.deepEqual(by.get(picImg).envelope, claims[1]);
  assert.deepEqual(by.get(video1).envelope, claims[2]);
  assert.equal(by.get(video1).mediaUrl, "https://news.example/post/poster.jpg");
  assert.deepEqual(by.get(video2).envelope, claims[3]);
  assert.ok(found.every((f) => f.source === "script-url"));
});

test("currentSrc chosen by the browser matches too", () => {
  const env = claimFor("https://news.example/chosen.png");
  const img = h("img", { src: "/other.png" });
  img.currentSrc = "https://news.example/chosen.png";
  const doc = h("html", {}, scriptTag(env), img);
  const [found] = scan(doc);
  assert.deepEqual(found.envelope, env);
});

test("data-labelcheck-for matches by element id, ahead of any URL", () => {
  const byId = claimFor("https://cdn.example/whatever.png");
  const byUrl = claimFor("https://news.example/hero.png");
  const img = h("img", { id: "hero", src: "/hero.png" });
  const doc = h("html", {}, scriptTag(byId, { "data-labelcheck-for": "hero" }), scriptTag(byUrl), img);
  const [found] = scan(doc);
  assert.equal(found.source, "script-for");
  assert.deepEqual(found.envelope, byId);
});

test("the attribute wins over claim scripts", () => {
  const attrClaim = claimFor("https://news.example/a.png", { id: "attr" });
  const img = h("img", { id: "a", src: "/a.png", "data-labelcheck-claim": attrValue(attrClaim) });
  const doc = h("html", {}, scriptTag(claimFor("https://news.example/a.png"), {}), img);
  assert.deepEqual(scan(doc)[0].envelope, attrClaim);
});

test("broken claim scripts are counted, good entries in an array still count", () => {
  const good = claimFor("https://news.example/g.png");
  const idx = new discover.ClaimIndex(PAGE);
  const doc = h("html", {},
    h("script", { type: discover.CLAIM_TYPE }, "{not json"),
    scriptTag([good, { nope: 1 }]),
    h("script", { type: "application/json" }, JSON.stringify(claimFor("https://news.example/ignored.png"))),
    h("img", { src: "/g.png" }), h("img", { src: "/ignored.png" }));
  const found = discover.scan(doc, idx);
  assert.equal(idx.malformed, 2);
  assert.deepEqual(found[0].envelope, good);
  assert.equal(found[1].envelope, undefined);
});

test("scripts added later are indexed once and return what they add", () => {
  const idx = new discover.ClaimIndex(PAGE);
  const s = scriptTag([claimFor("/late.png"), claimFor("/late2.png")]);
  const added = idx.addScript(s);
  assert.deepEqual(added.map((r) => r.url), ["https://news.example/late.png", "https://news.example/late2.png"]);
  assert.deepEqual(idx.addScript(s), []);
});

test("payloads that are not base64 JSON have no URL and match nothing", () => {
  const idx = new discover.ClaimIndex(PAGE);
  const bad = { payloadType: discover.CLAIM_TYPE, payload: "%%%", signatures: [] };
  const [rec] = idx.addScript(scriptTag(bad));
  assert.equal(rec.url, null);
  assert.equal(discover.payloadOf(envelope("just a string")), null);
});

test("the AIGC meta tag: inner object and {AIGC:{…}} wrapper", () => {
  const inner = { Label: "1", ContentProducer: "acme", ProduceID: "p1" };
  assert.deepEqual(discover.parseAigcMeta(JSON.stringify(inner)), { label: inner });
  assert.deepEqual(discover.parseAigcMeta(JSON.stringify({ AIGC: inner })), { label: inner });
  assert.deepEqual(discover.parseAigcMeta("{oops"), { error: "malformed" });
  assert.deepEqual(discover.parseAigcMeta('{"ContentProducer":"x"}'), { error: "malformed" });
  assert.deepEqual(discover.parseAigcMeta("[1]"), { error: "malformed" });
  const doc = h("html", {}, h("head", {},
    h("meta", { name: "description", content: "x" }),
    h("meta", { name: "aigc", content: JSON.stringify({ AIGC: { Label: "3" } }) })));
  const metas = discover.findPageMeta(doc);
  assert.equal(metas.length, 1);
  assert.equal(discover.categoryOf(metas[0].label.Label), "suspected");
  assert.equal(discover.categoryOf("2"), "possible");
  assert.equal(discover.categoryOf("9"), null);
});

test("mediaUnder finds media at or below a node, and a picture's img", () => {
  const img = h("img", { src: "/a.png" });
  const pic = h("picture", {}, h("img", { src: "/b.png" }));
  const div = h("div", {}, img, pic, h("video", {}));
  assert.deepEqual(discover.mediaUnder(img), [img]);
  assert.deepEqual(discover.mediaUnder(pic), [pic.children[0]]);
  assert.equal(discover.mediaUnder(div).length, 3);
});

test("an image matches claims by the candidate it shows (currentSrc), never a fallback", () => {
  const png = claimFor("https://news.example/fallback.png");
  const doc = h("body", {}, h("script", { type: "application/vnd.labelcheck.claim+json" }, JSON.stringify(png)),
    h("picture", {}, h("source", { srcset: "/shown.webp", type: "image/webp" }), h("img", { id: "p", src: "/fallback.png" })));
  const img = doc.getElementById("p");
  const index = new discover.ClaimIndex("https://news.example/a");
  index.addAll(doc);
  // Nothing chosen yet: the fallback is one of the candidates.
  assert.equal(discover.examine(img, index).source, "script-url");
  img.currentSrc = "https://news.example/shown.webp";
  const found = discover.examine(img, index);
  assert.equal(found.source, null);
  assert.equal(found.mediaUrl, "https://news.example/shown.webp");
});

test("an element shown through background-image with a claim attribute is media", () => {
  const env = claimFor("https://news.example/bg.png");
  const box = h("div", { id: "hero", "data-labelcheck-claim": attrValue(env) });
  const doc = h("body", {}, box, h("div", { id: "plain" }));
  assert.deepEqual(discover.mediaUnder(doc).map((e) => e.id), ["hero"]);
  const index = new discover.ClaimIndex("https://news.example/a");
  const found = discover.examine(box, index, { backgroundOf: () => 'url("/bg.png"), linear-gradient(red, blue)' });
  assert.equal(found.mediaUrl, "https://news.example/bg.png");
  assert.ok(found.envelope);
  assert.equal(discover.backgroundUrl("none"), null);
  assert.equal(discover.backgroundUrl("url('x.png')"), "x.png");
});

test("open shadow roots are searched, nested ones too", () => {
  const inner = h("div", {}, h("img", { id: "deep", src: "/d.png" }));
  const host2 = h("x-inner", {});
  host2.shadowRoot = inner;
  const outer = h("div", {}, h("img", { id: "shadowed", src: "/s.png" }), host2);
  const host = h("x-card", {});
  host.shadowRoot = outer;
  const doc = h("body", {}, host);
  const roots = discover.shadowRootsUnder(doc);
  assert.deepEqual(roots, [outer, inner]);
  const img = h("img", {});
  img.shadowRoot = h("div", {}); // never so in a browser: images are not asked
  assert.deepEqual(discover.shadowRootsUnder(h("body", {}, img, h("x-a", {}))), []);
  assert.deepEqual(roots.flatMap((r) => discover.mediaUnder(r)).map((e) => e.id), ["shadowed", "deep"]);
});

test("shownOnly: an image with an attribute claim lists only the URL it shows", () => {
  const env = claimFor("https://news.example/shown.webp");
  const img = h("img", { src: "/fallback.png", srcset: "/shown.webp 2x", "data-labelcheck-claim": attrValue(env) });
  const plain = h("img", { src: "/plain.png" });
  h("html", {}, img, plain);
  const index = new discover.ClaimIndex("https://news.example/a");
  // Nothing shown yet: every URL it may show is listed.
  assert.ok(discover.examine(img, index, { shownOnly: true }).urls.length >= 2);
  img.currentSrc = "https://news.example/shown.webp#x";
  plain.currentSrc = "https://news.example/plain.png";
  const found = discover.examine(img, index, { shownOnly: true, deferAttribute: true });
  assert.deepEqual(found.urls, ["https://news.example/shown.webp"]);
  assert.equal(found.mediaUrl, "https://news.example/shown.webp");
  assert.equal(found.source, "attribute");
  // Without the option, or without a claim attribute, the other URLs are listed too.
  assert.ok(discover.examine(img, index).urls.includes("https://news.example/fallback.png"));
  assert.deepEqual(discover.examine(plain, index, { shownOnly: true }).urls, ["https://news.example/plain.png"]);
});

test("a plain image whose new src is still loading is matched by that src first, then the one it shows", () => {
  const next = claimFor("https://news.example/next.png");
  const shown = claimFor("https://news.example/shown.png");
  const img = h("img", { src: "/next.png" });
  img.currentSrc = "https://news.example/shown.png"; // the old image, until the new one loads
  h("html", {}, img);
  const index = new discover.ClaimIndex("https://news.example/a");
  assert.equal(discover.examine(img, index).source, null);
  index.addAll(h("html", {}, scriptTag(shown)));
  let found = discover.examine(img, index);
  assert.equal(found.pending, true);
  assert.deepEqual(found.urls, ["https://news.example/next.png", "https://news.example/shown.png"]);
  assert.deepEqual(found.envelope, shown); // only the old image has a claim: it speaks for now
  index.addAll(h("html", {}, scriptTag(next)));
  found = discover.examine(img, index);
  assert.deepEqual(found.envelope, next); // what it is about to show wins
  assert.equal(found.mediaUrl, "https://news.example/next.png");
  img.currentSrc = "https://news.example/next.png"; // loaded
  found = discover.examine(img, index);
  assert.equal(found.pending, false);
  assert.deepEqual(found.envelope, next);
});
