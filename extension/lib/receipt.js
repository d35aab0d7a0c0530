/*
 * Checking a ledger receipt offline (docs/protocol.md §10 "Receipts"): the
 * C2SP signed note of the checkpoint, opened with the ledger key pinned on
 * first use, then the RFC 9162 §2.1.3.2 inclusion proof of the leaf hash at
 * its index up to the checkpoint's root.
 *
 * Ed25519 comes from WebCrypto (`subtle`); the Merkle node hashes use the
 * synchronous SHA-256 below, so a thousand proofs cost no thousand promises.
 */
(function (root, factory) {
  const ns = root.labelcheck || {};
  const api = factory(ns.base64url || (typeof require === "function" ? require("./base64url.js") : null));
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).receipt = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (b64) {
  "use strict";

  const SIG_PREFIX = "\u2014 "; // em dash and space (C2SP signed-note)
  const ALG_ED25519 = 0x01;
  const MAX_PROOF = 64;

  class ReceiptError extends Error {
    /** `code` is one of: malformed, bad_key, bad_signature, no_signature,
     *  bad_checkpoint, wrong_origin, bad_proof, no_ed25519. */
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  // --- SHA-256 (FIPS 180-4 §6.2), for the small inputs of Merkle nodes ------

  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const W = new Uint32Array(64);

  function rotr(x, n) {
    return (x >>> n) | (x << (32 - n));
  }

  /** SHA-256 of `data` (Uint8Array), as a 32-byte Uint8Array. */
  function sha256(data) {
    const bitLen = data.length * 8;
    const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
    padded.set(data);
    padded[data.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
    view.setUint32(padded.length - 4, bitLen >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
        const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i]);
    return out;
  }

  /** RFC 9162 §2.1.1: an interior node, SHA-256(0x01 ‖ left ‖ right). */
  function nodeHash(left, right) {
    const buf = new Uint8Array(65);
    buf[0] = 0x01;
    buf.set(left, 1);
    buf.set(right, 33);
    return sha256(buf);
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  /** Bytes of canonical standard base64 (RFC 4648 §4, padded, zero
   *  leftover bits §3.5), or null. */
  function decodeStd(text) {
    if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
    let bytes;
    try {
      bytes = b64.decode(text);
    } catch (_) {
      return null;
    }
    const again = b64.encode(bytes).replace(/-/g, "+").replace(/_/g, "/");
    return again + "==".slice(0, (4 - (again.length % 4)) % 4) === text ? bytes : null;
  }

  /** Exactly `size` bytes in canonical standard base64, or a ReceiptError. */
  function hashOf(text, what, size = 32) {
    const bytes = decodeStd(text);
    if (!bytes || bytes.length !== size) throw new ReceiptError("malformed", `${what} is not base64 of ${size} bytes`);
    return bytes;
  }

  // --- keys and notes (C2SP signed-note) -----------------------------------

  const utf8 = new TextEncoder();

  /** The 4-byte key hash: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pub32)[0:4]. */
  function keyHash(name, pub) {
    const n = utf8.encode(name);
    const buf = new Uint8Array(n.length + 34);
    buf.set(n);
    buf[n.length] = 0x0a;
    buf[n.length + 1] = ALG_ED25519;
    buf.set(pub, n.length + 2);
    return sha256(buf).slice(0, 4);
  }

  function validName(name) {
    return !!name && !/[+\s]/.test(name);
  }

  /** Parse a verifier key `name+hash8hex+base64(0x01 ‖ pub32)`; the hash must match. */
  function parseVerifierKey(vkey) {
    if (typeof vkey !== "string") throw new ReceiptError("bad_key", "the ledger key is not text");
    const first = vkey.indexOf("+");
    const second = first < 0 ? -1 : vkey.indexOf("+", first + 1);
    if (second < 0) throw new ReceiptError("bad_key", "the ledger key is not name+hash+key");
    const name = vkey.slice(0, first);
    const hashHex = vkey.slice(first + 1, second);
    if (!validName(name) || !/^[0-9a-f]{8}$/.test(hashHex)) throw new ReceiptError("bad_key", "the ledger key has a bad name or hash");
    const raw = decodeStd(vkey.slice(second + 1));
    if (!raw || raw.length !== 33 || raw[0] !== ALG_ED25519) throw new ReceiptError("bad_key", "the ledger key is not Ed25519");
    const pub = raw.slice(1);
    const hash = keyHash(name, pub);
    const want = Uint8Array.from(hashHex.match(/../g), (h) => parseInt(h, 16));
    if (!equal(hash, want)) throw new ReceiptError("bad_key", "the ledger key's hash does not match its name and key");
    return { name, hash, pub, keyId: `${name}+${hashHex}`, vkey };
  }

  /** Split a signed note into its text (through the newline before the blank
   *  line) and its signature lines [{name, hash, sig}]. */
  function splitNote(note) {
    if (typeof note !== "string" || /[\u0000-\u0009\u000b-\u001f]/.test(note)) {
      throw new ReceiptError("malformed", "the checkpoint is not a signed note");
    }
    const split = note.lastIndexOf("\n\n");
    if (split < 0 || !note.endsWith("\n")) throw new ReceiptError("malformed", "the checkpoint has no signature block");
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2, -1).split("\n");
    const sigs = lines.map((line) => {
      if (!line.startsWith(SIG_PREFIX)) throw new ReceiptError("malformed", "a checkpoint signature line is malformed");
      const rest = line.slice(SIG_PREFIX.length);
      const space = rest.indexOf(" ");
      const name = rest.slice(0, space);
      if (space < 1 || !validName(name)) throw new ReceiptError("malformed", "a checkpoint signature line is malformed");
      const raw = decodeStd(rest.slice(space + 1));
      if (!raw) throw new ReceiptError("malformed", "a checkpoint signature is not base64");
      if (raw.length < 5) throw new ReceiptError("malformed", "a checkpoint signature is too short");
      return { name, hash: raw.slice(0, 4), sig: raw.slice(4) };
    });
    return { text, sigs };
  }

  /** Whether this browser's WebCrypto has Ed25519 (Chromium 137+, Firefox 129+). */
  async function importKey(pub, subtle) {
    try {
      return await subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    } catch (_) {
      throw new ReceiptError("no_ed25519", "this browser lacks Ed25519");
    }
  }

  /**
   * Open a signed note with `key` (a parsed verifier key), as Go's
   * note.Open: signatures by other keys are ignored, one by this key that
   * does not verify is refused, and a note without one is refused.
   */
  async function openNote(note, key, subtle) {
    const { text, sigs } = splitNote(note);
    const mine = sigs.filter((s) => s.name === key.name && equal(s.hash, key.hash));
    if (!mine.length) throw new ReceiptError("no_signature", `the checkpoint is not signed by the pinned key ${key.keyId}`);
    const cryptoKey = key.cryptoKey || (key.cryptoKey = await importKey(key.pub, subtle));
    const body = utf8.encode(text);
    for (const s of mine) {
      const ok = s.sig.length === 64 && await subtle.verify({ name: "Ed25519" }, cryptoKey, s.sig, body);
      if (!ok) throw new ReceiptError("bad_signature", `the checkpoint's signature by ${key.keyId} does not verify`);
    }
    return text;
  }

  /** Parse a checkpoint text (C2SP tlog-checkpoint): origin, size, root. */
  function parseCheckpoint(text) {
    const lines = text.slice(0, -1).split("\n");
    if (lines.length < 3) throw new ReceiptError("bad_checkpoint", "the checkpoint needs an origin, a size and a root");
    const [origin, sizeLine, rootLine] = lines;
    if (!origin) throw new ReceiptError("bad_checkpoint", "the checkpoint has no origin");
    if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeLine) || !Number.isSafeInteger(Number(sizeLine))) {
      throw new ReceiptError("bad_checkpoint", "the checkpoint size is not a decimal number");
    }
    let rootHash;
    try {
      rootHash = hashOf(rootLine, "the checkpoint root");
    } catch (_) {
      throw new ReceiptError("bad_checkpoint", "the checkpoint root is not base64 of 32 bytes");
    }
    return { origin, size: Number(sizeLine), root: rootHash };
  }

  /** RFC 9162 §2.1.3.2: does `proof` lead from `leaf` at `index` to `rootHash`
   *  in a tree of `size`? Throws ReceiptError("bad_proof") unless it does. */
  function verifyInclusion(index, size, leaf, proof, rootHash) {
    if (!(index >= 0 && index < size)) throw new ReceiptError("bad_proof", `entry ${index} is not in a tree of ${size}`);
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new ReceiptError("bad_proof", "the inclusion proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn !== 0 && fn % 2 === 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new ReceiptError("bad_proof", "the inclusion proof is too short");
    if (!equal(r, rootHash)) throw new ReceiptError("bad_proof", "the inclusion proof does not lead to the checkpoint's root");
  }

  /**
   * Check `receipt` ({index, leaf_hash, checkpoint, inclusion}) against the
   * parsed ledger `key`. `notes` (optional Map) caches opened checkpoints:
   * one commit's receipts share one note, so one signature check.
   * Resolves {size, origin, index} or rejects with a ReceiptError.
   */
  async function checkReceipt(receipt, key, subtle, notes = null) {
    if (!receipt || typeof receipt !== "object") throw new ReceiptError("malformed", "the result has no receipt");
    const { index, leaf_hash: leafText, checkpoint, inclusion } = receipt;
    if (!Number.isSafeInteger(index) || index < 0) throw new ReceiptError("malformed", "the receipt's index is not a whole number");
    if (typeof checkpoint !== "string" || !Array.isArray(inclusion)) {
      throw new ReceiptError("malformed", "the receipt has no checkpoint and inclusion proof");
    }
    if (inclusion.length > MAX_PROOF) throw new ReceiptError("malformed", "the inclusion proof is too long");
    const leaf = hashOf(leafText, "the leaf hash");
    const proof = inclusion.map((h) => hashOf(h, "an inclusion proof hash"));
    const cacheKey = `${key.vkey}\n${checkpoint}`;
    let opened = notes && notes.get(cacheKey);
    if (!opened) {
      opened = openNote(checkpoint, key, subtle).then(parseCheckpoint);
      if (notes) {
        if (notes.size > 1000) notes.clear();
        notes.set(cacheKey, opened);
      }
    }
    const cp = await opened;
    if (cp.origin !== key.name) throw new ReceiptError("wrong_origin", `the checkpoint is for log ${cp.origin}, not ${key.name}`);
    verifyInclusion(index, cp.size, leaf, proof, cp.root);
    return { index, size: cp.size, origin: cp.origin };
  }

  return { ReceiptError, sha256, nodeHash, keyHash, parseVerifierKey, splitNote, openNote, parseCheckpoint,
    verifyInclusion, checkReceipt };
});
