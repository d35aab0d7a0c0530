/* The options page: the server URL, "check unlabelled media too", and the
 * server's pinned ledger key (docs/protocol.md §10), with a deliberate re-pin. */
(async function () {
  "use strict";
  const DEFAULTS = { serverUrl: "http://127.0.0.1:8080", checkUnlabelled: false };
  const msg = (name, subs) => chrome.i18n.getMessage(name, subs) || name;
  const server = document.getElementById("server");
  const unlabelled = document.getElementById("unlabelled");
  const status = document.getElementById("status");

  const stored = await chrome.storage.local.get(DEFAULTS);
  server.value = stored.serverUrl;
  unlabelled.checked = !!stored.checkUnlabelled;
  await showLedgerKey();
  document.body.dataset.ready = "1";

  /** The pinned key of the configured server, and a different one it offers now. */
  async function showLedgerKey(answer) {
    const got = answer || await chrome.runtime.sendMessage({ type: "ledgerKey" }).catch(() => null);
    const pinned = got && got.pinned;
    const conflict = got && got.conflict;
    document.getElementById("ledger-state").textContent = pinned
      ? msg("options_ledger_pinned", [pinned.pinnedAt || ""]) : msg("options_ledger_none");
    document.getElementById("ledger-pinned").textContent = pinned ? pinned.vkey : "";
    document.getElementById("ledger-conflict").hidden = !conflict;
    document.getElementById("ledger-offered").textContent = conflict ? conflict.vkey : "";
    document.body.dataset.ledger = conflict ? "conflict" : pinned ? "pinned" : "none";
  }

  document.getElementById("repin").addEventListener("click", async () => {
    const answer = await chrome.runtime.sendMessage({ type: "repin" }).catch(() => null);
    await showLedgerKey(answer);
    document.getElementById("repin-status").textContent =
      answer && !answer.error ? msg("options_repinned") : msg("options_repin_failed");
    document.body.dataset.repinned = String(Date.now());
  });

  /** The URL without a trailing slash, or null unless http(s). */
  function normalise(text) {
    try {
      const u = new URL(text.trim());
      if (u.protocol !== "http:" && u.protocol !== "https:") return null;
      return u.href.replace(/\/+$/, "");
    } catch (_) {
      return null;
    }
  }

  document.getElementById("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = normalise(server.value);
    if (!url) {
      status.textContent = msg("options_bad_url");
      return;
    }
    // labelcheck's server answers the extension's origin with CORS headers,
    // so host access is optional. Ask for it now, inside the user's gesture
    // (Firefox requires that), but save without waiting for the answer.
    let asked;
    try {
      asked = chrome.permissions.request({ origins: [`${new URL(url).origin}/*`] });
    } catch (_) {
      asked = Promise.resolve(false);
    }
    await chrome.storage.local.set({ serverUrl: url, checkUnlabelled: unlabelled.checked });
    status.textContent = msg("options_saved");
    document.body.dataset.saved = String(Date.now());
    const granted = await Promise.resolve(asked).catch(() => false);
    if (!granted) status.textContent = `${msg("options_saved")} ${msg("options_denied")}`;
    await showLedgerKey();
  });
})();
