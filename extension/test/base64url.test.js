"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const b64 = require("../lib/base64url.js");

// RFC 4648 §10 test vectors, in both alphabets, padded and unpadded.
const VECTORS = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="], ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"]];

test("RFC 4648 vectors decode with and without padding", () => {
  for (const [plain, padded] of VECTORS) {
    assert.equal(b64.decodeText(padded), plain);
    assert.equal(b64.decodeText(padded.replace(/=+$/, "")), plain);
  }
});

test("encode gives unpadded base64url that round-trips", () => {
  for (const [plain, padded] of VECTORS) assert.equal(b64.encode(plain), padded.replace(/=+$/, ""));
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = b64.encode(bytes);
  assert.match(text, /^[A-Za-z0-9_-]*$/);
  assert.deepEqual(b64.decode(text), bytes);
});

test("both alphabets: '-_' and '+/' decode to the same bytes", () => {
  const bytes = Uint8Array.from([0xfb, 0xff, 0xbf, 0xfe]);
  assert.deepEqual(b64.decode("-_-__g"), bytes);
  assert.deepEqual(b64.decode("+/+//g=="), bytes);
});

test("UTF-8 text (Chinese producer names) survives", () => {
  const s = '{"ContentProducer":"某某科技"}';
  assert.equal(b64.decodeText(b64.encode(s)), s);
});

test("bad input is refused with an Error", () => {
  for (const bad of ["Zm9v!", "Z", "Zm9vY===", "Zm 9v", "é", 42]) {
    assert.throws(() => b64.decode(bad), Error, String(bad));
  }
  assert.throws(() => b64.decodeText(b64.encode(Uint8Array.from([0xff, 0xfe]))), TypeError);
});
