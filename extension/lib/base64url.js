/*
 * base64url (RFC 4648 §5) and standard base64 (§4) decoding, padding optional,
 * to bytes or UTF-8 text. A classic script: in a page it attaches to the
 * `labelcheck` namespace; under node it is a CommonJS module.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).base64url = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const VALUES = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;
  // Both alphabets are accepted: "-_" (base64url) and "+/" (base64).
  VALUES[45] = VALUES[43] = 62;
  VALUES[95] = VALUES[47] = 63;

  /** Decode base64url or base64 (padding optional, no white space) to bytes.
   *  Throws Error on any character outside the alphabets or a bad length. */
  function decode(text) {
    if (typeof text !== "string") throw new Error("base64url: not a string");
    let end = text.length;
    while (end > 0 && text.charCodeAt(end - 1) === 61) end--; // strip "="
    if (text.length - end > 2) throw new Error("base64url: too much padding");
    if (end % 4 === 1) throw new Error("base64url: impossible length");
    const out = new Uint8Array(Math.floor((end * 3) / 4));
    let acc = 0, bits = 0, o = 0;
    for (let i = 0; i < end; i++) {
      const c = text.charCodeAt(i);
      const v = c < 128 ? VALUES[c] : -1;
      if (v < 0) throw new Error(`base64url: bad character at ${i}`);
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[o++] = (acc >> bits) & 0xff;
      }
    }
    // RFC 4648 §3.5: leftover bits must be zero in canonical encodings; we are
    // lenient here because the signature, not the encoding, carries integrity.
    return out;
  }

  const NON_ASCII = /[^\x00-\x7f]/;
  let utf8 = null;

  /** Decode to a string, as UTF-8 (fatal on invalid sequences). The common
   *  case, ASCII text (claim JSON), goes through the engine's atob. */
  function decodeText(text) {
    if (typeof text === "string" && typeof atob === "function" && text.length % 4 !== 1 && text.indexOf("=") < 0) {
      let binary;
      try {
        // atob refuses anything outside the alphabet (and ignores white
        // space, which the strict decoder below refuses: so none allowed).
        if (/\s/.test(text)) throw new Error("space");
        const std = text.replace(/-/g, "+").replace(/_/g, "/");
        binary = atob(std + "===".slice(0, (4 - (std.length % 4)) % 4));
      } catch (_) {
        binary = null;
      }
      if (binary !== null && !NON_ASCII.test(binary)) return binary;
    }
    if (!utf8) utf8 = new TextDecoder("utf-8", { fatal: true });
    return utf8.decode(decode(text));
  }

  /** Encode bytes (or a string, as UTF-8) as base64url without padding. */
  function encode(data) {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let out = "";
    let i = 0;
    const urlAlphabet = ALPHABET + "-_";
    for (; i + 2 < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out += urlAlphabet[n >> 18] + urlAlphabet[(n >> 12) & 63] + urlAlphabet[(n >> 6) & 63] + urlAlphabet[n & 63];
    }
    if (i < bytes.length) {
      const n = (bytes[i] << 16) | ((i + 1 < bytes.length ? bytes[i + 1] : 0) << 8);
      out += urlAlphabet[n >> 18] + urlAlphabet[(n >> 12) & 63];
      if (i + 1 < bytes.length) out += urlAlphabet[(n >> 6) & 63];
    }
    return out;
  }

  return { decode, decodeText, encode };
});
