/* The options page: the server URL and "check unlabelled media too". */
(async function () {
  "use strict";
  const DEFAULTS = { serverUrl: "http://127.0.0.1:8080", checkUnlabelled: false };
  const msg = (name) => chrome.i18n.getMessage(name) || name;
  const server = document.getElementById("server");
  const unlabelled = document.getElementById("unlabelled");
  const status = document.getElementById("status");

  const stored = await chrome.storage.local.get(DEFAULTS);
  server.value = stored.serverUrl;
  unlabelled.checked = !!stored.checkUnlabelled;
  document.body.dataset.ready = "1";

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
  });
})();
