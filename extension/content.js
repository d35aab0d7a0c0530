/*
 * The content script: finds claims and label signals (docs/protocol.md §2), hands
 * them to the background worker in one message per scan, and badges each
 * labelled media item when its verdict arrives. New and changed media are
 * handled from MutationObserver records, never by rescanning the page.
 *
 * Main-thread work is measured with performance.measure ("labelcheck:…")
 * so benchmarks can read it; nothing else is exposed to the page.
 */
(function (root) {
  "use strict";
  const ns = root.labelcheck;
  if (!ns || ns.contentStarted) return;
  ns.contentStarted = true;
  const { discover, items, badge, bindings } = ns;

  const doc = document;
  const isTop = root === root.top;
  const OWN_TAGS = new Set([badge.BADGE_TAG.toUpperCase(), badge.PANEL_TAG.toUpperCase()]);
  // Attribute claims go to the worker undecoded: it decodes them off the page's thread.
  // Elements shown through CSS background-image name their URL in the computed style.
  // Media with an attribute claim is listed by the URL it shows only: no
  // claim script can win over the attribute, so none is matched by URL.
  const DEFER = { deferAttribute: true, shownOnly: true, backgroundOf: (el) => getComputedStyle(el).backgroundImage };
  const NO_URLS = Object.freeze([]);
  const WATCHED_ATTRS = ["src", "srcset", "poster", "id", discover.CLAIM_ATTR, discover.FOR_ATTR];

  const state = {
    settings: { checkUnlabelled: false },
    index: new discover.ClaimIndex(doc.baseURI),
    media: new Map(), // element -> {key, urls, mediaUrl}
    byKey: new bindings.Bindings(), // key -> elements (or "page")
    mediaByUrl: new bindings.Bindings(), // absolute URL -> elements, to match late claim scripts
    results: new Map(), // key -> verdict
    pending: new Set(), // keys sent, verdict not yet shown
    labelled: new Set(), // keys of items that carry a claim or label signal
    removed: new Set(), // elements taken out of the page since the last flush
    awaitLoad: new WeakSet(), // responsive images whose shown candidate is not chosen yet
    roots: new Set(), // open shadow roots being observed
    pageKey: null,
    toPlace: [], // media badged from cached verdicts, to be placed after the pass
    layer: null,
    busyMs: 0,
  };

  // Labelled same-origin images are hashed here, from the page's own cache.
  let hasher = null;
  function pageHasher() {
    if (!hasher) {
      hasher = new ns.pagehash.PageHasher(doc, { dispatch: (entries) => dispatch(entries), timed,
        batch: items.MAX_BATCH, watch: listenLoad });
    }
    return hasher;
  }

  function layer() {
    if (!state.layer) state.layer = new badge.BadgeLayer(doc, { measure: timed });
    return state.layer;
  }

  /** Run `fn` and record its main-thread time as a performance measure. */
  function timed(name, fn) {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const t1 = performance.now();
      state.busyMs += t1 - t0;
      try {
        performance.measure(`labelcheck:${name}`, { start: t0, end: t1 });
      } catch (_) { /* old engines: timing is optional */ }
    }
  }

  function send(message) {
    try {
      return chrome.runtime.sendMessage(message).catch(() => null);
    } catch (_) {
      return Promise.resolve(null); // extension reloaded under us: stay quiet
    }
  }

  // --- binding elements to verification keys -----------------------------

  function bind(key, target) {
    state.byKey.add(key, target);
  }

  function unbind(key, target) {
    state.byKey.delete(key, target);
  }

  function indexUrls(el, list) {
    for (const u of list) state.mediaByUrl.add(u, el);
  }

  function unindexUrls(el, list) {
    for (const u of list) state.mediaByUrl.delete(u, el);
  }

  /** Turn examined media into outgoing entries; badges what is known already. */
  function consider(foundList, out) {
    const pageUrl = location.href; // read once per list: a getter call each time in this world
    const origin = location.origin;
    for (const found of foundList) {
      const el = found.el;
      const prev = state.media.get(el);
      if (found.responsive && !found.current) {
        // A lazy responsive image has not chosen its candidate: a verdict
        // now would speak about bytes that may never be shown. Its load
        // event brings it back.
        state.awaitLoad.add(el);
        listenLoad(el);
        continue;
      }
      if (found.responsive || found.pending) listenLoad(el); // what it shows may change
      state.awaitLoad.delete(el);
      let entry = null;
      if (found.error) {
        const result = { status: "invalid", category: null, reasons: [found.error], producer: null, receipt: null };
        entry = { key: `local:${found.error}|${found.mediaUrl || ""}`, local: result, labelled: true };
      } else {
        entry = items.mediaItem(found, pageUrl, state.settings);
        if (entry) entry.labelled = !!(found.envelope || found.claimAttr);
      }
      // URLs are indexed to match late claim scripts, which never win over an attribute.
      const listed = found.source === "attribute" ? NO_URLS : found.urls;
      if (prev) unindexUrls(el, prev.urls);
      indexUrls(el, listed);
      const key = entry ? entry.key : null;
      if (prev && prev.key && prev.key !== key) {
        unbind(prev.key, el);
        layer().remove(el);
      }
      state.media.set(el, { key, urls: listed, mediaUrl: found.mediaUrl });
      if (!entry) continue;
      bind(key, el);
      if (entry.labelled) state.labelled.add(key);
      entry.kind = "media";
      entry.mediaUrl = found.mediaUrl;
      if (state.results.has(key)) {
        show(key, state.toPlace);
      } else if (!state.pending.has(key)) {
        state.pending.add(key);
        if (entry.labelled && entry.item &&
            ns.pagehash.PageHasher.wants(found.tag, entry.item.media_url, origin, state.settings)) {
          pageHasher().add(el, entry);
        } else {
          out.push(entry);
        }
      }
    }
  }

  function considerPageMeta(out) {
    const metas = discover.findPageMeta(doc);
    if (!metas.length) return;
    const meta = metas[0];
    let entry;
    if (meta.error) {
      entry = {
        key: `local:page-meta|${location.origin}`, labelled: true,
        local: { status: "invalid", category: null, reasons: ["malformed"], producer: null, receipt: null },
      };
    } else {
      entry = Object.assign(items.pageMetaItem(meta, location.href), { labelled: true });
    }
    if (state.pageKey === entry.key) return;
    state.pageKey = entry.key;
    state.labelled.add(entry.key);
    entry.kind = "page";
    bind(entry.key, "page");
    if (!state.pending.has(entry.key)) {
      state.pending.add(entry.key);
      out.push(entry);
    }
  }

  /** Insert the badges made since the last call and check their places. */
  function placeCached() {
    if (!state.layer) return;
    state.layer.flushInserts();
    if (state.toPlace.length) state.layer.align(state.toPlace.splice(0));
  }

  // Entries sent while the page loads are verified after its load event
  // (the worker holds them until "loaded"), not while the page needs the CPU.
  let heldUntilLoad = false;

  function dispatch(entries) {
    if (!entries.length) return;
    const loading = doc.readyState !== "complete";
    if (loading && !heldUntilLoad) {
      heldUntilLoad = true;
      root.addEventListener("load", () => send({ type: "loaded" }), { once: true });
    }
    // The entries cross as objects: from an extension page, Chromium 156's
    // sendMessage took a batch of 100 (180 kB) as objects in 0.3 ms and the
    // same batch packed into one JSON string in 3.5 (medians of 20); from
    // this content script the two were within noise of each other.
    send({ type: "verify", entries, loading }).then((answer) => {
      if (answer && answer.results) apply(answer.results);
    });
  }

  // --- showing verdicts ---------------------------------------------------

  function show(key, placed) {
    const result = state.results.get(key);
    const targets = state.byKey.get(key);
    if (!result) return;
    for (const t of targets) {
      if (t === "page") {
        layer().setPage(result);
      } else if (ns.present.stateOf(result) === "none") {
        layer().remove(t);
      } else {
        const info = state.media.get(t);
        layer().set(t, result, info && info.mediaUrl);
        if (placed) placed.push(t);
      }
    }
  }

  /** Verdicts arrived ({key: verdict}): queue them and badge them in
   *  passes. Each pass inserts its badges in few writes, so it costs few
   *  styles and layouts of their containers: on a big page (verdicts in
   *  several batches) arrivals are gathered until every pending verdict is
   *  in, or GATHER_MAX_MS after the first one not yet shown. The cap is
   *  long enough for a page of a thousand images to be badged in one pass
   *  (its later verdicts wait for its own images to be hashed): a pass
   *  started earlier shares the CPU with that hashing and is then followed
   *  by a second one. */
  const arrived = new Map();
  let renderFrame = 0; // the pass's next task or frame
  let gatherTimer = 0;
  let firstArrival = 0;
  const GATHER_MS = 100; // how often a gathering pass looks again
  const GATHER_MAX_MS = 2500;

  function apply(results) {
    for (const [key, result] of Object.entries(results)) arrived.set(key, result);
    if (!arrived.size) return; // nothing new: no pass
    if (!firstArrival) firstArrival = performance.now();
    if (!renderFrame && !gatherTimer) gather();
  }

  function gather() {
    gatherTimer = 0;
    let waiting = false;
    for (const key of state.pending) {
      if (!arrived.has(key) && !state.results.has(key)) {
        waiting = true;
        break;
      }
    }
    if (waiting && performance.now() - firstArrival < GATHER_MAX_MS) {
      gatherTimer = setTimeout(gather, GATHER_MS);
      return;
    }
    firstArrival = 0;
    layer().holdInserts();
    renderFrame = setTimeout(render, 0);
  }

  // A render pass makes badges in tasks of about RENDER_SLICE_MS each and
  // holds them; then one animation frame inserts what was made, at most
  // FRAME_BADGES: the frame's task holds the insertion with its style,
  // layout and paint, but not the making. Each frame costs one layout of
  // the badges' containers (on a page of a thousand inline images, its
  // whole paragraph), so frames are few and full; the next one is made
  // FRAME_GAP_MS later, once the browser has drawn the last one (its
  // raster threads otherwise take the CPU from the next frame's task).
  // On /demo/many a frame of 500 held 24-29 ms of CPU, one of 334 19-22.
  const RENDER_SLICE_MS = 10;
  const FRAME_BADGES = 334;
  const FRAME_GAP_MS = 50;

  function render() {
    renderFrame = 0;
    timed("render", () => quietly(() => {
      const t0 = performance.now();
      let n = 0;
      for (const [key, result] of arrived) {
        arrived.delete(key);
        state.results.set(key, result);
        if (result.status !== "unchecked") state.pending.delete(key);
        show(key, state.toPlace);
        if (state.toPlace.length >= FRAME_BADGES) break;
        if (++n % 10 === 0 && performance.now() - t0 > RENDER_SLICE_MS) break;
      }
    }));
    if (arrived.size && state.toPlace.length < FRAME_BADGES) renderFrame = setTimeout(render, 0);
    else renderFrame = requestAnimationFrame(insertMade);
  }

  /** An animation frame: the held badges go in, and the pass goes on. */
  function insertMade() {
    renderFrame = 0;
    timed("render", () => quietly(placeCached));
    if (arrived.size) {
      layer().holdInserts();
      renderFrame = setTimeout(render, FRAME_GAP_MS);
      return;
    }
    firstArrival = 0; // verdicts that came during the pass were shown by it
    if (state.pending.size === 0) {
      try {
        performance.mark("labelcheck:settled");
      } catch (_) { /* optional */ }
    }
  }

  // --- scanning -----------------------------------------------------------

  // A scan yields to the page after this much work, so no task of ours
  // blocks input for long (RAIL: 50 ms tasks); entries go out in whole
  // batches of the worker's size, so slicing adds no server requests.
  const SLICE_MS = 12;
  let scanning = null; // the media left to examine, or null

  function scanAll() {
    timed("scan", () => {
      const out = [];
      considerPageMeta(out);
      state.index.addAll(doc);
      const fresh = !scanning;
      scanning = discover.mediaUnder(doc);
      for (const r of discover.shadowRootsUnder(doc)) {
        watchRoot(r);
        state.index.addAll(r);
        scanning.push(...discover.mediaUnder(r));
      }
      if (fresh) scanSlice(out);
      else dispatch(out); // the running scan goes on over the new list
    });
  }

  /** Examine media until SLICE_MS has passed, then yield; repeats until done. */
  function scanSlice(out = []) {
    const t0 = performance.now();
    const list = scanning;
    let i = 0;
    while (i < list.length) {
      const end = Math.min(list.length, i + 20); // check the clock every 20 items
      const found = [];
      for (; i < end; i++) if (list[i].isConnected) found.push(discover.examine(list[i], state.index, DEFER));
      consider(found, out);
      if (performance.now() - t0 > SLICE_MS) break;
    }
    list.splice(0, i);
    placeCached();
    if (list.length) {
      dispatch(out.splice(0, out.length - (out.length % items.MAX_BATCH)));
      const pending = out.splice(0);
      setTimeout(() => timed("scan", () => scanSlice(pending)), 0);
    } else {
      scanning = null;
      dispatch(out.splice(0));
    }
  }

  /** Re-examine media after claim scripts were added or changed. */
  function claimsAdded(records, targets) {
    for (const rec of records) {
      if (rec.url) for (const el of state.mediaByUrl.get(rec.url)) targets.add(el);
      if (rec.forId) {
        const el = doc.getElementById(rec.forId);
        if (el) for (const m of discover.mediaUnder(el)) targets.add(m);
      }
    }
  }

  const queue = new Set();
  let flushTimer = 0;
  let observer = null;
  const OBSERVE = { subtree: true, childList: true, attributes: true, attributeFilter: WATCHED_ATTRS };

  /** Run `fn` (which inserts badges) with the observer paused, so our own
   *  insertions cost no mutation records; the page's are kept. */
  function quietly(fn) {
    if (!observer) return fn();
    const records = observer.takeRecords();
    observer.disconnect();
    try {
      return fn();
    } finally {
      observer.observe(doc.documentElement, OBSERVE);
      for (const r of state.roots) observer.observe(r, OBSERVE);
      if (records.length) onMutations(records);
    }
  }

  /** Follow mutations inside an open shadow root (web components). */
  function watchRoot(r) {
    if (state.roots.has(r)) return;
    state.roots.add(r);
    if (observer) observer.observe(r, OBSERVE);
  }

  /** Media of `node` and of the open shadow roots under it. */
  function mediaDeep(node, claims) {
    const list = discover.mediaUnder(node);
    for (const r of discover.shadowRootsUnder(node)) {
      watchRoot(r);
      if (claims) claims.push(...state.index.addAll(r));
      list.push(...discover.mediaUnder(r));
    }
    return list;
  }

  /** A media element finished loading: if the bytes it shows changed,
   *  examine it again. */
  // Load events are gathered and handled in one task per LOAD_GATHER_MS:
  // a page of a thousand images fires a thousand of them.
  const LOAD_GATHER_MS = 20;
  let loads = [];
  let loadTimer = 0;

  // Only media whose load matters listens (responsive images, images
  // waiting for their bytes to be hashed): a page of a thousand plain
  // images then delivers none of its load events into this script.
  const loadWatched = new WeakSet();

  function listenLoad(el) {
    if (loadWatched.has(el) || el.tagName !== "IMG") return;
    loadWatched.add(el);
    el.addEventListener("load", onLoad);
    el.addEventListener("error", onLoad);
  }

  function onLoad(e) {
    const el = e.target;
    if (!el || (el.tagName !== "IMG" && el.tagName !== "VIDEO")) return;
    if (!state.awaitLoad.has(el)) {
      if (!hasher && !state.media.has(el)) return; // not ours: no cost
      // While the page loads the page hasher looks at every image at the
      // load event, and only a responsive image can change what it shows.
      if (doc.readyState !== "complete" && !responsive(el)) return;
    }
    loads.push(el, e.type);
    if (!loadTimer) loadTimer = setTimeout(loadedAll, LOAD_GATHER_MS);
  }

  function responsive(el) {
    return el.hasAttribute("srcset") || (el.parentElement !== null && el.parentElement.tagName === "PICTURE");
  }

  function loadedAll() {
    loadTimer = 0;
    const list = loads;
    loads = [];
    timed("load", () => {
      for (let i = 0; i < list.length; i += 2) loaded(list[i], list[i + 1]);
    });
  }

  function loaded(el, type) {
    if (hasher) hasher.loadedOrFailed(el);
    if (type === "error") return;
    const info = state.media.get(el);
    const shown = el.currentSrc ? el.currentSrc.split("#")[0] : null;
    // Shows other bytes than when it was examined (a candidate chosen or
    // switched, a new src or srcset arrived; Firefox names the old image in
    // currentSrc until the new one has loaded): examine it again, labelled
    // or not, since the new bytes may have a claim the old ones had not.
    if (state.awaitLoad.has(el) || (info && shown && shown !== info.mediaUrl)) {
      queue.add(el);
      if (!flushTimer) flushTimer = setTimeout(flush, 30);
    }
  }

  function mediaOf(node) {
    const tag = node.tagName;
    if (tag === "SOURCE" && node.parentElement) return mediaOf(node.parentElement);
    if (tag === "PICTURE") return discover.mediaUnder(node);
    if (tag === "IMG" || tag === "VIDEO" || tag === "AUDIO") return [node];
    return [];
  }

  function onMutations(records) {
    for (const r of records) {
      if (r.type === "childList") {
        const t = r.target;
        if (t.nodeType === 1 && t.tagName === "SCRIPT" && t.type === discover.CLAIM_TYPE) {
          state.index.scripts.delete(t); // its text changed: parse it again
          queue.add(t);
        } else if (t.nodeType === 1 && (t.tagName === "PICTURE" || t.tagName === "VIDEO" || t.tagName === "AUDIO")) {
          queue.add(t); // a <source> came or went
        }
        for (const n of r.addedNodes) if (n.nodeType === 1 && !OWN_TAGS.has(n.tagName)) queue.add(n);
        for (const n of r.removedNodes) if (n.nodeType === 1 && !OWN_TAGS.has(n.tagName)) state.removed.add(n);
      } else if (r.type === "attributes" && !OWN_TAGS.has(r.target.tagName)) {
        queue.add(r.target);
      }
    }
    if ((queue.size || state.removed.size) && !flushTimer) flushTimer = setTimeout(flush, 30);
  }

  /** Media taken out of the page (and not put back) lose their badges. */
  function forgetRemoved() {
    for (const node of state.removed) {
      if (node.isConnected) continue; // moved, not removed
      for (const el of discover.mediaUnder(node)) {
        const info = state.media.get(el);
        if (!info || el.isConnected) continue;
        if (info.key) unbind(info.key, el);
        unindexUrls(el, info.urls);
        state.media.delete(el);
        if (state.layer) state.layer.remove(el);
      }
    }
    state.removed.clear();
  }

  function flush() {
    flushTimer = 0;
    const out = [];
    timed("mutations", () => {
      const targets = new Set();
      const added = [];
      for (const node of queue) {
        if (!node.isConnected) continue;
        if (node.tagName === "SCRIPT") {
          if (node.type === discover.CLAIM_TYPE) added.push(...state.index.addScript(node));
          continue;
        }
        if (node.tagName === "META") {
          considerPageMeta(out);
          continue;
        }
        const direct = mediaOf(node);
        for (const m of direct.length ? direct : mediaDeep(node, added)) targets.add(m);
        if (node.querySelectorAll) {
          for (const s of node.querySelectorAll(discover.SCRIPT_SELECTOR)) added.push(...state.index.addScript(s));
        }
      }
      queue.clear();
      forgetRemoved();
      claimsAdded(added, targets);
      consider([...targets].map((el) => discover.examine(el, state.index, DEFER)), out);
      placeCached();
      dispatch(out);
    });
  }

  // --- messages and start-up ----------------------------------------------

  chrome.runtime.onMessage.addListener((message) => {
    if (!message || typeof message !== "object") return;
    if (message.type === "results" && message.results) apply(message.results);
    else if (message.type === "resync") {
      // The tab's list was reset by a new top document: report what we know.
      const entries = [];
      for (const [key, first] of state.byKey.firsts()) {
        const result = state.results.get(key);
        const info = first === "page" ? null : state.media.get(first);
        entries.push({ key, kind: first === "page" ? "page" : "media", mediaUrl: info && info.mediaUrl,
          labelled: state.labelled.has(key), known: result || null });
      }
      if (entries.length) send({ type: "report", entries });
    }
  });

  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && changes.checkUnlabelled) {
      state.settings.checkUnlabelled = !!changes.checkUnlabelled.newValue;
      if (state.settings.checkUnlabelled) scanAll(); // known keys are skipped
    }
  });

  // A page still loading is scanned at its load event, or SCAN_WAIT_MS
  // after this script started if that comes first: its verdicts are asked
  // for after the load event anyway, and its images are then hashed in one
  // hand-over instead of being looked for while they land, so the scan and
  // the hashing do not share the CPU with the page's own loading. A page
  // slow to load (a resource that hangs) is scanned meanwhile, and its
  // known verdicts shown.
  const SCAN_WAIT_MS = 3000;

  function loadedOrLater() {
    if (doc.readyState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, SCAN_WAIT_MS);
      root.addEventListener("load", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  async function start() {
    try {
      const stored = await chrome.storage.local.get({ checkUnlabelled: false });
      state.settings.checkUnlabelled = !!stored.checkUnlabelled;
    } catch (_) { /* defaults */ }
    const hello = await send({ type: "hello", top: isTop });
    if (hello && hello.wording) badge.useWording(hello.wording);
    await loadedOrLater();
    observer = new MutationObserver(onMutations);
    observer.observe(doc.documentElement, OBSERVE);
    scanAll();
  }

  start();
})(typeof globalThis !== "undefined" ? globalThis : this);
