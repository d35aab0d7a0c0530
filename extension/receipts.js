/*
 * The background worker's receipt checks (docs/protocol.md §10): the ledger
 * key of each server is pinned on first use (GET /v1/keys, `ledger_vkey`,
 * kept in storage.local per server URL), and every receipt is checked
 * against the pinned key, never against whatever the server offers now.
 * A server that later offers another key is recorded as a conflict (shown
 * in the popup and on the options page) until the viewer re-pins.
 *
 * Each result gets `receipt_check`: {ok: true, size, key_id} when the
 * signed checkpoint opens and the inclusion proof leads to its root;
 * {ok: false, code} when it does not (a problem with the server's ledger,
 * not with the media); {ok: null, code} when it could not be checked
 * (`no_ed25519`, `no_key`).
 */
(function (root) {
  "use strict";
  const ns = (root.labelcheck = root.labelcheck || {});
  const receipt = ns.receipt;

  const KEYS_TIMEOUT_MS = 10000;
  const RETRY_KEYS_MS = 30000; // a failed GET /v1/keys is asked again after this

  const asked = new Map(); // server URL -> Promise<{vkey, origin} | null> (GET /v1/keys, once per URL)
  const parsed = new Map(); // vkey -> parsed key (with its imported CryptoKey)
  const notes = new Map(); // opened checkpoint notes, shared by one commit's receipts

  function base(serverUrl) {
    return serverUrl.replace(/\/+$/, "");
  }

  /** The server's offered ledger key, fetched once per server URL. */
  function offered(serverUrl) {
    if (!asked.has(serverUrl)) {
      const p = (async () => {
        const ctrl = new AbortController();
        const timer = setTimeout(() => ctrl.abort(), KEYS_TIMEOUT_MS);
        try {
          const res = await fetch(`${base(serverUrl)}/v1/keys`, { credentials: "omit", signal: ctrl.signal });
          if (!res.ok) return null;
          const body = await res.json();
          if (!body || typeof body.ledger_vkey !== "string") return null;
          receipt.parseVerifierKey(body.ledger_vkey); // refuse to pin a malformed key
          return { vkey: body.ledger_vkey, origin: typeof body.origin === "string" ? body.origin : null };
        } catch (_) {
          return null;
        } finally {
          clearTimeout(timer);
        }
      })();
      asked.set(serverUrl, p);
      p.then((got) => {
        if (!got) setTimeout(() => asked.get(serverUrl) === p && asked.delete(serverUrl), RETRY_KEYS_MS);
      });
    }
    return asked.get(serverUrl);
  }

  async function stored() {
    try {
      return await chrome.storage.local.get({ ledgerKeys: {}, ledgerKeyConflicts: {} });
    } catch (_) {
      return { ledgerKeys: {}, ledgerKeyConflicts: {} };
    }
  }

  /** {pinned, conflict} for `serverUrl`: pins the offered key on first use,
   *  records (never accepts) a different one offered later. */
  async function pinnedKey(serverUrl) {
    const got = await offered(serverUrl);
    const { ledgerKeys, ledgerKeyConflicts } = await stored();
    let pinned = ledgerKeys[serverUrl] || null;
    let conflict = ledgerKeyConflicts[serverUrl] || null;
    if (!pinned && got) {
      pinned = { vkey: got.vkey, origin: got.origin, pinnedAt: new Date().toISOString() };
      ledgerKeys[serverUrl] = pinned;
      await chrome.storage.local.set({ ledgerKeys }).catch(() => {});
    } else if (pinned && got && got.vkey !== pinned.vkey && (!conflict || conflict.vkey !== got.vkey)) {
      conflict = { vkey: got.vkey, seenAt: new Date().toISOString() };
      ledgerKeyConflicts[serverUrl] = conflict;
      await chrome.storage.local.set({ ledgerKeyConflicts }).catch(() => {});
    } else if (pinned && got && got.vkey === pinned.vkey && conflict) {
      conflict = null; // the server is back on the pinned key
      delete ledgerKeyConflicts[serverUrl];
      await chrome.storage.local.set({ ledgerKeyConflicts }).catch(() => {});
    }
    return { pinned, conflict };
  }

  function keyOf(vkey) {
    if (!parsed.has(vkey)) {
      if (parsed.size > 20) parsed.clear();
      parsed.set(vkey, receipt.parseVerifierKey(vkey));
    }
    return parsed.get(vkey);
  }

  /** Add `receipt_check` to each result from `serverUrl` (in place). */
  async function checkAll(serverUrl, results) {
    let pin;
    try {
      pin = await pinnedKey(serverUrl);
    } catch (_) {
      pin = { pinned: null, conflict: null };
    }
    let key = null;
    try {
      key = pin.pinned ? keyOf(pin.pinned.vkey) : null;
    } catch (_) {
      key = null;
    }
    await Promise.all(results.map(async (r) => {
      if (!r || typeof r !== "object") return;
      if (!key) {
        r.receipt_check = { ok: null, code: "no_key" };
        return;
      }
      try {
        const got = await receipt.checkReceipt(r.receipt, key, crypto.subtle, notes);
        r.receipt_check = { ok: true, size: got.size, key_id: key.keyId };
      } catch (e) {
        const code = (e && e.code) || "malformed";
        if (code === "no_ed25519") r.receipt_check = { ok: null, code };
        else r.receipt_check = { ok: false, code: pin.conflict ? "key_changed" : code, key_id: key.keyId };
      }
    }));
    return results;
  }

  /** What the options page and popup show for `serverUrl`. */
  async function status(serverUrl) {
    const { ledgerKeys, ledgerKeyConflicts } = await stored();
    return { serverUrl, pinned: ledgerKeys[serverUrl] || null, conflict: ledgerKeyConflicts[serverUrl] || null };
  }

  /** Pin the key `serverUrl` offers now (the viewer asked, on the options page). */
  async function repin(serverUrl) {
    asked.delete(serverUrl);
    const got = await offered(serverUrl);
    if (!got) return Object.assign(await status(serverUrl), { error: "no_key" });
    const { ledgerKeys, ledgerKeyConflicts } = await stored();
    ledgerKeys[serverUrl] = { vkey: got.vkey, origin: got.origin, pinnedAt: new Date().toISOString() };
    delete ledgerKeyConflicts[serverUrl];
    await chrome.storage.local.set({ ledgerKeys, ledgerKeyConflicts });
    return status(serverUrl);
  }

  ns.receipts = { checkAll, status, repin, pinnedKey };
})(typeof globalThis !== "undefined" ? globalThis : this);
