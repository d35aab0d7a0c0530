/*
 * URL helpers for matching claims to media: resolving against the page
 * (WHATWG URL), parsing srcset (HTML §4.8.4.3.10 "parse a srcset attribute")
 * and listing every URL a media element may show.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).urls = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /** Absolute URL of `url` against `base` without its fragment (a fragment
   *  never changes the bytes served), or null when it cannot be parsed. */
  function resolve(url, base) {
    if (typeof url !== "string") return null;
    const trimmed = url.trim();
    if (!trimmed) return null;
    try {
      const u = new URL(trimmed, base);
      u.hash = "";
      return u.href;
    } catch (_) {
      return null;
    }
  }

  const SERIALIZED = /^[a-z][a-z0-9+.-]*:\/\//i;

  /** A URL the browser itself resolved and serialized (currentSrc, or the
   *  reflected `src` IDL attribute: HTML §2.6.1 "reflecting" a URL), without
   *  its fragment; null when `url` is not such a URL. Parsing it again would
   *  give the same text (WHATWG URL serializing is idempotent), at the cost
   *  of a URL object per image. */
  function absolute(url) {
    return typeof url === "string" && SERIALIZED.test(url) ? stripHash(url) : null;
  }

  /** Origin (scheme://host[:port]) of an absolute URL, or null. Page URLs
   *  leave the browser only as this: never path, query or fragment. */
  let lastOrigin = [null, null]; // the page URL is asked for a thousand times a scan

  function origin(url) {
    if (lastOrigin[0] === url) return lastOrigin[1];
    let o;
    try {
      o = new URL(url).origin;
      if (o === "null") o = null;
    } catch (_) {
      o = null;
    }
    lastOrigin = [url, o];
    return o;
  }

  const SPACE = /[\t\n\f\r ]/;

  /** URLs of the image candidates in a srcset attribute, in order.
   *  Follows the HTML parsing algorithm: a URL runs to white space; a URL
   *  ending in commas drops them; descriptors run to the next top-level comma
   *  (parentheses may hold commas). */
  function parseSrcset(srcset) {
    const out = [];
    if (typeof srcset !== "string") return out;
    const s = srcset;
    let i = 0;
    while (i < s.length) {
      while (i < s.length && (SPACE.test(s[i]) || s[i] === ",")) i++;
      if (i >= s.length) break;
      let start = i;
      while (i < s.length && !SPACE.test(s[i])) i++;
      let url = s.slice(start, i);
      let sawTrailingComma = false;
      if (url.endsWith(",")) {
        url = url.replace(/,+$/, "");
        sawTrailingComma = true;
      }
      if (!sawTrailingComma) {
        let depth = 0;
        while (i < s.length) {
          const c = s[i];
          if (c === "(") depth++;
          else if (c === ")" && depth > 0) depth--;
          else if (c === "," && depth === 0) break;
          i++;
        }
      }
      if (url) out.push(url);
    }
    return out;
  }

  // The lower-case names of the tags looked at most, without a new string per look.
  const LOWER = new Map(["IMG", "VIDEO", "AUDIO", "PICTURE", "SOURCE", "DIV", "SPAN", "A"].map((t) => [t, t.toLowerCase()]));

  function tag(el) {
    if (!el) return "";
    const t = el.tagName;
    return typeof t === "string" ? LOWER.get(t) || t.toLowerCase() : "";
  }

  function attr(el, name) {
    const v = el.getAttribute ? el.getAttribute(name) : null;
    return v === null || v === undefined ? null : String(v);
  }

  function childElements(el) {
    return el && el.children ? Array.from(el.children) : [];
  }

  /** The element a badge sits on: the <img> of a <picture>, else itself. */
  function anchorOf(el) {
    if (tag(el) === "picture") {
      const img = childElements(el).find((c) => tag(c) === "img");
      return img || el;
    }
    return el;
  }

  function stripHash(url) {
    const i = url.indexOf("#");
    return i < 0 ? url : url.slice(0, i);
  }

  let baseOrigin = [null, null]; // the base URL's origin, asked once per image

  /** Whether `src` (an attribute value) resolves against `base` to the
   *  serialized URL `url`, decided without parsing in the common cases: the
   *  same text, or a path-absolute `src` that is `url`'s path (serializing
   *  is idempotent, so text equal to a serialized URL parses back to it). */
  function names(src, url, base) {
    if (src === url) return true;
    if (src.charCodeAt(0) !== 47 || src.charCodeAt(1) === 47) return false; // "/x", not "//host"
    if (baseOrigin[0] !== base) baseOrigin = [base, origin(base)];
    const o = baseOrigin[1];
    return o !== null && url.length === o.length + src.length && url.startsWith(o) && url.endsWith(src);
  }

  /** The URLs of an <img> without candidates (no srcset, no <picture>)
   *  showing `shown` (its currentSrc): the common case, kept cheap for pages
   *  with thousands of images, since the browser has already resolved it. */
  function plainImgUrls(el, shown, base) {
    const cur = shown ? stripHash(shown) : null;
    const src = el.getAttribute("src");
    if (cur && src && names(src, cur, base)) return [cur];
    const abs = src ? absolute(el.src) || resolve(src, base) : null;
    if (cur && abs && cur !== abs) return [cur, abs];
    return cur ? [cur] : abs ? [abs] : [];
  }

  /** Every absolute URL `el` may display, most specific first: currentSrc,
   *  src, srcset candidates, <source> children (and a <picture> parent's),
   *  a video poster. Duplicates removed. */
  function mediaUrls(el, base) {
    const t = tag(el);
    if (t === "img" && el.getAttribute("srcset") === null &&
        !(el.parentElement && el.parentElement.tagName === "PICTURE")) {
      return plainImgUrls(el, el.currentSrc, base);
    }
    const raw = [];
    const addSrcset = (node) => {
      for (const u of parseSrcset(attr(node, "srcset"))) raw.push(u);
    };
    const addSources = (parent) => {
      for (const c of childElements(parent)) {
        if (tag(c) !== "source") continue;
        const src = attr(c, "src");
        if (src) raw.push(src);
        addSrcset(c);
      }
    };
    if (t === "picture") {
      const img = childElements(el).find((c) => tag(c) === "img");
      if (img) return mediaUrls(img, base);
      addSources(el);
    } else {
      if (el.currentSrc) raw.push(el.currentSrc);
      const src = attr(el, "src");
      if (src) raw.push(src);
      addSrcset(el);
      if (t === "video" || t === "audio") addSources(el);
      if (t === "img" && tag(el.parentElement) === "picture") addSources(el.parentElement);
      if (t === "video") {
        const poster = attr(el, "poster");
        if (poster) raw.push(poster);
      }
    }
    const seen = new Set();
    const out = [];
    for (const u of new Set(raw)) {
      const abs = resolve(u, base);
      if (abs && !seen.has(abs)) {
        seen.add(abs);
        out.push(abs);
      }
    }
    return out;
  }

  return { resolve, absolute, origin, parseSrcset, mediaUrls, plainImgUrls, anchorOf, tag };
});
