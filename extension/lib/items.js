/*
 * What goes to the server and how it is keyed, chunked and retried: the
 * POST /v1/verify items of docs/protocol.md §5, result-cache keys per (claim, media
 * URL), batches of at most 100, and exponential back-off.
 */
(function (root, factory) {
  const ns = root.labelcheck || {};
  const api = factory(ns.urls || (typeof require === "function" ? require("./urls.js") : null));
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).items = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls) {
  "use strict";

  const MAX_BATCH = 100; // docs/protocol.md §5: at most 100 items per POST /v1/verify

  /**
   * Short keys for long texts: the same text always gets the same key. A
   * page's keys tie verdicts to its elements (the session cache is keyed by
   * `itemDigest`); interning keeps messages small.
   *
   * Parts are looked up by the last one (the media URL: short, cheap to
   * hash) and then compared with the records under it, so a long claim is
   * neither hashed nor joined into a new string. A URL under which many
   * different parts pile up gets a Map by the joined parts instead.
   */
  const BUCKET_MAX = 8;

  class KeyTable {
    constructor(prefix = "k") {
      this.prefix = prefix;
      this.byLast = new Map(); // last part -> [{parts, id}] or a Map(joined parts -> id)
      this.size = 0;
    }

    // A URL's first record is kept as it is; an array is made for its
    // second (a page of a thousand images has one record per URL).
    key(...parts) {
      const last = parts[parts.length - 1];
      const bucket = this.byLast.get(last);
      if (bucket === undefined) {
        const id = this._next();
        this.byLast.set(last, { parts, id });
        return id;
      }
      if (bucket instanceof Map) {
        const joined = JSON.stringify(parts); // unambiguous, unlike a separator
        let id = bucket.get(joined);
        if (id === undefined) bucket.set(joined, (id = this._next()));
        return id;
      }
      if (!Array.isArray(bucket)) {
        if (sameParts(bucket.parts, parts)) return bucket.id;
        const id = this._next();
        this.byLast.set(last, [bucket, { parts, id }]);
        return id;
      }
      for (let i = 0; i < bucket.length; i++) if (sameParts(bucket[i].parts, parts)) return bucket[i].id;
      const id = this._next();
      bucket.push({ parts, id });
      if (bucket.length > BUCKET_MAX) {
        this.byLast.set(last, new Map(bucket.map((rec) => [JSON.stringify(rec.parts), rec.id])));
      }
      return id;
    }

    _next() {
      return `${this.prefix}${(this.size++).toString(36)}`;
    }
  }

  function sameParts(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  const defaultKeys = new KeyTable();

  /** A page's key for one verification: the claim's exact text, the
   *  signals and the media URL, interned in `keys`. */
  function cacheKey({ envelope = null, claimText = null, mediaUrl = null, signals = null }, keys = defaultKeys) {
    const claim = claimText || (envelope ? JSON.stringify(envelope) : "-");
    const signal = signals ? JSON.stringify(signals) : "-";
    return keys.key(claim, signal, mediaUrl || "");
  }

  /** The session-cache key of an item: SHA-256 over exactly what the server
   *  is asked (claim, media URL, signals), so no page can make two
   *  different items share a cached verdict. `subtle` is crypto.subtle. */
  async function itemDigest(item, subtle) {
    const asked = [item.claim || null, item.media_url || null, item.signals || null];
    if (item.content_sha256) asked.push(item.content_sha256); // hashed in the page: the bytes are part of the question
    const text = JSON.stringify(asked);
    const digest = new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(text)));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /**
   * The item a found media element becomes, or null when nothing about it
   * may leave the browser: unlabelled media is sent only when the viewer
   * turned "check unlabelled media too" on. A page URL leaves only as its
   * origin.
   */
  function mediaItem(found, pageUrl, { checkUnlabelled = false, keys = defaultKeys } = {}) {
    const page = urls.origin(pageUrl);
    if (found.claimAttr !== undefined && found.claimAttr !== null) {
      // An undecoded attribute claim: the worker decodes it (claimEntry).
      const item = {};
      if (found.mediaUrl && isFetchable(found.mediaUrl)) item.media_url = found.mediaUrl;
      if (page) item.page_url = page;
      const key = cacheKey({ claimText: found.claimAttr, mediaUrl: item.media_url }, keys);
      return { key, item, claimAttr: found.claimAttr };
    }
    if (found.envelope) {
      const item = { claim: found.envelope };
      if (found.mediaUrl && isFetchable(found.mediaUrl)) item.media_url = found.mediaUrl;
      if (page) item.page_url = page;
      return { key: cacheKey({ envelope: found.envelope, claimText: found.claimText, mediaUrl: item.media_url }, keys), item };
    }
    if (found.error || !checkUnlabelled || !found.mediaUrl || !isFetchable(found.mediaUrl)) return null;
    const item = { media_url: found.mediaUrl };
    if (page) item.page_url = page;
    return { key: cacheKey({ mediaUrl: found.mediaUrl }, keys), item };
  }

  /**
   * Complete an entry whose claim came as undecoded attribute text
   * (`claimAttr`): its item gets the envelope, or the entry gets a local
   * "invalid / malformed" verdict. `parseAttributeClaim` is discover's.
   */
  function claimEntry(entry, parseAttributeClaim) {
    if (typeof entry.claimAttr !== "string") return entry;
    const parsed = parseAttributeClaim(entry.claimAttr);
    delete entry.claimAttr;
    if (parsed.error) {
      entry.local = { status: "invalid", category: null, reasons: [parsed.error], producer: null, receipt: null };
    } else {
      entry.item = Object.assign({ claim: parsed.envelope }, entry.item);
    }
    return entry;
  }

  /** Entries as one JSON string, for a runtime message: extension
   *  messaging converts one long string much faster than many objects. */
  function packEntries(entries) {
    return JSON.stringify(entries);
  }

  /** The entries of a "verify" message: packed (`data`) or as a list
   *  (`entries`); anything malformed gives none. */
  function unpackEntries(message) {
    if (!message || typeof message !== "object") return [];
    let list = message.entries;
    if (typeof message.data === "string") {
      try {
        list = JSON.parse(message.data);
      } catch (_) {
        return [];
      }
    }
    return Array.isArray(list) ? list : [];
  }

  /** The item of a page-level <meta name="AIGC"> label. */
  function pageMetaItem(meta, pageUrl, keys = defaultKeys) {
    const page = urls.origin(pageUrl);
    const signals = { meta: meta.content };
    const item = { signals };
    if (page) item.page_url = page;
    return { key: cacheKey({ signals, mediaUrl: page }, keys), item };
  }

  /** Only http(s) media can be fetched by the server (docs/protocol.md §6). */
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

  return { MAX_BATCH, KeyTable, cacheKey, itemDigest, mediaItem, claimEntry, packEntries, unpackEntries, pageMetaItem, isFetchable, chunk, backoff, uncheckedResult };
});
