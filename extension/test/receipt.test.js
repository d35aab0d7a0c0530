"use strict";
// Receipts made by the server's own ledger code (tools/make_receipt_vectors.py;
// LABELCHECK_RECEIPT_VECTORS names a freshly made file, else the committed one).
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const nodeCrypto = require("node:crypto");
const receipt = require("../lib/receipt.js");

const subtle = globalThis.crypto.subtle;
const file = process.env.LABELCHECK_RECEIPT_VECTORS || path.join(__dirname, "receipt-vectors.json");
const V = JSON.parse(fs.readFileSync(file, "utf8"));

test("SHA-256 agrees with node's at every padding boundary", () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 200]) {
    const data = nodeCrypto.randomBytes(n);
    assert.equal(Buffer.from(receipt.sha256(new Uint8Array(data))).toString("hex"),
      nodeCrypto.createHash("sha256").update(data).digest("hex"), `${n} bytes`);
  }
});

test("the ledger's verifier key parses, its hash checked", () => {
  const key = receipt.parseVerifierKey(V.vkey);
  assert.equal(key.name, "labelcheck.test/ledger");
  assert.equal(key.keyId, V.vkey.split("+").slice(0, 2).join("+"));
  assert.equal(key.pub.length, 32);
  const [name, hash, data] = V.vkey.split("+");
  const wrongHash = `${name}+${hash.replace(/^./, (c) => (c === "0" ? "1" : "0"))}+${V.vkey.slice(name.length + hash.length + 2)}`;
  for (const bad of [wrongHash, `${name}+${hash}`, "", `${name} x+${hash}+${data}`, `${name}+${hash}+AAAA`]) {
    assert.throws(() => receipt.parseVerifierKey(bad), (e) => e.code === "bad_key", bad);
  }
});

test("every receipt the server's code makes checks", async () => {
  const key = receipt.parseVerifierKey(V.vkey);
  const notes = new Map();
  for (const r of V.good) {
    const got = await receipt.checkReceipt(r, key, subtle, notes);
    assert.equal(got.index, r.index);
    assert.equal(got.size, Number(r.checkpoint.split("\n")[1]));
    assert.equal(got.origin, key.name);
  }
});

test("each damaged receipt fails, for its own reason", async () => {
  const key = receipt.parseVerifierKey(V.vkey);
  assert.ok(V.bad.length >= 10);
  for (const { why, code, receipt: r } of V.bad) {
    await assert.rejects(receipt.checkReceipt(r, key, subtle), (e) => {
      assert.ok(e instanceof receipt.ReceiptError, why);
      assert.equal(e.code, code, `${why}: ${e.message}`);
      return true;
    });
  }
});

test("a receipt checked against another pinned key fails", async () => {
  const other = receipt.parseVerifierKey(V.other_vkey);
  await assert.rejects(receipt.checkReceipt(V.good[3], other, subtle), (e) => e.code === "no_signature");
});

test("a browser without Ed25519 is told apart from a bad receipt", async () => {
  const key = receipt.parseVerifierKey(V.vkey);
  const noEd25519 = {
    importKey: async () => { throw new DOMException("Unrecognized name", "NotSupportedError"); },
    verify: subtle.verify.bind(subtle),
  };
  await assert.rejects(receipt.checkReceipt(V.good[0], key, noEd25519), (e) => e.code === "no_ed25519");
});

test("the inclusion check is RFC 9162's: index and size shape the path", () => {
  const leaf = receipt.sha256(new Uint8Array([0, 1]));
  const sib = receipt.sha256(new Uint8Array([0, 2]));
  const rootHash = receipt.nodeHash(leaf, sib);
  receipt.verifyInclusion(0, 2, leaf, [sib], rootHash);
  assert.throws(() => receipt.verifyInclusion(1, 2, leaf, [sib], rootHash), (e) => e.code === "bad_proof");
  assert.throws(() => receipt.verifyInclusion(0, 1, leaf, [sib], rootHash), (e) => e.code === "bad_proof");
  receipt.verifyInclusion(0, 1, leaf, [], leaf);
});
