/*
 * The background worker (a service worker in Chromium, an event page in
 * Firefox): receives found items from content scripts, answers from the
 * session cache, hashes media bytes it can read, calls POST /v1/verify in
 * batches of at most 100, retries with back-off when the server is down,
 * and keeps the toolbar badge and the popup's list per tab.
 */
if (typeof importScripts === "function" && !(self.labelcheck && self.labelcheck.items)) {
  importScripts("lib/base64url.js", "lib/urls.js", "lib/discover.js", "lib/items.js", "lib/present.js",
    "lib/receipt.js", "receipts.js");
}

(function (root) {
  "use strict";
  const { discover, items, present, receipts } = root.labelcheck;

  const DEFAULTS = { serverUrl: "http://127.0.0.1:8080", checkUnlabelled: false };
  const REQUEST_TIMEOUT_MS = 15000;
  const HASH_TIMEOUT_MS = 10000;
  const HASH_MAX_BYTES = 50 * 1024 * 1024;
  const HASH_CONCURRENCY = 12;
  const POST_CONCURRENCY = 3;
  const MAX_ATTEMPTS = 6;
  const SAVE_DELAY_MS = 250;
  const MAX_CACHE = 20000; // verdicts kept per session (oldest dropped first)
  const MAX_HASHES = 5000;

  // Session state (also mirrored to storage.session: a service worker may be
  // stopped between events; nothing here outlives the browser session).
  const cache = new Map(); // item digest -> verdict from the server
  const tabs = new Map(); // tabId -> Map page key -> {kind, mediaUrl, frameId, labelled, result}
  const waiters = new Map(); // item digest -> Map "tabId:frameId" -> Set of page keys
  const hashes = new Map(); // media URL -> Promise<sha256 hex | null>
  // Counters for benchmarks and debugging (read through the worker).
  const stats = { posts: 0, postedItems: 0, hashed: 0, hashFailed: 0, pageHashed: 0, failures: 0, trace: [] };
  let restored = null;
  let saveTimer = 0;

  function restore() {
    if (!restored) {
      restored = (async () => {
        try {
          const saved = await chrome.storage.session.get({ cache: {}, tabs: {} });
          for (const [k, v] of Object.entries(saved.cache)) if (!cache.has(k)) cache.set(k, v);
          for (const [t, entries] of Object.entries(saved.tabs)) {
            if (!tabs.has(Number(t))) tabs.set(Number(t), new Map(Object.entries(entries)));
          }
        } catch (_) { /* storage.session missing: memory only */ }
      })();
    }
    return restored;
  }

  function save() {
    for (const k of cache.keys()) {
      if (cache.size <= MAX_CACHE) break;
      cache.delete(k); // Map order is insertion order: the oldest go first
    }
    if (saveTimer) return;
    saveTimer = setTimeout(() => {
      saveTimer = 0;
      const tabObj = {};
      for (const [t, m] of tabs) tabObj[t] = Object.fromEntries(m);
      chrome.storage.session.set({ cache: Object.fromEntries(cache), tabs: tabObj }).catch(() => {});
    }, SAVE_DELAY_MS);
  }

  async function settings() {
    try {
      return Object.assign({}, DEFAULTS, await chrome.storage.local.get(DEFAULTS));
    } catch (_) {
      return Object.assign({}, DEFAULTS);
    }
  }

  // --- per-tab lists and the toolbar ----------------------------------------

  function tabEntries(tabId) {
    let m = tabs.get(tabId);
    if (!m) tabs.set(tabId, (m = new Map()));
    return m;
  }

  function isLabelled(e) {
    return e.labelled || (e.result && present.isLabelled(e.result));
  }

  function updateToolbar(tabId) {
    const m = tabs.get(tabId);
    let count = 0;
    let bad = false;
    if (m) {
      for (const e of m.values()) {
        if (!isLabelled(e)) continue;
        if (e.result && present.stateOf(e.result) === "none") continue;
        count++;
        if (e.result && present.toneOf(present.stateOf(e.result)) === "bad") bad = true;
      }
    }
    const n = count > 999 ? "999+" : String(count);
    const text = count === 0 ? "" : bad && n.length < 4 ? `${n}!` : n;
    const color = bad ? "#b91c1c" : "#5b21b6";
    const a = chrome.action;
    a.setBadgeText({ tabId, text }).catch(() => {});
    a.setBadgeBackgroundColor({ tabId, color }).catch(() => {});
    if (a.setBadgeTextColor) a.setBadgeTextColor({ tabId, color: "#ffffff" }).catch(() => {});
    a.setTitle({ tabId, title: chrome.i18n.getMessage("action_title", [String(count)]) }).catch(() => {});
  }

  function record(tabId, frameId, entry, result) {
    const m = tabEntries(tabId);
    const prev = m.get(entry.key);
    m.set(entry.key, {
      kind: entry.kind === "page" ? "page" : "media",
      mediaUrl: entry.mediaUrl || (prev && prev.mediaUrl) || null,
      frameId,
      labelled: !!entry.labelled,
      result: result || (prev && prev.result) || null,
    });
  }

  // --- delivering verdicts ----------------------------------------------------

  function wait(digest, target, key) {
    if (!waiters.has(digest)) waiters.set(digest, new Map());
    const byTarget = waiters.get(digest);
    if (!byTarget.has(target)) byTarget.set(target, new Set());
    byTarget.get(target).add(key);
  }

  /** Send each verdict ([digest, verdict]) to every frame waiting for it,
   *  one message per frame, keyed by that page's own keys. */
  function deliver(verdicts) {
    const perFrame = new Map();
    const touched = new Set();
    for (const [digest, result] of verdicts) {
      const byTarget = waiters.get(digest) || new Map();
      if (result.status !== "unchecked") waiters.delete(digest);
      for (const [target, keys] of byTarget) {
        const [tabId] = target.split(":").map(Number);
        if (!perFrame.has(target)) perFrame.set(target, {});
        const m = tabs.get(tabId);
        for (const key of keys) {
          perFrame.get(target)[key] = result;
          const e = m && m.get(key);
          if (e) {
            e.result = result;
            touched.add(tabId);
          }
        }
      }
    }
    for (const [t, results] of perFrame) {
      const [tabId, frameId] = t.split(":").map(Number);
      chrome.tabs.sendMessage(tabId, { type: "results", results }, { frameId }).catch(() => {});
    }
    for (const tabId of touched) updateToolbar(tabId);
    save();
  }

  // --- hashing media bytes ------------------------------------------------------

  /** SHA-256 hex of the bytes at `url`, or null when they cannot be read
   *  (no host access, CORS, too big, slow): the server then fetches them. */
  function hashOf(url) {
    if (hashes.size >= MAX_HASHES) hashes.clear();
    if (!hashes.has(url)) {
      hashes.set(url, (async () => {
        const ctrl = new AbortController();
        const timer = setTimeout(() => ctrl.abort(), HASH_TIMEOUT_MS);
        try {
          const res = await fetch(url, { credentials: "omit", signal: ctrl.signal, cache: "force-cache" });
          if (!res.ok) return null;
          const declared = Number(res.headers.get("content-length") || 0);
          if (declared > HASH_MAX_BYTES) return null;
          const body = await res.arrayBuffer();
          if (body.byteLength > HASH_MAX_BYTES) return null;
          const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
          return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
        } catch (_) {
          return null;
        } finally {
          clearTimeout(timer);
        }
      })());
    }
    return hashes.get(url);
  }

  function originOf(url) {
    try {
      return new URL(url).origin;
    } catch (_) {
      return null;
    }
  }

  async function mapLimit(list, limit, fn) {
    const out = new Array(list.length);
    let next = 0;
    const workers = Array.from({ length: Math.min(limit, list.length) }, async () => {
      while (next < list.length) {
        const i = next++;
        out[i] = await fn(list[i], i);
      }
    });
    await Promise.all(workers);
    return out;
  }

  // --- calling the server ---------------------------------------------------------

  class ServerError extends Error {
    constructor(reason, retryAfterMs, retry = true) {
      super(reason);
      this.reason = reason;
      this.retryAfterMs = retryAfterMs;
      this.retry = retry;
    }
  }

  async function postBatch(serverUrl, batch) {
    stats.posts++;
    stats.postedItems += batch.length;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
    let res;
    try {
      res = await fetch(`${serverUrl.replace(/\/+$/, "")}/v1/verify`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ items: batch.map((e) => e.item) }),
        credentials: "omit",
        signal: ctrl.signal,
      });
    } catch (e) {
      throw new ServerError(ctrl.signal.aborted ? "server_timeout" : "server_unreachable");
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 429 || res.status >= 500) {
      const after = Number(res.headers.get("retry-after"));
      throw new ServerError("server_busy", after > 0 ? after * 1000 : 0);
    }
    if (!res.ok) throw new ServerError("server_refused", 0, false);
    let body;
    try {
      body = await res.json();
    } catch (_) {
      throw new ServerError("server_refused", 0, false);
    }
    if (!body || !Array.isArray(body.results) || body.results.length !== batch.length) {
      throw new ServerError("server_refused", 0, false);
    }
    return body.results;
  }

  /** Verify `batch` (≤ 100 entries); on failure answer "could not check"
   *  now and try again later with exponential back-off. */
  async function verifyBatch(batch, attempt = 0) {
    const { serverUrl } = await settings();
    try {
      const results = await postBatch(serverUrl, batch);
      await receipts.checkAll(serverUrl, results); // each receipt against the pinned ledger key
      const verdicts = [];
      batch.forEach((e, i) => {
        const r = results[i] && typeof results[i] === "object" ? results[i] : items.uncheckedResult("server_refused");
        cache.set(e.key, r);
        verdicts.push([e.key, r]);
      });
      deliver(verdicts);
      trace(`delivered ${batch.length}`);
    } catch (err) {
      stats.failures++;
      const reason = err instanceof ServerError ? err.reason : "server_refused";
      deliver(batch.map((e) => [e.key, items.uncheckedResult(reason)]));
      const retry = !(err instanceof ServerError) || err.retry;
      if (retry && attempt + 1 < MAX_ATTEMPTS) {
        const delay = Math.max(items.backoff(attempt), (err && err.retryAfterMs) || 0);
        setTimeout(() => verifyBatch(batch, attempt + 1), delay);
        } else {
        for (const e of batch) waiters.delete(e.key);
      }
    }
  }

  function trace(what) {
    if (stats.trace.length < 200) stats.trace.push([what, Math.round(performance.now())]);
  }

  /**
   * Verify `entries` for a frame whose origin is `pageOrigin`.
   *
   * The worker hashes media the page itself could read (same origin), so
   * the server need not fetch it again. Other media is left to the server:
   * fetching it from here would use the viewer's network position and the
   * extension's host access, and the verdict shown on the page would tell
   * the page something about bytes it cannot read (an intranet image, say).
   * A viewer who opted into checking unlabelled media asked the server to
   * read the files' embedded labels, so then the server fetches every item.
   */
  async function process(entries, pageOrigin, hold = null) {
    trace(`process ${entries.length}`);
    const { checkUnlabelled } = await settings();
    // Each batch is posted as soon as its own items are hashed.
    await mapLimit(items.chunk(entries, items.MAX_BATCH), POST_CONCURRENCY, async (batch) => {
      await mapLimit(batch, HASH_CONCURRENCY, async (e) => {
        if (!checkUnlabelled && e.item.claim && e.item.media_url && !e.item.content_sha256 &&
            pageOrigin && originOf(e.item.media_url) === pageOrigin) {
          const sha = await hashOf(e.item.media_url);
          if (sha) {
            e.item.content_sha256 = sha;
            stats.hashed++;
          } else {
            stats.hashFailed++;
          }
        }
      });
      trace("hashed");
      if (hold) await hold; // the page is still loading: its server and the browser need the CPU
      await verifyBatch(batch);
    });
  }

  /** A hash the content script computed from the page's own bytes is kept
   *  only where the worker would have hashed itself: a claimed item of the
   *  page's origin with the opt-in off (then the server reads the files). */
  function vetPageHash(item, pageOrigin, checkUnlabelled) {
    if (!item || item.content_sha256 === undefined) return;
    const ok = !checkUnlabelled && item.claim && typeof item.content_sha256 === "string" &&
      /^[0-9a-f]{64}$/.test(item.content_sha256) && pageOrigin && originOf(item.media_url) === pageOrigin;
    if (ok) stats.pageHashed++;
    else delete item.content_sha256;
  }

  // --- pages still loading ---------------------------------------------------------

  // Verification of a frame that is still loading waits for its load event
  // (the "loaded" message), at most HOLD_MAX_MS: the page's own loading
  // comes first, and verdicts land in the same passes afterwards.
  const HOLD_MAX_MS = 15000;
  const holds = new Map(); // "tabId:frameId" -> {promise, release}

  function holdFor(target) {
    let h = holds.get(target);
    if (!h) {
      let release;
      const promise = new Promise((resolve) => { release = resolve; });
      const timer = setTimeout(() => releaseHold(target), HOLD_MAX_MS);
      h = { promise, release, timer };
      holds.set(target, h);
    }
    return h.promise;
  }

  function releaseHold(target) {
    const h = holds.get(target);
    if (!h) return;
    holds.delete(target);
    clearTimeout(h.timer);
    h.release();
  }

  async function onLoaded(message, sender) {
    releaseHold(`${sender.tab ? sender.tab.id : -1}:${sender.frameId || 0}`);
    return {};
  }

  // --- messages from content scripts and the popup ------------------------------

  const inflight = new Set();

  async function onVerify(message, sender) {
    await restore();
    const tabId = sender.tab ? sender.tab.id : -1;
    const frameId = sender.frameId || 0;
    const target = `${tabId}:${frameId}`;
    const answered = {};
    const todo = [];
    const entries = items.unpackEntries(message).filter((e) => e && typeof e.key === "string");
    const pageOrigin = sender.origin || (sender.url ? originOf(sender.url) : null);
    const { checkUnlabelled } = await settings();
    // Attribute claims arrive undecoded (the page's thread never parses them).
    for (const e of entries) {
      items.claimEntry(e, discover.parseAttributeClaim);
      vetPageHash(e.item, pageOrigin, checkUnlabelled);
    }
    const digests = await Promise.all(entries.map((e) =>
      (!e.local && e.item && typeof e.item === "object" ? items.itemDigest(e.item, crypto.subtle) : null)));
    entries.forEach((e, i) => {
      if (e.local) {
        record(tabId, frameId, e, e.local);
        answered[e.key] = e.local;
        return;
      }
      const digest = digests[i];
      if (!digest) return;
      const cached = cache.get(digest);
      record(tabId, frameId, e, cached);
      if (cached) {
        answered[e.key] = cached;
        return;
      }
      wait(digest, target, e.key);
      if (!inflight.has(digest)) {
        inflight.add(digest);
        todo.push({ key: digest, item: e.item });
      }
    });
    if (tabId >= 0) updateToolbar(tabId);
    save();
    if (todo.length) {
      process(todo, pageOrigin, message.loading && tabId >= 0 ? holdFor(target) : null).finally(() => {
        for (const e of todo) inflight.delete(e.key);
      });
    }
    return { results: answered };
  }

  // The wording content scripts show, as templates: each message formatted
  // with markers U+E000…U+E008 (private use) where its substitutions go. A content
  // script's first chrome.i18n.getMessage is a synchronous round trip to
  // the browser process, on the page's thread; the hello answer hands the
  // wording over instead.
  let wording = null;

  function wordingTemplates() {
    if (!wording) {
      wording = (async () => {
        const res = await fetch(chrome.runtime.getURL("_locales/en/messages.json")); // the default locale names every message
        const markers = Array.from({ length: 9 }, (_, i) => String.fromCharCode(0xe000 + i));
        const out = {};
        for (const name of Object.keys(await res.json())) out[name] = chrome.i18n.getMessage(name, markers);
        return out;
      })().catch(() => null);
    }
    return wording;
  }

  async function onHello(message, sender) {
    await restore();
    if (!sender.tab) return {};
    const templates = await wordingTemplates();
    const tabId = sender.tab.id;
    if (message.top) {
      tabs.set(tabId, new Map());
      updateToolbar(tabId);
      // Subframes may have reported before the new top document did.
      chrome.tabs.sendMessage(tabId, { type: "resync" }).catch(() => {});
    }
    return templates ? { wording: templates } : {};
  }

  async function onReport(message, sender) {
    await restore();
    if (!sender.tab) return {};
    for (const e of message.entries || []) {
      if (e && typeof e.key === "string") record(sender.tab.id, sender.frameId || 0, e, e.known);
    }
    updateToolbar(sender.tab.id);
    save();
    return {};
  }

  async function onTab(message) {
    await restore();
    const m = tabs.get(Number(message.tabId));
    const list = m ? [...m.entries()].map(([key, e]) => Object.assign({ key }, e)) : [];
    return { entries: list.filter(isLabelled) };
  }

  /** The pinned ledger key of the configured server (and any other key it offers now). */
  async function onLedgerKey() {
    const { serverUrl } = await settings();
    await receipts.pinnedKey(serverUrl).catch(() => null);
    return receipts.status(serverUrl);
  }

  /** The viewer chose, on the options page, to pin the key the server offers now. */
  async function onRepin() {
    const { serverUrl } = await settings();
    return receipts.repin(serverUrl);
  }

  const HANDLERS = { verify: onVerify, loaded: onLoaded, hello: onHello, report: onReport, tab: onTab, ledgerKey: onLedgerKey, repin: onRepin };
  const OWN_PAGES_ONLY = new Set(["tab", "ledgerKey", "repin"]);

  function fromOwnPage(sender) {
    const own = chrome.runtime.getURL("");
    return sender.id === chrome.runtime.id && (!sender.url || sender.url.startsWith(own)) &&
      (!sender.origin || own.startsWith(sender.origin));
  }

  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    const handler = message && HANDLERS[message.type];
    if (!handler) return false;
    // Only our own pages may read a tab's list or pin a key; content scripts never.
    if (OWN_PAGES_ONLY.has(message.type) && !fromOwnPage(sender)) return false;
    handler(message, sender).then(sendResponse, () => sendResponse(null));
    return true; // answer asynchronously
  });

  chrome.tabs.onRemoved.addListener((tabId) => {
    tabs.delete(tabId);
    save();
  });

  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && (changes.serverUrl || changes.checkUnlabelled || changes.ledgerKeys)) {
      // Another server, the server reading files itself, or another pinned
      // ledger key may answer or check differently: forget the verdicts.
      cache.clear();
      save();
    }
  });

  /** Forget every verdict and hash (a fresh session, for benchmarks). */
  function clearCache() {
    cache.clear();
    hashes.clear();
    save();
  }

  root.labelcheck.background = { settings, hashOf, postBatch, stats, clearCache };
})(typeof globalThis !== "undefined" ? globalThis : this);
