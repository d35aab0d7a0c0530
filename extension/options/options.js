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
    await chrome.storage.local.set({ serverUrl: url, checkUnlabelled: unlabelled.checked });
    status.textContent = msg("options_saved");
    document.body.dataset.saved = String(Date.now());
    // labelcheck's server answers the extension's origin with CORS headers,
    // so host access is optional; ask for it (the browser may prompt) but
    // never hold the saved settings hostage to the answer.
    const origin = `${new URL(url).origin}/*`;
    try {
      if (!(await chrome.permissions.contains({ origins: [origin] }))) {
        if (!(await chrome.permissions.request({ origins: [origin] }))) {
          status.textContent = `${msg("options_saved")} ${msg("options_denied")}`;
        }
      }
    } catch (_) { /* not requestable here (e.g. not a user gesture): CORS will do */ }
  });
})();
