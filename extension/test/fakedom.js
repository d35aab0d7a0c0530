/* A tiny DOM-like tree for testing discovery without a browser: elements
 * with tagName, attributes, children and querySelectorAll over simple
 * selectors ("img, video", 'script[type="x"]', "meta[name]", "*:not(img)"). */
"use strict";

class FakeElement {
  constructor(tag, attrs = {}, children = []) {
    this.tagName = tag.toUpperCase();
    this.attrs = new Map(Object.entries(attrs).map(([k, v]) => [k, String(v)]));
    this.children = [];
    this.parentElement = null;
    this.textContent = "";
    this.currentSrc = "";
    for (const c of children) {
      if (typeof c === "string") this.textContent += c;
      else this.append(c);
    }
  }
  get id() {
    return this.attrs.get("id") || "";
  }
  getAttribute(name) {
    return this.attrs.has(name) ? this.attrs.get(name) : null;
  }
  setAttribute(name, value) {
    this.attrs.set(name, String(value));
  }
  append(child) {
    child.parentElement = this;
    this.children.push(child);
  }
  *walk() {
    for (const c of this.children) {
      yield c;
      yield* c.walk();
    }
  }
  querySelectorAll(selector) {
    const tests = selector.split(",").map((s) => parseSimple(s.trim()));
    return [...this.walk()].filter((el) => tests.some((t) => t(el)));
  }
  getElementById(id) {
    return [...this.walk()].find((el) => el.id === id) || null;
  }
}

function parseSimple(sel) {
  const not = /^\*((?::not\([a-z]+\))+)$/i.exec(sel); // "*:not(img):not(a)"
  if (not) {
    const tags = [...not[1].matchAll(/:not\(([a-z]+)\)/gi)].map((x) => x[1].toUpperCase());
    return (el) => !tags.includes(el.tagName);
  }
  const m = /^([a-z]*|\*)(?:\[([a-z-]+)(?:="([^"]*)")?\])?$/i.exec(sel);
  if (!m || (!m[1] && !m[2])) throw new Error(`fakedom: unsupported selector ${sel}`);
  const [, tag, attr, value] = m;
  return (el) =>
    (!tag || tag === "*" || el.tagName === tag.toUpperCase()) &&
    (!attr || (el.getAttribute(attr) !== null && (value === undefined || el.getAttribute(attr) === value)));
}

const h = (tag, attrs, ...children) => new FakeElement(tag, attrs || {}, children);

module.exports = { FakeElement, h };
