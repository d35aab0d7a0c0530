/* The popup: the current tab's results, asked of the background worker.
 * popup.html?tab=<id> shows another tab's list (used when opened as a page). */
(async function () {
  "use strict";
  const present = globalThis.labelcheck.present;
  const msg = (name, subs) => chrome.i18n.getMessage(name, subs) || name;

  async function tabId() {
    const fromQuery = new URLSearchParams(location.search).get("tab");
    if (fromQuery !== null && /^[0-9]+$/.test(fromQuery)) return Number(fromQuery);
    const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
    return tab ? tab.id : -1;
  }

  function cell(row, content, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    row.append(td);
    return td;
  }

  function render(entries) {
    const tbody = document.querySelector("#results tbody");
    tbody.textContent = "";
    document.getElementById("empty").hidden = entries.length > 0;
    document.getElementById("results").hidden = entries.length === 0;
    for (const e of entries) {
      const result = e.result || { status: "unchecked", reasons: ["pending"] };
      const w = present.wording(result, msg);
      const row = document.createElement("tr");
      row.dataset.status = result.status;
      row.dataset.state = w.state;
      if (w.category) row.dataset.category = w.category;
      const badge = document.createElement("span");
      badge.className = `status tone-${present.toneOf(w.state)}`;
      badge.textContent = w.short;
      cell(row, badge);
      cell(row, e.kind === "page" ? msg("popup_page_item") : e.mediaUrl || "", "item");
      const p = result.producer;
      cell(row, p ? [p.name, p.filing].filter(Boolean).join(" · ") : "");
      const r = result.receipt;
      const code = document.createElement("code");
      code.textContent = r && r.index !== undefined && r.index !== null ? `#${r.index} ${r.leaf_hash || ""}` : "";
      const td = cell(row, code);
      const check = present.receiptCheck(result, msg);
      if (check) {
        const mark = document.createElement("div");
        mark.className = `check-${check.state}`;
        mark.textContent = msg(`popup_receipt_${check.state}`);
        mark.title = check.text;
        td.append(mark);
        row.dataset.receiptCheck = check.state;
      }
      tbody.append(row);
    }
    document.body.dataset.count = String(entries.length);
  }

  document.getElementById("options").addEventListener("click", (e) => {
    e.preventDefault();
    chrome.runtime.openOptionsPage();
  });

  const key = await chrome.runtime.sendMessage({ type: "ledgerKey" }).catch(() => null);
  document.getElementById("key-conflict").hidden = !(key && key.conflict);
  const id = await tabId();
  const answer = await chrome.runtime.sendMessage({ type: "tab", tabId: id });
  render((answer && answer.entries) || []);
  document.body.dataset.ready = "1";
})();
