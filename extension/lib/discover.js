/*
 * Finding label claims and label signals on a page (docs/protocol.md §2): the
 * data-labelcheck-claim attribute, claim <script> elements matched by
 * content.url or data-labelcheck-for, and the page-level <meta name="AIGC">.
 * Works on any DOM-like tree (querySelectorAll, getAttribute, tagName,
 * children, parentElement, textContent), so node tests can use a small fake.
 */
(function (root, factory) {
  const ns = root.labelcheck || {};
  const api = factory(
    ns.base64url || (typeof require === "function" ? require("./base64url.js") : null),
    ns.urls || (typeof require === "function" ? require("./urls.js") : null),
  );
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).discover = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (base64url, urls) {
  "use strict";

  const CLAIM_TYPE = "application/vnd.labelcheck.claim+json";
  const CLAIM_ATTR = "data-labelcheck-claim";
  const FOR_ATTR = "data-labelcheck-for";
  // <picture> is reached through its <img>, which is where a badge sits.
  const MEDIA_SELECTOR = "img, video, audio";
  const SCRIPT_SELECTOR = `script[type="${CLAIM_TYPE}"]`;
  const MAX_CLAIM_CHARS = 65536 * 2; // the server refuses envelopes over 64 KiB anyway

  /** A DSSE envelope's shape (not its signature: the server checks that). */
  function isEnvelope(obj) {
    return (
      obj !== null && typeof obj === "object" && !Array.isArray(obj) &&
      typeof obj.payloadType === "string" && typeof obj.payload === "string" &&
      Array.isArray(obj.signatures)
    );
  }

  /** The envelope in a data-labelcheck-claim value: {envelope} or {error}. */
  function parseAttributeClaim(value) {
    if (typeof value !== "string" || value.length > MAX_CLAIM_CHARS) return { error: "malformed" };
    let obj;
    try {
      obj = JSON.parse(base64url.decodeText(value.trim()));
    } catch (_) {
      return { error: "malformed" };
    }
    return isEnvelope(obj) ? { envelope: obj, text: value } : { error: "malformed" };
  }

  /** Envelopes in a claim <script>: one envelope or an array of them.
   *  Returns {envelopes, error}; entries that are not envelopes are dropped. */
  function parseClaimScript(text) {
    if (typeof text !== "string" || text.length > MAX_CLAIM_CHARS * 100) {
      return { envelopes: [], error: "malformed" };
    }
    let obj;
    try {
      obj = JSON.parse(text);
    } catch (_) {
      return { envelopes: [], error: "malformed" };
    }
    const list = Array.isArray(obj) ? obj : [obj];
    const envelopes = list.filter(isEnvelope);
    return { envelopes, error: envelopes.length === list.length ? null : "malformed" };
  }

  /** The decoded payload object of an envelope (payload is standard
   *  base64 of JSON), or null. Only used to read content.url for matching. */
  function payloadOf(envelope) {
    try {
      const obj = JSON.parse(base64url.decodeText(envelope.payload));
      return obj && typeof obj === "object" ? obj : null;
    } catch (_) {
      return null;
    }
  }

  /** GB 45438 label from a <meta name="AIGC"> content: the inner object
   *  ({"Label":"1",…}) or the {"AIGC":{…}} wrapper. {label} or {error}. */
  function parseAigcMeta(content) {
    let obj;
    try {
      obj = JSON.parse(content);
    } catch (_) {
      return { error: "malformed" };
    }
    if (obj && typeof obj === "object" && !Array.isArray(obj) && obj.AIGC && typeof obj.AIGC === "object") {
      obj = obj.AIGC;
    }
    if (!obj || typeof obj !== "object" || Array.isArray(obj) || !("Label" in obj)) {
      return { error: "malformed" };
    }
    return { label: obj };
  }

  const CATEGORY = { 1: "confirmed", 2: "possible", 3: "suspected" };

  /** The verdict category of a GB 45438 Label value ("1" | "2" | "3"). */
  function categoryOf(label) {
    return CATEGORY[String(label)] || null;
  }

  /** The page-level AIGC meta tags of `doc`: [{content, label?, error?}]. */
  function findPageMeta(doc) {
    const out = [];
    for (const m of doc.querySelectorAll("meta[name]")) {
      const name = m.getAttribute("name");
      if (!name || name.toLowerCase() !== "aigc") continue;
      const content = m.getAttribute("content") || "";
      out.push(Object.assign({ content }, parseAigcMeta(content)));
    }
    return out;
  }

  /**
   * Claims from <script type="application/vnd.labelcheck.claim+json">,
   * indexed by resolved content.url and by data-labelcheck-for id. Scripts
   * are added one at a time, so late scripts never force a full rescan.
   */
  class ClaimIndex {
    constructor(baseUrl) {
      this.baseUrl = baseUrl;
      this.byUrl = new Map();
      this.byId = new Map();
      this.scripts = new Set();
      this.malformed = 0;
    }

    /** Index one script element; returns the claims it added
     *  ([{envelope, url, forId}]), or [] if it was seen already. */
    addScript(script) {
      if (this.scripts.has(script)) return [];
      this.scripts.add(script);
      const { envelopes, error } = parseClaimScript(script.textContent);
      if (error) this.malformed++;
      const forId = script.getAttribute(FOR_ATTR);
      const added = [];
      for (const envelope of envelopes) {
        const payload = payloadOf(envelope);
        const content = payload && payload.content;
        const url = content && typeof content.url === "string" ? urls.resolve(content.url, this.baseUrl) : null;
        const rec = { envelope, url, forId: forId || null, text: JSON.stringify(envelope) };
        if (forId) {
          if (!this.byId.has(forId)) this.byId.set(forId, rec);
        } else if (url && !this.byUrl.has(url)) {
          this.byUrl.set(url, rec);
        }
        added.push(rec);
      }
      return added;
    }

    /** Index every claim script under `root`; returns the claims added. */
    addAll(root) {
      const added = [];
      for (const s of root.querySelectorAll(SCRIPT_SELECTOR)) added.push(...this.addScript(s));
      return added;
    }
  }

  /** The claim attribute's value on `el` or on its <picture>, or null. */
  function attributeClaim(el, parent, inPicture) {
    const value = el.getAttribute(CLAIM_ATTR);
    if (value !== null && value !== undefined) return value;
    const up = inPicture ? parent.getAttribute(CLAIM_ATTR) : null;
    return up === undefined ? null : up;
  }

  /**
   * What is known about one media element: {el, tag, current, responsive,
   * pending, urls, mediaUrl, source, envelope?, error?}; `current` (an
   * image's currentSrc) and `responsive` (an image with candidates: srcset
   * or a <picture>) are read once here for the caller too; `pending`: a
   * plain image whose new src is still loading (its load brings it back). With
   * `deferAttribute`, an attribute claim is returned undecoded as
   * `claimAttr` (its text) instead of `envelope`. `source` is "attribute",
   * "script-for", "script-url" or null (unlabelled). The attribute wins over
   * scripts; an id match over a URL match. With `shownOnly`, an image with
   * an attribute claim that shows a URL lists only that one: the claim
   * speaks about the bytes shown, and no claim script can win over it, so
   * its other URLs (src, candidates) are not looked at.
   */
  function examine(el, index, { deferAttribute = false, backgroundOf = null, shownOnly = false } = {}) {
    const t = urls.tag(el);
    const parent = el.parentElement || null;
    const inPicture = parent !== null && urls.tag(parent) === "picture";
    const current = t === "img" ? el.currentSrc || "" : "";
    const responsive = t === "img" && (inPicture || el.getAttribute("srcset") !== null);
    const value = attributeClaim(el, parent, inPicture);
    let shown = current ? urls.absolute(current) || urls.resolve(current, index.baseUrl) : null;
    const plain = t === "img" && !responsive ? urls.plainImgUrls(el, current, index.baseUrl) : null;
    // A plain image whose src changed shows the old image until the new one
    // has loaded, and currentSrc names the old one until then (HTML "update
    // the image data"): the src comes first, as what it is about to show.
    const pending = plain !== null && plain.length === 2;
    if (pending) shown = plain[1];
    let list;
    if (shownOnly && shown && value !== null) list = [shown];
    else if (plain !== null) list = pending ? [plain[1], plain[0]] : plain;
    else if (t === "img" || t === "video" || t === "audio") list = urls.mediaUrls(el, index.baseUrl);
    else {
      const bg = backgroundOf ? backgroundUrl(backgroundOf(el)) : null;
      const abs = bg ? urls.resolve(bg, index.baseUrl) : null;
      list = abs ? [abs] : [];
    }
    // An image shows exactly one candidate (currentSrc, once chosen): a
    // claim is matched against those bytes, never a fallback not on screen.
    const found = { el, tag: t, current, responsive, pending, urls: list, mediaUrl: shown || list[0] || null,
      source: null };
    if (value !== null) {
      found.source = "attribute";
      if (deferAttribute) {
        // The background worker decodes it (parseAttributeClaim), off the page's thread.
        found.claimAttr = value;
        found.claimText = value;
        return found;
      }
      const parsed = parseAttributeClaim(value);
      if (parsed.error) found.error = parsed.error;
      else {
        found.envelope = parsed.envelope;
        found.claimText = parsed.text;
      }
      return found;
    }
    const ids = [el.id, inPicture ? parent.id : null];
    for (const id of ids) {
      const rec = id ? index.byId.get(id) : null;
      if (rec) {
        found.source = "script-for";
        found.envelope = rec.envelope;
        found.claimText = rec.text;
        return found;
      }
    }
    for (const u of shown && !pending ? [shown] : list) {
      const rec = index.byUrl.get(u);
      if (rec) {
        found.source = "script-url";
        found.envelope = rec.envelope;
        found.claimText = rec.text;
        found.mediaUrl = u;
        return found;
      }
    }
    return found;
  }

  /** The first url(...) of a computed background-image value, or null. */
  function backgroundUrl(value) {
    if (typeof value !== "string") return null;
    const m = /url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)\s]*))\s*\)/.exec(value);
    if (!m) return null;
    const url = (m[1] !== undefined ? m[1] : m[2] !== undefined ? m[2] : m[3]).replace(/\\(.)/g, "$1");
    return url || null;
  }

  const MEDIA_TAGS = new Set(["img", "video", "audio"]);
  const ANY_SELECTOR = `${MEDIA_SELECTOR}, [${CLAIM_ATTR}]`;

  /** An element carrying a claim attribute that is not media itself
   *  (shown through CSS background-image); <picture> is reached by its <img>. */
  function isClaimedBox(el) {
    const t = urls.tag(el);
    return !MEDIA_TAGS.has(t) && t !== "picture" && t !== "source" && el.getAttribute(CLAIM_ATTR) !== null;
  }

  /** Media elements at or under `node` (an element, a document or a shadow
   *  root), including elements with a claim attribute shown as a background. */
  function mediaUnder(node) {
    const t = urls.tag(node);
    const out = [];
    if (MEDIA_TAGS.has(t)) out.push(node);
    else if (t === "picture") {
      const img = urls.anchorOf(node);
      if (img !== node) out.push(img);
      return out;
    } else if (t && node.getAttribute && isClaimedBox(node)) out.push(node);
    if (node.querySelectorAll) {
      for (const m of node.querySelectorAll(ANY_SELECTOR)) {
        if (MEDIA_TAGS.has(urls.tag(m)) || isClaimedBox(m)) out.push(m);
      }
    }
    return out;
  }

  /** Open shadow roots at or under `node`, nested ones included (closed
   *  roots are private to their page and stay so). */
  // Elements that can never host a shadow root (DOM §4.2.14: only custom
  // elements and a few containers can): a page of a thousand images is not
  // asked a thousand times for one.
  const NO_SHADOW = ["img", "video", "audio", "source", "picture", "track", "script", "style", "link",
    "meta", "br", "a", "li", "td", "tr", "option", "input"];
  const MAYBE_HOST = `*${NO_SHADOW.map((t) => `:not(${t})`).join("")}`;

  function shadowRootsUnder(node) {
    const out = [];
    const visit = (n) => {
      if (n.shadowRoot) {
        out.push(n.shadowRoot);
        visit(n.shadowRoot);
      }
      if (!n.querySelectorAll) return;
      for (const el of n.querySelectorAll(MAYBE_HOST)) {
        if (el.shadowRoot) {
          out.push(el.shadowRoot);
          visit(el.shadowRoot);
        }
      }
    };
    visit(node);
    return out;
  }

  /** Every media element on the page, examined. */
  function scan(doc, index) {
    index.addAll(doc);
    return mediaUnder(doc).map((el) => examine(el, index));
  }

  return {
    CLAIM_TYPE, CLAIM_ATTR, FOR_ATTR, MEDIA_SELECTOR, SCRIPT_SELECTOR,
    isEnvelope, parseAttributeClaim, parseClaimScript, payloadOf,
    parseAigcMeta, categoryOf, findPageMeta, ClaimIndex, examine, mediaUnder, shadowRootsUnder, backgroundUrl, scan,
  };
});
