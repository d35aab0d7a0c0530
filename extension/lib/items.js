/*
 * What goes to the server and how it is keyed, chunked and retried: the
 * POST /v1/verify items of DESIGN §5, result-cache keys per (claim, media
 * URL), batches of at most 100, and exponential back-off.
 */
(function (root, factory) {
  const ns = root.labelcheck || {};
  const api = factory(ns.urls || (typeof require === "function" ? require("./urls.js") : null));
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).items = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls) {
  "use strict";

  const MAX_BATCH = 100; // DESIGN §5: at most 100 items per POST /v1/verify

  /** 53-bit FNV-1a-style hash of a string, as base-36 text. Two 32-bit lanes
   *  with different offsets; keys also carry the media URL verbatim. */
  function hashText(text) {
    let h1 = 0x811c9dc5, h2 = 0x01000193 ^ text.length;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    return ((h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff)).toString(36);
  }

  /** A page's own key for one verification: a cheap hash of the claim and
   *  signals, and the media URL verbatim. It only ties verdicts to elements
   *  inside one page; the session cache is keyed by `itemDigest`. */
  function cacheKey({ envelope = null, mediaUrl = null, signals = null }) {
    const claimPart = envelope ? hashText(JSON.stringify(envelope)) : "-";
    const signalPart = signals ? hashText(JSON.stringify(signals)) : "-";
    return `${claimPart}.${signalPart}|${mediaUrl || ""}`;
  }

  /** The session-cache key of an item: SHA-256 over exactly what the server
   *  is asked (claim, media URL, signals), so no page can make two
   *  different items share a cached verdict. `subtle` is crypto.subtle. */
  async function itemDigest(item, subtle) {
    const text = JSON.stringify([item.claim || null, item.media_url || null, item.signals || null]);
    const digest = new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(text)));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /**
   * The item a found media element becomes, or null when nothing about it
   * may leave the browser: unlabelled media is sent only when the viewer
   * turned "check unlabelled media too" on. A page URL leaves only as its
   * origin.
   */
  function mediaItem(found, pageUrl, { checkUnlabelled = false } = {}) {
    const page = urls.origin(pageUrl);
    if (found.envelope) {
      const item = { claim: found.envelope };
      if (found.mediaUrl && isFetchable(found.mediaUrl)) item.media_url = found.mediaUrl;
      if (page) item.page_url = page;
      return { key: cacheKey({ envelope: found.envelope, mediaUrl: item.media_url }), item };
    }
    if (found.error || !checkUnlabelled || !found.mediaUrl || !isFetchable(found.mediaUrl)) return null;
    const item = { media_url: found.mediaUrl };
    if (page) item.page_url = page;
    return { key: cacheKey({ mediaUrl: found.mediaUrl }), item };
  }

  /** The item of a page-level <meta name="AIGC"> label. */
  function pageMetaItem(meta, pageUrl) {
    const page = urls.origin(pageUrl);
    const signals = { meta: meta.content };
    const item = { signals };
    if (page) item.page_url = page;
    return { key: cacheKey({ signals, mediaUrl: page }), item };
  }

  /** Only http(s) media can be fetched by the server (DESIGN §6). */
  function isFetchable(url) {
    return /^https?:\/\//i.test(url);
  }

  /** Split `list` into arrays of at most `size` (default 100). */
  function chunk(list, size = MAX_BATCH) {
    if (!(size >= 1)) throw new RangeError("chunk size must be at least 1");
    const out = [];
    for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
    return out;
  }

  /** Delay before retry `attempt` (0-based): base·2^attempt capped at max,
   *  with "equal jitter" (half fixed, half random) so tabs do not retry in step. */
  function backoff(attempt, { base = 1000, max = 60000, random = Math.random } = {}) {
    const exp = Math.min(max, base * 2 ** Math.max(0, attempt));
    return Math.round(exp / 2 + random() * (exp / 2));
  }

  /** The extension's own result for an item the server could not check. */
  function uncheckedResult(reason) {
    return { status: "unchecked", category: null, reasons: [reason], producer: null, receipt: null };
  }

  return { MAX_BATCH, hashText, cacheKey, itemDigest, mediaItem, pageMetaItem, isFetchable, chunk, backoff, uncheckedResult };
});
