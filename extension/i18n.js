/* Fill [data-i18n] elements of an extension page from _locales. */
(function () {
  "use strict";
  for (const el of document.querySelectorAll("[data-i18n]")) {
    const text = chrome.i18n.getMessage(el.getAttribute("data-i18n"));
    if (text) el.textContent = text;
  }
  document.documentElement.lang = chrome.i18n.getUILanguage();
})();
