"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { Bindings } = require("../lib/bindings.js");

test("a key keeps one value as it is, several as a set, and forgets them one by one", () => {
  const b = new Bindings();
  const el1 = { id: 1 };
  const el2 = { id: 2 };
  assert.deepEqual([...b.get("k")], []);
  b.add("k", el1);
  b.add("k", el1);
  assert.deepEqual([...b.get("k")], [el1]);
  assert.equal(b.map.get("k"), el1); // no Set for one value
  b.add("k", el2);
  assert.deepEqual([...b.get("k")], [el1, el2]);
  b.add("page", "page");
  assert.deepEqual([...b.firsts()], [["k", el1], ["page", "page"]]);
  b.delete("k", el1);
  assert.deepEqual([...b.get("k")], [el2]);
  b.delete("k", el2);
  b.delete("k", el2);
  assert.deepEqual([...b.get("k")], []);
  assert.deepEqual([...b.firsts()], [["page", "page"]]);
  b.delete("page", "other");
  assert.deepEqual([...b.get("page")], ["page"]);
});
