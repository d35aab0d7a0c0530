/*
 * How a verdict (docs/protocol.md §3) is shown: a display state, a colour and the
 * wording from _locales (GB 45438 explicit-label wording for categories).
 * `msg(name, subs)` is chrome.i18n.getMessage or a test double.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.labelcheck = root.labelcheck || {}).present = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const CATEGORIES = ["confirmed", "possible", "suspected"];

  /** The display state: the server status, refined for `invalid` by its
   *  first failing reason so a viewer sees *why* (tampered, mismatch …). */
  function stateOf(result) {
    const status = result && result.status;
    const reasons = (result && result.reasons) || [];
    if (isFetchFailureOnly(result)) return "none";
    // A perceptual match is never "verified", and a claim for other bytes
    // that matches its media perceptually is re-encoded, not tampered.
    if (reasons.includes("registry_similar")) return "similar";
    if (status === "verified" && reasons.includes("registry_exact")) return "registered";
    if (status === "declared" && isC2paSigned(result)) return "signed";
    if (status === "invalid") {
      if (reasons.includes("signature_invalid")) return "tampered";
      if (reasons.includes("content_mismatch")) return "mismatch";
      if (reasons.includes("revoked_key")) return "revoked";
      if (reasons.includes("unknown_key")) return "unknown";
      if (reasons.includes("expired")) return "expired";
      return "invalid";
    }
    if (["verified", "unverified", "declared", "none", "unchecked"].includes(status)) return status;
    return "unchecked";
  }

  /** Unlabelled media the server could not fetch (403, timeout): there is
   *  no label to speak of, so nothing to show or count. */
  function isFetchFailureOnly(result) {
    if (!result || result.status !== "unverified") return false;
    const reasons = result.reasons || [];
    return reasons.includes("fetch_failed") && !result.category && !result.producer &&
      !result.claim_digest && !(result.signals || []).length;
  }

  /** A C2PA manifest that validates but whose signer is not a configured
   *  trust anchor (the server says "declared"): signed, not unsigned. */
  function isC2paSigned(result) {
    return (result.signals || []).some((s) => s && s.source === "c2pa" && s.status === "valid");
  }

  /** Do the label sources of this item disagree (docs/protocol.md §3 conflicts)? */
  function hasConflict(result) {
    if (!result) return false;
    return (result.reasons || []).includes("signals_conflict") || (result.conflicts || []).length > 0;
  }

  // Icons tell the states apart without colour or text (WCAG 1.4.1).
  const ICON = {
    verified: "\u2713", registered: "\u2713", similar: "\u2248", unverified: "!", declared: "!", signed: "!", none: "\u2013", unchecked: "?",
    tampered: "\u2717", mismatch: "\u2260", revoked: "\u2298", unknown: "?", expired: "\u231B", invalid: "\u2717",
  };

  /** The single-character icon of a display state. */
  function iconOf(state) {
    return ICON[state] || "?";
  }

  const TONE = {
    verified: "ok", registered: "ok", similar: "warn", unverified: "warn", declared: "warn", signed: "warn", none: "none", unchecked: "muted",
    tampered: "bad", mismatch: "bad", revoked: "bad", unknown: "bad", expired: "bad", invalid: "bad",
  };

  /** "ok" | "warn" | "bad" | "muted" | "none": drives the badge colour. */
  function toneOf(state) {
    return TONE[state] || "muted";
  }

  /** Is this result a label the toolbar should count? */
  function isLabelled(result) {
    return !!result && stateOf(result) !== "none";
  }

  function categoryOf(result) {
    const c = result && result.category;
    return CATEGORIES.includes(c) ? c : null;
  }

  /** The producer named by a registry match (docs/protocol.md §12), or null. */
  function registryProducer(result) {
    if (!result) return null;
    const reg = result.registry && typeof result.registry === "object" ? result.registry : {};
    for (const p of [result.producer, reg.producer]) if (p && typeof p.name === "string" && p.name) return p.name;
    return typeof reg.key_id === "string" ? reg.key_id : null;
  }

  /** Bits of 256 by which a perceptual match differs, or null. */
  function registryDistance(result) {
    const reg = result && result.registry;
    const d = result && Number.isInteger(result.distance) ? result.distance : reg && reg.distance;
    return Number.isInteger(d) ? d : null;
  }

  const REGISTRY_STATES = new Set(["similar", "registered"]);

  /** {short, full}: the badge text and the full wording for aria-label. */
  function wording(result, msg) {
    const state = stateOf(result);
    const category = categoryOf(result);
    const cat = category ? msg(`category_${category}`) : "";
    const st = REGISTRY_STATES.has(state) ? msg(`state_${state}`, [registryProducer(result) || "?"]) : msg(`state_${state}`);
    // A failing label leads with the problem, so a narrow badge still shows it.
    const short = cat ? msg(toneOf(state) === "bad" ? "badge_short_bad" : "badge_short", [cat, st]) : st;
    const full = msg("badge_full", [short]);
    return { state, category, short, full };
  }

  const RECEIPT_WHY = new Set(["bad_proof", "bad_signature", "no_signature", "wrong_origin", "bad_checkpoint",
    "malformed", "key_changed"]);

  /**
   * Whether the result's ledger receipt checked against the pinned ledger
   * key (the worker's `receipt_check`, docs/protocol.md §10):
   * {state: "ok" | "failed" | "unchecked", text}, or null when not known.
   * A failure speaks of the server's ledger, never of the media.
   */
  function receiptCheck(result, msg) {
    const c = result && result.receipt_check;
    if (!c || typeof c !== "object") return null;
    if (c.ok === true) return { state: "ok", text: msg("receipt_ok", [String(c.size), String(c.key_id || "")]) };
    if (c.ok !== false) {
      return { state: "unchecked", text: msg(c.code === "no_ed25519" ? "receipt_no_ed25519" : "receipt_no_key") };
    }
    const why = msg(`receipt_why_${RECEIPT_WHY.has(c.code) ? c.code : "malformed"}`);
    return { state: "failed", text: msg("receipt_failed", [why]) };
  }

  /** Lines of the details panel: [[label message name, value]]; with `msg`,
   *  also whether the receipt checked. */
  function details(result, msg) {
    const rows = [];
    const p = result && result.producer;
    if (p && p.name) rows.push(["details_producer", p.name]);
    if (p && p.filing) rows.push(["details_filing", p.filing]);
    const reasons = (result && result.reasons) || [];
    if (reasons.length) rows.push(["details_reasons", reasons.join(", ")]);
    for (const c of (result && result.conflicts) || []) rows.push(["details_conflict", String(c)]);
    const reg = result && result.registry;
    if (reg && typeof reg === "object") {
      const d = registryDistance(result);
      if (d !== null) rows.push(["details_distance", msg ? msg("distance_bits", [String(d)]) : `${d}/256`]);
      if (reg.claim_id) rows.push(["details_registry_claim", String(reg.claim_id)]);
    }
    const r = result && result.receipt;
    if (r && r.index !== undefined && r.index !== null) {
      rows.push(["details_receipt_index", String(r.index)]);
      if (r.leaf_hash) rows.push(["details_receipt_leaf", r.leaf_hash]);
    }
    const check = msg ? receiptCheck(result, msg) : null;
    if (check) rows.push(["details_receipt_check", check.text]);
    return rows;
  }

  return { CATEGORIES, stateOf, toneOf, iconOf, hasConflict, isLabelled, categoryOf, wording, details, receiptCheck,
    registryProducer, registryDistance };
});
