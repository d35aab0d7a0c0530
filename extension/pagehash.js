/*
 * Hashing the bytes the page already has (content script side): a labelled
 * same-origin image is hashed once it has loaded, by fetching its URL again
 * from the page's own context with `cache: "force-cache"` (Fetch, §"request
 * cache mode"): the request goes to the page's HTTP cache partition, where
 * the image just landed, so no second download happens. Images are hashed
 * as they land, while the page still loads (a look at the `complete` flag
 * of the waiting ones every POLL_MS finds them: a listener per image, or a
 * Resource Timing observer, would run a callback per image), so little is
 * left at its load event. Entries leave in whole batches as their hashes come in, so
 * hashing and verification overlap. Images that never load (lazy and off
 * screen, failed) go without a hash: the worker hashes them or the server
 * fetches them, as before.
 */
(function (root) {
  "use strict";
  const ns = (root.labelcheck = root.labelcheck || {});

  const CONCURRENCY = 16; // cache reads in flight: a page of thousands hands them over at once
  const LOADING_CONCURRENCY = 2; // while the page loads: its own requests come first
  const MAX_BYTES = 50 * 1024 * 1024;
  const GRACE_MS = 1500; // after the page's load event (or a late insertion), for images still loading
  const PARTIAL_MS = 3000;
  const WORKER_SILENT_MS = 5000;
  const POST_MS = 30; // images loading meanwhile go to the worker in the same message
  const POLL_MS = 300; // while the page loads, how often waiting images are looked at
  // After the load event the worker hands its results over when it is idle
  // (every job done), else this long after the first one held: the entries
  // then leave while the worker is not also taking the CPU (on /demo/many
  // each cache read and digest costs the worker thread about 0.8 ms of CPU),
  // and each hand-over is a task on the page's thread.
  const RESULTS_MS = 2500; // well under WORKER_SILENT_MS
  // A poll stops after this many images still loading: they land roughly in
  // document order, and the load event looks at every one that was passed over.
  const POLL_MISSES = 200;

  function hex(buf) {
    const b = new Uint8Array(buf);
    let s = "";
    for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
    return s;
  }

  /** SHA-256 hex of `url`'s bytes as the page's cache holds them, or null. */
  async function hashCached(url) {
    try {
      const res = await fetch(url, { cache: "force-cache", credentials: "same-origin", redirect: "error" });
      if (!res.ok || Number(res.headers.get("content-length") || 0) > MAX_BYTES) return null;
      const body = await res.arrayBuffer();
      if (body.byteLength > MAX_BYTES) return null;
      return hex(await crypto.subtle.digest("SHA-256", body));
    } catch (_) {
      return null;
    }
  }

  // The same fetch and digest in a dedicated worker of the page (a blob:
  // worker shares the page's origin and HTTP cache partition): the page's
  // thread then spends one message per group of hashes, not a fetch, a
  // body and a digest per image. Results go back in groups: those made while
  // the page loads all at once at its load event (nothing is sent on before
  // it), then ("eager") as soon as the worker is idle, or RESULTS_MS after
  // the first one held. While the page loads only two
  // cache reads are in flight, so the page's own requests are not queued
  // behind ours; the rest goes at full speed after its load event.
  const WORKER_SOURCE = `"use strict";
const MAX = ${MAX_BYTES}, PARALLEL = ${CONCURRENCY}, LOADING = ${LOADING_CONCURRENCY}, WAIT = ${RESULTS_MS};
const hex = ${hex.toString()};
const queue = []; let running = 0; let out = []; let timer = 0; let eager = false;
async function one(url) {
  try {
    const res = await fetch(url, { cache: "force-cache", credentials: "same-origin", redirect: "error" });
    if (!res.ok || Number(res.headers.get("content-length") || 0) > MAX) return null;
    const body = await res.arrayBuffer();
    return body.byteLength > MAX ? null : hex(await crypto.subtle.digest("SHA-256", body));
  } catch (_) { return null; }
}
function flush() { timer = 0; if (out.length) { postMessage(out); out = []; } }
function pump() {
  while (running < (eager ? PARALLEL : LOADING) && queue.length) {
    const [id, url] = queue.shift();
    running++;
    one(url).then((sha) => {
      running--; out.push([id, sha]); pump();
      if (!eager) return; // held until the page's load event
      if (!running && !queue.length) flush();
      else if (!timer) timer = setTimeout(flush, WAIT);
    });
  }
}
onmessage = (e) => {
  eager = !!e.data.eager; queue.push(...e.data.jobs); pump();
  if (eager && out.length) flush();
};`;

  /** A page worker hashing URLs: `start(list of [id, url])`, results to
   *  `onResults(list of [id, sha | null])`; null when the page forbids it. */
  function pageWorker(onResults, onFailure) {
    try {
      const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
      const w = new Worker(url);
      URL.revokeObjectURL(url);
      w.onmessage = (e) => onResults(e.data);
      w.onerror = (e) => {
        if (e && e.preventDefault) e.preventDefault();
        onFailure();
      };
      return w;
    } catch (_) {
      return null; // CSP worker-src, or no Worker here
    }
  }

  /** Whether `el` shows `url` and has its bytes (loaded, decodable). */
  function loaded(el, url) {
    if (!el.complete || !(el.naturalWidth > 0)) return false;
    const shown = el.currentSrc || el.src;
    const i = shown.indexOf("#");
    return (i < 0 ? shown : shown.slice(0, i)) === url;
  }

  class PageHasher {
    /**
     * `dispatch(entries)` sends entries on; `timed(name, fn)` measures
     * main-thread work; `batch` is the worker's batch size.
     */
    constructor(doc, { dispatch, timed, batch = 100, watch = () => {} }) {
      this.doc = doc;
      this.watch = watch; // asks for loadedOrFailed(el) when `el` loads or fails
      this.dispatch = dispatch;
      this.timed = timed;
      this.batch = batch;
      this.waiting = new Map(); // element -> [entries] until it loads
      this.deadline = new Map(); // element -> time after which it goes without a hash
      this.queue = []; // [element, entries] ready to hash
      this.ready = []; // entries done (hashed or not), to send
      this.running = 0;
      this.timer = 0;
      this.flushTimer = 0;
      this.sendTimer = 0;
      this.worker = undefined; // made on first use; null: hash on this thread
      this.jobs = new Map(); // job id -> [entries, url] in the worker
      this.nextId = 1;
      this.postTimer = 0;
      this.pollTimer = 0;
      this.watchdog = 0;
      this.stats = { hashed: 0, failed: 0, unloaded: 0 };
      if (doc.readyState !== "complete") {
        doc.defaultView.addEventListener("load", () => this._atLoad(), { once: true });
      }
    }

    /** Whether an entry (for an element of lower-case tag name `tag`,
     *  showing `url`) is one to hash here: an image of the page's own
     *  origin, labelled, with the opt-in off. */
    static wants(tag, url, origin, settings) {
      if (settings.checkUnlabelled || tag !== "img" || !url) return false;
      return url.startsWith(origin) && url.charCodeAt(origin.length) === 47; // "/" after the origin
    }

    add(el, entry) {
      const url = entry.item.media_url;
      if (loaded(el, url)) {
        this.queue.push([el, [entry], url]);
        this._pump();
        return;
      }
      const list = this.waiting.get(el);
      if (list) list.push(entry);
      else this.waiting.set(el, [entry]);
      // While the page loads, a poll finds the images that landed (and the
      // load event the rest); afterwards each waits for its own load event.
      if (this.doc.readyState !== "complete") return this._pollSoon();
      this.watch(el);
      this._expireAt(el, performance.now() + GRACE_MS);
    }

    _pollSoon() {
      if (!this.pollTimer) this.pollTimer = setTimeout(() => this._poll(), POLL_MS);
    }

    /** While the page loads: hand the images that landed since the last look
     *  to the hasher (reading `complete` and `naturalWidth` forces no layout). */
    _poll() {
      this.pollTimer = 0;
      if (this.doc.readyState === "complete") return; // _atLoad took over
      this.timed("hash", () => {
        let misses = 0;
        for (const [el, list] of this.waiting) {
          const url = list[0].item.media_url;
          if (!loaded(el, url)) {
            if (++misses >= POLL_MISSES) break;
            continue;
          }
          this.waiting.delete(el);
          this.queue.push([el, list, url]);
        }
        this._pump();
      });
      // What landed goes to the worker in this task, not in one of its own.
      if (this.postTimer && this.worker) {
        clearTimeout(this.postTimer);
        this._post();
      }
      if (this.waiting.size) this._pollSoon();
    }

    /** An image finished loading (or failed): hash what waited for it. */
    loadedOrFailed(el) {
      if (this.doc.readyState !== "complete") return; // the poll and _atLoad look at every image
      const list = this.waiting.get(el);
      if (!list) return;
      this.waiting.delete(el);
      this.deadline.delete(el);
      const url = list[0].item.media_url;
      if (loaded(el, url)) this.queue.push([el, list, url]);
      else this._unhashed(list);
      this._pump();
    }

    /** The page's load event: hash every image that loaded, in one hand-over;
     *  the rest (lazy, failed) get GRACE_MS more. */
    _atLoad() {
      clearTimeout(this.pollTimer);
      this.pollTimer = 0;
      this.timed("hash", () => {
        const at = performance.now() + GRACE_MS;
        for (const [el, list] of this.waiting) {
          const url = list[0].item.media_url;
          if (loaded(el, url)) {
            this.waiting.delete(el);
            this.queue.push([el, list, url]);
          } else {
            this.watch(el);
            this._expireAt(el, at);
          }
        }
        this._pump();
      });
      clearTimeout(this.postTimer);
      if (this.worker) this._post(); // even with no new job: the worker turns eager
    }

    _expireAt(el, at) {
      if (!this.deadline.has(el)) this.deadline.set(el, at);
      if (!this.timer) this.timer = setTimeout(() => this._expire(), Math.max(0, at - performance.now()) + 5);
    }

    _expire() {
      this.timer = 0;
      this.timed("hash", () => {
        const now = performance.now();
        let next = Infinity;
        for (const [el, at] of this.deadline) {
          if (at > now) {
            next = Math.min(next, at);
            continue;
          }
          this.deadline.delete(el);
          const list = this.waiting.get(el);
          this.waiting.delete(el);
          if (list) this._unhashed(list);
        }
        if (next < Infinity) this.timer = setTimeout(() => this._expire(), next - now + 5);
        this._send();
      });
    }

    _unhashed(list) {
      this.stats.unloaded += list.length;
      this.ready.push(...list);
    }

    _pump() {
      if (this.worker === undefined) {
        this.worker = pageWorker((results) => this.timed("hash", () => this._results(results)), () => this._workerFailed());
      }
      if (this.worker) {
        if (this.queue.length && !this.postTimer) this.postTimer = setTimeout(() => this._post(), POST_MS);
        return this._send();
      }
      while (this.running < CONCURRENCY && this.queue.length) {
        const [, list, url] = this.queue.shift();
        this.running++;
        hashCached(url).then((sha) => this.timed("hash", () => this._done(list, sha)));
      }
      this._send();
    }

    /** Hand the images that loaded since the last hand-over to the worker, in one message. */
    _post() {
      this.postTimer = 0;
      if (!this.worker) return this._pump();
      this.timed("hash", () => {
        const jobs = [];
        for (const [, list, url] of this.queue.splice(0)) {
          const id = this.nextId++;
          this.jobs.set(id, [list, url]);
          jobs.push([id, url]);
        }
        this.running += jobs.length;
        this.worker.postMessage({ jobs, eager: this.doc.readyState === "complete" });
        this._watch();
      });
    }

    /** A worker that stops answering (a page or browser that lets it start
     *  but not fetch) is given up, and its jobs hashed on this thread. While
     *  the page loads it answers nothing by design: watched from its load event. */
    _watch() {
      clearTimeout(this.watchdog);
      const due = this.jobs.size && this.doc.readyState === "complete";
      this.watchdog = due ? setTimeout(() => this._workerFailed(), WORKER_SILENT_MS) : 0;
    }

    _results(results) {
      for (const [id, sha] of results) {
        const job = this.jobs.get(id);
        if (!job) continue;
        this.jobs.delete(id);
        this._finish(job[0], sha);
      }
      this._watch();
      this._pump();
    }

    /** The page's worker failed (blocked after creation): hash its jobs here. */
    _workerFailed() {
      clearTimeout(this.watchdog);
      if (this.worker) this.worker.terminate();
      this.worker = null;
      for (const [list, url] of this.jobs.values()) {
        this.running--;
        this.queue.push([null, list, url]);
      }
      this.jobs.clear();
      this._pump();
    }

    _done(list, sha) {
      this._finish(list, sha);
      this._pump();
    }

    _finish(list, sha) {
      this.running--;
      for (const e of list) {
        if (sha) e.item.content_sha256 = sha;
        this.ready.push(e);
      }
      if (sha) this.stats.hashed += list.length;
      else this.stats.failed += list.length;
    }

    /** Send a whole batch now (one per task: a page of thousands hands
     *  them over without one long task); a partial one when nothing else is
     *  about to join it. While the page loads nothing leaves: the worker
     *  would verify only after the load event anyway, and its work on the
     *  entries would compete with the page's own loading. */
    _send() {
      if (this.doc.readyState !== "complete") return;
      if (this.ready.length >= this.batch) {
        this.dispatch(this.ready.splice(0, this.batch));
        if (this.ready.length && !this.sendTimer) {
          this.sendTimer = setTimeout(() => {
            this.sendTimer = 0;
            this.timed("hash", () => this._send());
          }, 0);
        }
        return;
      }
      if (!this.ready.length) return;
      const hashing = this.running || this.queue.length;
      const idle = !hashing && !this.waiting.size;
      // A partial batch waits for more: while hashes are due (each result
      // looks again, and the worker's watchdog bounds the wait), or at most
      // PARTIAL_MS for images still loading. Whole batches, fewer requests.
      if (!idle && (hashing || this.flushTimer)) return;
      clearTimeout(this.flushTimer);
      this.flushTimer = setTimeout(() => {
        this.flushTimer = 0;
        if (this.ready.length) this.dispatch(this.ready.splice(0));
      }, idle ? 0 : PARTIAL_MS);
    }
  }

  ns.pagehash = { PageHasher, hashCached, hex };
})(typeof globalThis !== "undefined" ? globalThis : this);
