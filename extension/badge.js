/*
 * The <labelcheck-badge> element: a closed shadow root holding the label,
 * absolutely positioned over the media's top-left corner so the page's
 * layout never moves, plus its <labelcheck-details> panel.
 *
 * Content scripts in Chromium run in an isolated world without a
 * CustomElementRegistry, so the element is built directly (an autonomous
 * custom-element name may host a shadow root without being defined). The
 * shadow root is closed; status, category and wording are mirrored onto the
 * host's attributes for assistive technology and tests.
 */
(function (root) {
  "use strict";
  const ns = (root.labelcheck = root.labelcheck || {});
  const present = ns.present;

  const BADGE_TAG = "labelcheck-badge";
  const PANEL_TAG = "labelcheck-details";
  const Z = "2147483646";

  // Host rules marked !important win over the page's own !important rules
  // (CSS Cascade 5 §6.1: for important declarations the shadow context wins),
  // and one shared sheet costs nothing per badge. Margins and max-width stay
  // overridable: the badge layer corrects them inline.
  const HOST_RULES = `position: absolute !important; z-index: ${Z} !important; top: auto !important;
      left: auto !important; right: auto !important; bottom: auto !important; margin: 0;
      display: inline-block !important; vertical-align: top !important; width: max-content !important;
      float: none !important; transform: none !important; opacity: 1 !important;
      visibility: visible !important;`;

  // The host itself is the badge's box and its shadow root holds only the
  // text (icon and wording): no inner element and no ::before box, which
  // keeps style and layout of a thousand badges close to that of plain spans.
  // Overflow is clipped with "clip", not "hidden": a hidden overflow makes
  // each badge a scroll container with a layer of its own (on /demo/many
  // "hidden" cost some 7 ms more style and layout per thousand badges).
  const BADGE_CSS = `
    :host { all: initial; ${HOST_RULES}
      box-sizing: border-box !important; max-width: min(320px, 100%);
      padding: 3px 8px !important; border-radius: 4px !important; border: 2px solid #fff !important;
      font: 600 12px/1.3 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif !important;
      box-shadow: 0 1px 4px rgba(0,0,0,.45) !important; cursor: pointer !important;
      white-space: nowrap !important; overflow: clip !important; text-overflow: ellipsis !important;
      color: #fff !important; background: #374151 !important; }
    :host([data-tone=ok]) { background: #5b21b6 !important; }
    :host([data-tone=bad]) { background: #b91c1c !important; }
    :host([data-tone=warn]) { background: #92400e !important; }
    :host([data-scope=page]) { position: fixed !important; top: 8px !important; right: 8px !important;
      max-width: min(560px, 90vw); }
    :host([data-hidden]) { visibility: hidden !important; }
    /* The four failures differ in shape as well as icon and wording. */
    :host([data-state=tampered]) { border-radius: 0 !important; border-style: double !important; border-width: 3px !important; }
    :host([data-state=mismatch]) { border-style: dashed !important; }
    :host([data-state=unknown]) { border-style: dotted !important; border-radius: 10px !important; }
    :host([data-state=revoked]) { background: repeating-linear-gradient(135deg, #b91c1c 0 6px, #7f1d1d 6px 12px) !important; }
    /* Label sources disagree: a yellow frame and the ⇄ mark. */
    :host([conflict]) { box-shadow: 0 0 0 2px #facc15, 0 1px 4px rgba(0,0,0,.45) !important; }
    /* On small media only the icon chip shows; the wording on hover and focus. */
    :host([data-compact]) { width: 20px !important; height: 20px !important; max-width: none !important;
      padding: 0 !important; border-width: 1px !important; text-align: center !important;
      font-size: 12px !important; line-height: 18px !important; overflow: clip !important; }
    :host([data-compact]:hover), :host([data-compact]:focus) { width: max-content !important; height: auto !important;
      padding: 2px 6px !important; }
    :host([data-compact]:hover)::after, :host([data-compact]:focus)::after { content: "\\2002" attr(data-label); }
    :host(:focus-visible), :host(:focus) { outline: 3px solid #facc15 !important; outline-offset: 1px !important; }`;

  // A badge not yet moved: at its static position, full width.
  const NO_BOX = Object.freeze({ top: 0, left: 0, maxWidth: 0, hidden: false });

  // Handling box reports yields after this much work.
  const ALIGN_SLICE_MS = 8;

  // Media narrower or lower than this gets the compact icon chip.
  const COMPACT_PX = 120;

  const PANEL_CSS = `
    :host { all: initial; ${HOST_RULES} }
    :host([data-scope=page]) { position: fixed !important; top: 40px !important; right: 8px !important; }
    .p { box-sizing: border-box; min-width: 220px; max-width: 360px; padding: 10px 12px;
      background: #fff; color: #111827; border: 2px solid #111827; border-radius: 6px;
      font: 13px/1.4 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif;
      box-shadow: 0 4px 16px rgba(0,0,0,.35); }
    h2 { font-size: 14px; margin: 0 0 6px; }
    dl { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; }
    dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
    dd.failed { color: #b91c1c; font-weight: 600; } dd.unchecked { color: #92400e; }
    button { margin-top: 8px; font: inherit; padding: 2px 10px; }`;

  const shadows = new WeakMap(); // host -> closed shadow root
  const sheets = new Map(); // css text -> shared CSSStyleSheet (or null: use <style>)

  /** Style a shadow root: one constructable sheet shared by every badge
   *  (cheap style recalc for thousands), else a <style> element. */
  function adoptStyle(doc, shadow, css) {
    if (!sheets.has(css)) {
      let sheet = null;
      try {
        const win = doc.defaultView;
        sheet = new win.CSSStyleSheet();
        sheet.replaceSync(css);
        shadow.adoptedStyleSheets = [sheet];
      } catch (_) {
        sheet = null;
      }
      sheets.set(css, sheet);
      if (sheet) return;
    }
    const sheet = sheets.get(css);
    if (sheet) {
      shadow.adoptedStyleSheets = [sheet];
    } else {
      const style = doc.createElement("style");
      style.textContent = css;
      shadow.append(style);
    }
  }

  // Messages are looked up once each: a page may show a thousand badges.
  const messages = new Map();

  let wording = null; // message name -> template from the worker (see useWording)

  /** The worker's wording: each message formatted with U+E000…U+E008
   *  where substitutions $1…$9 go, so no message costs a synchronous
   *  chrome.i18n round trip on the page's thread. */
  function useWording(table) {
    if (table && typeof table === "object") wording = table;
  }

  function fromTemplate(name, subs) {
    const t = wording && wording[name];
    if (typeof t !== "string" || !t) return null;
    return t.replace(/[\uE000-\uE008]/g, (c) => {
      const v = subs ? subs[c.charCodeAt(0) - 0xe000] : undefined;
      return v === undefined || v === null ? "" : String(v);
    });
  }

  function message(name, subs) {
    const key = subs ? `${name}\u0000${subs.join("\u0000")}` : name;
    let text = messages.get(key);
    if (text === undefined) {
      text = fromTemplate(name, subs);
      if (text === null) {
        try {
          text = (root.chrome && chrome.i18n && chrome.i18n.getMessage(name, subs)) || name;
        } catch (_) {
          text = name; // extension context gone (reloaded): keep the page unharmed
        }
      }
      if (messages.size < 500) messages.set(key, text);
    }
    return text;
  }

  function msgFn() {
    return message;
  }

  /** Create a badge host for `result`; `page` marks the page-level badge.
   *  The host and its label are cloned from templates prepared once per
   *  look (cloning copies every attribute natively), so a badge costs a
   *  clone, a closed shadow root and the shared sheet.
   *  Clicks and keys reach it through one listener on the document. */
  function createBadge(doc, result, opts = {}) {
    listen(doc);
    const look = lookOf(result, !!opts.page);
    const t = templateOf(doc, look);
    const compact = !!opts.compact && !look.page;
    const host = variantOf(t, compact, opts.css || "").cloneNode(false);
    host._labelcheckCompact = compact; // mirrors data-compact, read without a DOM call
    const shadow = host.attachShadow({ mode: "closed" });
    shadows.set(host, shadow);
    adoptStyle(doc, shadow, BADGE_CSS);
    shadow.append((compact ? t.chip : t.text).cloneNode(false));
    host._labelcheckResult = result;
    host._labelcheckLook = look;
    return host;
  }

  /** The look's template host (every static and mirrored attribute set)
   *  and label, made in `doc` on first use. */
  function templateOf(doc, look) {
    if (look.doc === doc) return look.template;
    const host = doc.createElement(BADGE_TAG);
    host.setAttribute("role", "button");
    host.setAttribute("tabindex", "0");
    host.setAttribute("aria-haspopup", "dialog");
    host.setAttribute("aria-expanded", "false");
    if (look.page) host.setAttribute("data-scope", "page");
    mirror(host, look);
    look.doc = doc;
    look.template = { host, text: doc.createTextNode(look.text), chip: doc.createTextNode(look.icon), variants: new Map() };
    return look.template;
  }

  /** The template host with the compact mark and inline style `css` already
   *  set: badges in one container share both, and cloning copies them
   *  without a DOM call or a style parse per badge. */
  function variantOf(t, compact, css) {
    if (!compact && !css) return t.host;
    const key = `${compact ? 1 : 0}${css}`;
    let v = t.variants.get(key);
    if (!v) {
      v = t.host.cloneNode(false);
      if (compact) v.setAttribute("data-compact", "");
      if (css) v.style.cssText = css;
      if (t.variants.size < 32) t.variants.set(key, v);
    }
    return v;
  }

  /** Status, category and wording onto the host, for assistive technology and tests. */
  function mirror(host, look) {
    host.setAttribute("status", look.status);
    if (look.category) host.setAttribute("category", look.category);
    else host.removeAttribute("category");
    host.setAttribute("data-state", look.state);
    host.setAttribute("data-tone", look.tone);
    host.setAttribute("data-label", look.short);
    host.setAttribute("aria-label", look.full);
    host.setAttribute("title", look.full);
    host.toggleAttribute("conflict", look.conflict);
  }

  const listening = new WeakSet();

  /** One click and one keydown listener per document (capture phase, so a
   *  page handler cannot swallow them first); a closed shadow retargets
   *  events to the badge host. */
  function listen(doc) {
    if (listening.has(doc)) return;
    listening.add(doc);
    // A badge inside a web component's open shadow root reaches the
    // document retargeted to the component: the path's first node is ours.
    const badgeOf = (e) => {
      const first = e.composedPath ? e.composedPath()[0] : e.target;
      return first && first.tagName === "LABELCHECK-BADGE" ? first : null;
    };
    doc.addEventListener("click", (e) => {
      const host = badgeOf(e);
      if (!host) return;
      e.preventDefault(); // a badge inside a link must not follow it
      e.stopPropagation();
      toggleDetails(host);
    }, true);
    doc.addEventListener("keydown", (e) => {
      const host = badgeOf(e);
      if (!host) return;
      if (e.key === "Enter" || e.key === " " || e.key === "Spacebar") {
        e.preventDefault();
        e.stopPropagation();
        toggleDetails(host);
      } else if (e.key === "Escape") {
        closeDetails(host);
      }
    }, true);
  }

  // What a badge shows depends on status, category and display state only.
  const looks = new Map();

  function lookOf(result, page) {
    const state = present.stateOf(result);
    const status = (result && result.status) || "unchecked";
    const conflict = present.hasConflict(result);
    // Registry wording names the producer: part of the look.
    const named = state === "similar" || state === "registered" ? present.registryProducer(result) : "";
    const key = `${status}|${result && result.category}|${state}|${page ? 1 : 0}|${conflict ? 1 : 0}|${named}`;
    let look = looks.get(key);
    if (!look) {
      const msg = msgFn();
      const w = present.wording(result, msg);
      const short = page ? msg("page_badge", [msg("page_label"), w.short]) : w.short;
      const tone = present.toneOf(state);
      const full = msg("badge_full", [conflict ? `${short} (${msg("conflict_mark")})` : short]);
      const icon = `${present.iconOf(state)}${conflict ? "\u21C4" : ""}`;
      look = { status, category: w.category, state, tone, short, full, conflict, icon,
        text: `${icon}\u2002${short}`, page: !!page, doc: null, template: null };
      if (looks.size < 200) looks.set(key, look);
    }
    return look;
  }

  /** Show the icon chip only (small media) or the full wording. */
  function setCompact(host, compact) {
    if (host._labelcheckCompact === compact) return;
    host._labelcheckCompact = compact;
    const look = host._labelcheckLook;
    host.toggleAttribute("data-compact", compact);
    fillText(host, look);
  }

  function fillText(host, look) {
    const shadow = shadows.get(host);
    if (!host._labelcheckCompact) {
      shadow.textContent = look.text;
      return;
    }
    shadow.textContent = look.icon;
  }

  /** Show `result` on an existing badge (wording, colour, mirrored attributes). */
  function update(host, result, opts = {}) {
    const look = lookOf(result, opts.page || host.getAttribute("data-scope") === "page");
    if (host._labelcheckLook !== look) {
      mirror(host, look);
      host._labelcheckLook = look;
      fillText(host, look);
    }
    host._labelcheckResult = result;
    const panel = host._labelcheckPanel;
    if (panel && panel.isConnected) fillDetails(panel, host);
  }

  function fillDetails(panel, host) {
    const shadow = shadows.get(panel);
    const msg = msgFn();
    const result = host._labelcheckResult;
    const doc = panel.ownerDocument;
    const dl = shadow.querySelector("dl");
    dl.textContent = "";
    const lines = [host.getAttribute("data-label")];
    const rows = present.details(result, msg);
    if (host._labelcheckMedia) rows.unshift(["details_media", host._labelcheckMedia]);
    const check = present.receiptCheck(result, msg);
    for (const [name, value] of rows) {
      const dt = doc.createElement("dt");
      dt.textContent = msg(name);
      const dd = doc.createElement("dd");
      dd.textContent = value;
      if (name === "details_receipt_check" && check.state !== "ok") dd.className = check.state;
      dl.append(dt, dd);
      lines.push(`${msg(name)}: ${value}`);
    }
    panel.setAttribute("data-text", lines.join("\n"));
    const r = result && result.receipt;
    if (r && r.index !== undefined && r.index !== null) panel.setAttribute("data-receipt-index", String(r.index));
    const p = result && result.producer;
    if (p && p.name) panel.setAttribute("data-producer", p.name);
    if (check) panel.setAttribute("data-receipt-check", check.state);
  }

  function toggleDetails(host) {
    if (host._labelcheckPanel && host._labelcheckPanel.isConnected) closeDetails(host);
    else openDetails(host);
  }

  function openDetails(host) {
    const doc = host.ownerDocument;
    const msg = msgFn();
    const panel = doc.createElement(PANEL_TAG);
    const shadow = panel.attachShadow({ mode: "closed" });
    shadows.set(panel, shadow);
    adoptStyle(doc, shadow, PANEL_CSS);
    const box = doc.createElement("div");
    box.className = "p";
    const h = doc.createElement("h2");
    h.textContent = host.getAttribute("data-label");
    const dl = doc.createElement("dl");
    const close = doc.createElement("button");
    close.type = "button";
    close.textContent = msg("details_close");
    close.addEventListener("click", (e) => {
      e.preventDefault();
      e.stopPropagation();
      closeDetails(host);
    });
    box.append(h, dl, close);
    shadow.append(box);
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", msg("details_title"));
    panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") closeDetails(host);
    });
    panel.addEventListener("click", (e) => e.stopPropagation());
    const page = host.getAttribute("data-scope") === "page";
    if (page) panel.setAttribute("data-scope", "page");
    host._labelcheckPanel = panel;
    fillDetails(panel, host);
    host.after(panel);
    if (!page) {
      const box = host._labelcheckBox || { top: 0, left: 0 };
      panel.style.setProperty("margin-top", `${box.top + host.offsetHeight + 4}px`, "important");
      panel.style.setProperty("margin-left", `${box.left}px`, "important");
    }
    host.setAttribute("aria-expanded", "true");
    close.focus();
  }

  function closeDetails(host) {
    const panel = host._labelcheckPanel;
    if (!panel) return;
    const hadFocus = panel.ownerDocument.activeElement === panel;
    panel.remove();
    host._labelcheckPanel = null;
    host.setAttribute("aria-expanded", "false");
    if (hadFocus) host.focus();
  }

  /**
   * Keeps badges over their media without reading layout on the main path.
   * Each badge is an absolutely positioned sibling inserted just before its
   * media, with top/left left "auto": the engine then puts it at its static
   * position, which is the media's top-left corner, and keeps it there
   * through scrolling and reflow. (An absolutely positioned box never takes
   * part in flow, flex or grid layout, so the page does not move.) Where the
   * static position is off (inline media on a taller line, or at a line
   * wrap), one IntersectionObserver report, which carries both boxes
   * without forcing a layout, gives the offset to correct with `translate`,
   * which moves the badge without laying out its container again.
   */
  /** Is a box small enough for the compact icon chip? */
  function isSmall(box) {
    return box.width > 0 && box.height > 0 && (box.width < COMPACT_PX || box.height < COMPACT_PX);
  }

  /** The box promised by the media's width and height attributes (HTML
   *  §15.4.3 "maps to the dimension property"), read without layout; the
   *  check on the next report corrects a page whose CSS resizes it. */
  function sizeHint(media) {
    const w = media.getAttribute("width");
    const h = media.getAttribute("height");
    if (w === null || h === null) return null;
    const width = Number(w);
    const height = Number(h);
    return width > 0 && height > 0 ? { width, height } : null;
  }

  /** Has the media its final box (image decoded, video metadata known)? */
  function isSettled(media) {
    const tag = media.tagName;
    if (tag === "IMG") return media.complete && media.naturalWidth > 0;
    if (tag === "VIDEO") return media.readyState >= 1;
    return true;
  }

  class BadgeLayer {
    constructor(doc, { measure } = {}) {
      this.doc = doc;
      this.measure = measure || ((name, fn) => fn());
      this.badges = new Map(); // media element -> badge host
      this.pageBadge = null;
      this._rects = new Map(); // element -> latest reported box
      this._aligning = new Set(); // media waiting for their boxes
      this._fresh = new Set(); // media whose new badge is not inserted yet
      this._offsets = new WeakMap(); // parent node -> the offset its badges are expected to need
      this._frame = 0;
      this._holding = false; // badges made now wait for flushInserts
      this._held = new Map(); // media -> [badge host, anchor] made while holding, not inserted yet
      this._watched = new WeakSet(); // media whose box may still change (loading, no box yet)
      this._sizes = new WeakMap(); // media -> last size ResizeObserver reported
      const win = doc.defaultView;
      // A badge placed before its media had a box (lazy, slow or cached
      // verdicts) is aligned again when the media gets or changes its box.
      this._ro = win && typeof win.ResizeObserver === "function"
        ? new win.ResizeObserver((entries) => this.measure("resize", () => this._onResize(entries)))
        : null;
      this._io = win && typeof win.IntersectionObserver === "function"
        ? new win.IntersectionObserver((entries) => this._reported(entries))
        : null;
      this._reports = []; // IntersectionObserver entries not handled yet
      this._reportTimer = 0;
      if (win) {
        win.addEventListener("resize", () => this.align([...this.badges.keys()]), { passive: true });
        // An inner scroller that is not the badge's containing block moves
        // the media but not the badge: realign on such scrolls.
        doc.addEventListener("scroll", (e) => {
          if (e.target !== doc) this.schedule();
        }, { capture: true, passive: true });
      }
    }

    static anchorBox(media) {
      const parent = media.parentElement;
      return parent && parent.tagName === "PICTURE" ? parent : media;
    }

    /** Show `result` on `media`, creating its badge before it. */
    set(media, result, mediaUrl) {
      let host = this.badges.get(media);
      if (host) {
        update(host, result);
        const anchor = BadgeLayer.anchorBox(media);
        if (!this._fresh.has(media) && !this._held.has(media) && host.nextSibling !== anchor &&
            host._labelcheckPanel !== host.nextSibling) {
          anchor.before(host); // moved
        }
      } else {
        // Media sized by its width and height attributes is badged now, from
        // them; other media gets its badge from its first reported box.
        const hint = sizeHint(media);
        const place = hint ? this._placement(media, hint) : null;
        host = createBadge(this.doc, result, place ? { compact: place.compact, css: place.css } : {});
        this.badges.set(media, host);
        if (place) this._insert(media, host, hint, this._holding, place, true);
        else this._fresh.add(media);
      }
      host._labelcheckMedia = mediaUrl || host._labelcheckMedia || null;
      return host;
    }

    /**
     * Insert the new badges in one pass of writes, after one pass of reads:
     * each media's box (read while the page's layout is still clean, so no
     * extra layout), giving the badge's max-width on narrow media (badges
     * are never wider than their media), and the offset last
     * found for badges in the same parent, so badges in a grid or a list
     * start where they belong and need no second layout to correct.
     */
    _placeFresh() {
      if (!this._fresh.size) return;
      const fresh = [...this._fresh];
      this._fresh.clear();
      const boxes = fresh.map((media) => media.getBoundingClientRect());
      fresh.forEach((media, i) => {
        const host = this.badges.get(media);
        if (host) this._insert(media, host, boxes[i]);
      });
    }

    /** Badges made from now on wait for flushInserts: a pass that spans
     *  several tasks then changes the page once, costing one style and
     *  layout of the badges' containers instead of one per task. */
    holdInserts() {
      this._holding = true;
    }

    /** Insert the held badges, in one burst of writes. */
    flushInserts() {
      this._holding = false;
      if (!this._held.size) return;
      for (const [media, [host, anchor]] of this._held) {
        if (this.badges.get(media) !== host || !media.isConnected) continue;
        (anchor === media ? media : BadgeLayer.anchorBox(media)).before(host);
        if (this._io && this._aligning.has(media)) this._io.observe(host);
      }
      this._held.clear();
    }

    /** Insert `host` before its media (box `m`), sized for it, at the offset
     *  the last badge in the same parent needed (or hold it: `hold`). */
    _insert(media, host, m, hold = false, place = this._placement(media, m), styled = false) {
      const { anchor, box, compact, css } = place;
      if (compact) setCompact(host, true);
      host._labelcheckBox = box;
      if (css && !styled) host.style.cssText = css;
      if (hold) this._held.set(media, [host, anchor]);
      else anchor.before(host);
    }

    /** Where a new badge for `media` (box `m`) goes: its anchor, its box
     *  (the offset the last badge in the same parent needed, max-width on
     *  narrow media), whether it is compact, and its inline style. */
    _placement(media, m) {
      const anchor = BadgeLayer.anchorBox(media);
      const parent = anchor.parentNode;
      const guess = this._guess(anchor, parent);
      const compact = isSmall(m);
      const box = { top: guess.top, left: guess.left, hidden: false,
        maxWidth: !compact && m.width > 0 && m.width < 320 ? Math.round(m.width) : 0 };
      return { anchor, box, compact, css: BadgeLayer.css(box) };
    }

    /** The offset a badge in `parent` is expected to need: the one its
     *  neighbours needed, else the anchor's margins (an absolutely positioned
     *  box's static position is its next sibling's margin edge; media is
     *  usually the tallest thing on its line), read once per parent. */
    _guess(anchor, parent) {
      let guess = parent ? this._offsets.get(parent) : null;
      if (guess) return guess;
      guess = { top: 0, left: 0 };
      const win = this.doc.defaultView;
      if (win && parent) {
        const cs = win.getComputedStyle(anchor);
        guess = { top: parseFloat(cs.marginTop) || 0, left: parseFloat(cs.marginLeft) || 0 };
        this._offsets.set(parent, guess);
      }
      return guess;
    }

    static css(box) {
      let css = box.top || box.left ? `translate: ${box.left}px ${box.top}px !important;` : "";
      if (box.maxWidth) css += ` max-width: ${box.maxWidth}px !important;`;
      return css;
    }

    remove(media) {
      const host = this.badges.get(media);
      if (!host) return;
      closeDetails(host);
      host.remove();
      this.badges.delete(media);
      this._held.delete(media);
      this._fresh.delete(media);
      this._aligning.delete(media);
      this._unwatch(media);
      if (this._io) {
        this._io.unobserve(media);
        this._io.unobserve(host);
      }
    }

    setPage(result) {
      if (this.pageBadge) update(this.pageBadge, result, { page: true });
      else {
        this.pageBadge = createBadge(this.doc, result, { page: true });
        (this.doc.body || this.doc.documentElement).append(this.pageBadge);
      }
      return this.pageBadge;
    }

    /**
     * Check the badges of `mediaList` against their media on the next
     * report. New badges are inserted from the media's first report (which
     * the engine computes in its own rendering step), so placing them never
     * forces a layout while the page is still loading.
     */
    align(mediaList) {
      if (!this._io) {
        this._placeFresh();
        this.schedule();
        return;
      }
      for (const media of mediaList) {
        const host = this.badges.get(media);
        if (!host) continue;
        this._aligning.add(media);
        host._labelcheckFor = media;
        this._io.observe(media);
        if (!this._fresh.has(media) && !this._held.has(media)) this._io.observe(host); // else once inserted
      }
    }

    /** Insert new badges whose media just reported its box `m`, in one pass of writes. */
    _insertFresh(list) {
      for (const [media, m] of list) {
        this._fresh.delete(media);
        const host = this.badges.get(media);
        if (!host) continue;
        this._insert(media, host, m);
        this._io.observe(host);
      }
    }

    /** Reports of a thousand boxes are handled in slices of ALIGN_SLICE_MS,
     *  so no task of ours runs long (a media's and its badge's reports may
     *  fall in different slices: their boxes are paired when both are in). */
    _reported(entries) {
      for (const e of entries) this._reports.push(e);
      if (!this._reportTimer) this._onReports();
    }

    _onReports() {
      this._reportTimer = 0;
      let n = 0;
      this.measure("align", () => {
        const t0 = performance.now();
        while (n < this._reports.length) {
          this._onBoxes(this._reports.slice(n, n + 100));
          n += 100;
          if (performance.now() - t0 > ALIGN_SLICE_MS) break;
        }
      });
      this._reports.splice(0, n);
      if (this._reports.length) this._reportTimer = setTimeout(() => this._onReports(), 0);
    }

    _onBoxes(entries) {
      const ready = new Set();
      const fresh = [];
      for (const e of entries) {
        // Each value read once: on an entry and its DOMRect every read is a call into the engine.
        const t = e.target;
        const r = e.boundingClientRect;
        const box = { top: r.top, left: r.left, width: r.width, height: r.height };
        this._rects.set(t, box);
        const media = t._labelcheckFor || t;
        if (t === media && this._fresh.has(media)) fresh.push([media, box]);
        else ready.add(media);
      }
      if (fresh.length) this._insertFresh(fresh);
      const moves = [];
      for (const media of ready) {
        if (!this._aligning.has(media)) continue;
        const host = this.badges.get(media);
        const m = this._rects.get(media);
        const h = host && this._rects.get(host);
        if (!host || !m || !h) continue;
        this._aligning.delete(media);
        this._rects.delete(media);
        this._rects.delete(host);
        this._io.unobserve(media);
        this._io.unobserve(host);
        moves.push([host, m, h, media]);
      }
      for (const [host, m, h, media] of moves) this._shift(host, m, h, media);
    }

    _onResize(entries) {
      const again = [];
      for (const e of entries) {
        const r = e.contentRect;
        const was = this._sizes.get(e.target);
        this._sizes.set(e.target, [r.width, r.height]);
        if (was && was[0] === r.width && was[1] === r.height) continue;
        if (this.badges.has(e.target)) again.push(e.target);
      }
      if (again.length) this.align(again);
    }

    /** Keep watching `media`'s size while it may still change. */
    _watch(media, unsettled) {
      if (!this._ro) return;
      if (unsettled && !this._watched.has(media)) {
        this._watched.add(media);
        this._ro.observe(media);
      } else if (!unsettled) {
        this._unwatch(media);
      }
    }

    _unwatch(media) {
      if (this._ro && this._watched.has(media)) {
        this._watched.delete(media);
        this._sizes.delete(media);
        this._ro.unobserve(media);
      }
    }

    /** Move `host` by the offset between the media box `m` and its box `h`,
     *  in one style write (none when nothing changes). Most badges are where
     *  they were put: then nothing is allocated or written. */
    _shift(host, m, h, media) {
      const was = host._labelcheckBox || NO_BOX;
      const hidden = !(m.width > 0 && m.height > 0);
      if (media) this._watch(media, hidden || !isSettled(media));
      let { top, left, maxWidth } = was;
      if (!hidden) {
        const compact = isSmall(m);
        setCompact(host, compact);
        // Never wider than the media (the full wording stays in aria-label).
        if (compact) maxWidth = 0;
        else if (h.width > m.width + 0.5 || was.maxWidth) maxWidth = Math.round(m.width);
        const dy = m.top - h.top;
        const dx = m.left - h.left;
        if (Math.abs(dy) >= 0.5 || Math.abs(dx) >= 0.5) {
          top = Math.round((was.top + dy) * 100) / 100;
          left = Math.round((was.left + dx) * 100) / 100;
        }
        // Only an offset on the media's own line is a guess for its neighbours
        // (one at a line wrap moves the badge back from the previous line's end).
        const parent = host.parentNode;
        if (parent && Math.abs(left) < m.width && Math.abs(top) < m.height) {
          const guess = this._offsets.get(parent);
          if (!guess || guess.top !== top || guess.left !== left) this._offsets.set(parent, { top, left });
        }
      }
      if (hidden !== was.hidden) host.toggleAttribute("data-hidden", hidden);
      const moved = top !== was.top || left !== was.left || maxWidth !== was.maxWidth;
      if (moved || hidden !== was.hidden || was === NO_BOX) host._labelcheckBox = { top, left, maxWidth, hidden };
      if (moved) host.style.cssText = BadgeLayer.css(host._labelcheckBox);
    }

    schedule() {
      if (this._frame) return;
      const win = this.doc.defaultView;
      const run = () => {
        this._frame = 0;
        this.measure("reposition", () => this.reposition());
      };
      this._frame = win && win.requestAnimationFrame ? win.requestAnimationFrame(run) : setTimeout(run, 16);
    }

    /** Realign every badge now (reads layout: used only after inner scrolls
     *  or where IntersectionObserver is missing). */
    reposition() {
      const moves = [];
      for (const [media, host] of this.badges) {
        if (!media.isConnected) {
          this.remove(media);
          continue;
        }
        if (!host.isConnected) BadgeLayer.anchorBox(media).before(host);
        moves.push([host, media.getBoundingClientRect(), host.getBoundingClientRect(), media]);
      }
      for (const [host, m, h, media] of moves) this._shift(host, m, h, media);
    }
  }

  ns.badge = { BADGE_TAG, PANEL_TAG, COMPACT_PX, createBadge, update, useWording, BadgeLayer };
})(typeof globalThis !== "undefined" ? globalThis : this);
