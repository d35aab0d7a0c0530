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
    // A server other than the default needs host access unless it sends CORS
    // headers for the extension (labelcheck's server does). Ask; go on if denied.
    const origin = `${new URL(url).origin}/*`;
    let granted = true;
    try {
      if (!(await chrome.permissions.contains({ origins: [origin] }))) {
        granted = await chrome.permissions.request({ origins: [origin] });
      }
    } catch (_) {
      granted = false; // no user gesture (automation): CORS must do
    }
    await chrome.storage.local.set({ serverUrl: url, checkUnlabelled: unlabelled.checked });
    status.textContent = granted ? msg("options_saved") : `${msg("options_saved")} ${msg("options_denied")}`;
    document.body.dataset.saved = String(Date.now());
  });
})();
