"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const urls = require("../lib/urls.js");
const { h } = require("./fakedom.js");

const BASE = "https://news.example/articles/today.html?x=1#top";

test("relative URLs resolve against the page, fragments dropped", () => {
  assert.equal(urls.resolve("img/a.png", BASE), "https://news.example/articles/img/a.png");
  assert.equal(urls.resolve("/a.png#frag", BASE), "https://news.example/a.png");
  assert.equal(urls.resolve("//cdn.example/a.png", BASE), "https://cdn.example/a.png");
  assert.equal(urls.resolve("  a b.png ", BASE), "https://news.example/articles/a%20b.png");
  assert.equal(urls.resolve("", BASE), null);
  assert.equal(urls.resolve("http://[bad", BASE), null);
});

test("origin keeps scheme, host and port only", () => {
  assert.equal(urls.origin("https://news.example:8443/a/b?c#d"), "https://news.example:8443");
  assert.equal(urls.origin("data:text/html,hi"), null);
  assert.equal(urls.origin("not a url"), null);
});

test("srcset parsing follows the HTML algorithm", () => {
  assert.deepEqual(urls.parseSrcset("a.png 1x, b.png 2x"), ["a.png", "b.png"]);
  assert.deepEqual(urls.parseSrcset("a.png 100w,b.png 200w"), ["a.png", "b.png"]);
  assert.deepEqual(urls.parseSrcset("a.png, b.png,"), ["a.png", "b.png"]); // a URL ending in commas drops them
  assert.deepEqual(urls.parseSrcset("a.png,b.png"), ["a.png,b.png"]); // commas inside a URL belong to it
  assert.deepEqual(urls.parseSrcset("data:image/png;base64,AAA= 1x"), ["data:image/png;base64,AAA="]);
  assert.deepEqual(urls.parseSrcset("a.png (max-width: 10px, 20px) 1x, b.png"), ["a.png", "b.png"]);
  assert.deepEqual(urls.parseSrcset("  ,, "), []);
  assert.deepEqual(urls.parseSrcset(null), []);
});

test("an img lists currentSrc, src and srcset candidates, absolute and unique", () => {
  const img = h("img", { src: "small.png", srcset: "small.png 1x, big.png 2x" });
  img.currentSrc = "https://news.example/articles/big.png";
  assert.deepEqual(urls.mediaUrls(img, BASE), [
    "https://news.example/articles/big.png",
    "https://news.example/articles/small.png",
  ]);
});

test("a plain img lists what it shows, and its src too when that names other bytes", () => {
  const shownAs = (src, current) => {
    const img = h("img", { src });
    img.currentSrc = current;
    img.src = urls.resolve(src, BASE); // the reflected attribute, as the browser resolves it
    return urls.mediaUrls(img, BASE);
  };
  const shown = "https://news.example/media/a.png";
  assert.deepEqual(shownAs("/media/a.png", shown), [shown]);
  assert.deepEqual(shownAs(shown, `${shown}#x`), [shown]);
  assert.deepEqual(shownAs("../media/a.png", shown), [shown]); // resolved, not compared as text
  assert.deepEqual(shownAs("/media/./a.png", shown), [shown]);
  assert.deepEqual(shownAs("/media/b.png", shown), [shown, "https://news.example/media/b.png"]); // src changed, old bytes shown
  assert.deepEqual(shownAs("//cdn.example/media/a.png", shown), [shown, "https://cdn.example/media/a.png"]);
  assert.deepEqual(shownAs("/media/a.png", ""), ["https://news.example/media/a.png"]); // not loaded yet
});

test("<picture> sources count for its img, and the img is the badge anchor", () => {
  const img = h("img", { src: "fallback.jpg" });
  const pic = h("picture", {}, h("source", { srcset: "wide.avif 1200w, narrow.avif 600w", type: "image/avif" }), img);
  assert.deepEqual(urls.mediaUrls(pic, BASE), [
    "https://news.example/articles/fallback.jpg",
    "https://news.example/articles/wide.avif",
    "https://news.example/articles/narrow.avif",
  ]);
  assert.equal(urls.anchorOf(pic), img);
  assert.equal(urls.anchorOf(img), img);
});

test("a video lists its sources and its poster; audio its sources", () => {
  const video = h("video", { poster: "/poster.jpg" }, h("source", { src: "clip.webm" }), h("source", { src: "clip.mp4" }));
  assert.deepEqual(urls.mediaUrls(video, BASE), [
    "https://news.example/articles/clip.webm",
    "https://news.example/articles/clip.mp4",
    "https://news.example/poster.jpg",
  ]);
  const audio = h("audio", { src: "https://cdn.example/a.mp3" }, h("source", { src: "a.ogg" }));
  assert.deepEqual(urls.mediaUrls(audio, BASE), ["https://cdn.example/a.mp3", "https://news.example/articles/a.ogg"]);
});
