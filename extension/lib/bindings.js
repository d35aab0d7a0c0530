/*
 * Keys bound to values (a verification key to the elements showing it, a
 * URL to the media listing it). One value is kept as it is and a Set made
 * only for the second: a page of a thousand images binds one element per
 * key and per URL, and a Set each is garbage its collector copies while
 * the page loads.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).bindings = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const NONE = Object.freeze([]);

  class Bindings {
    constructor() {
      this.map = new Map(); // key -> value, or a Set of values
    }

    add(key, value) {
      const cur = this.map.get(key);
      if (cur === undefined) this.map.set(key, value);
      else if (cur instanceof Set) cur.add(value);
      else if (cur !== value) this.map.set(key, new Set([cur, value]));
    }

    delete(key, value) {
      const cur = this.map.get(key);
      if (cur === value) this.map.delete(key);
      else if (cur instanceof Set) {
        cur.delete(value);
        if (!cur.size) this.map.delete(key);
      }
    }

    /** The values bound to `key` (iterable; empty when none). */
    get(key) {
      const cur = this.map.get(key);
      if (cur === undefined) return NONE;
      return cur instanceof Set ? cur : [cur];
    }

    /** [key, first value] for every key with a value. */
    *firsts() {
      for (const [key, cur] of this.map) yield [key, cur instanceof Set ? cur.values().next().value : cur];
    }
  }

  return { Bindings };
});
