// Saga console: live counts and saga pages over server-sent events, confirmation dialogs,
// periodic refresh of the stuck list. Plain JS, no dependencies.
"use strict";

document.addEventListener("click", (e) => {
  const opener = e.target.closest("[data-open]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.open);
    if (!dialog) return;
    if (opener.dataset.ref) { // one dialog for every row: which record it is about
      dialog.querySelector("input[name=ref]").value = opener.dataset.ref;
      dialog.querySelector("[data-ref-text]").textContent = opener.dataset.ref;
    }
    dialog.showModal();
    return;
  }
  const closer = e.target.closest("[data-close]");
  if (closer) closer.closest("dialog").close();
});

function live(url, event, onData) {
  const source = new EventSource(url);
  const badge = document.querySelector(".live");
  source.addEventListener(event, (e) => onData(JSON.parse(e.data)));
  source.onopen = () => badge && badge.classList.remove("off");
  source.onerror = () => badge && badge.classList.add("off");
  return source;
}

// Counts by status on the sagas page.
const counts = document.querySelector("[data-live-counts]");
if (counts) {
  live(counts.dataset.liveCounts, "counts", (data) => {
    for (const [status, n] of Object.entries(data)) {
      const cell = document.querySelector(`[data-count="${status}"]`);
      if (cell && cell.textContent !== String(n)) {
        cell.textContent = n;
        cell.classList.remove("bump");
        void cell.offsetWidth; // restart the animation
        cell.classList.add("bump");
      }
    }
  });
}

// A saga page: when the saga changes, fetch the page again and swap its live part, unless a
// dialog is open (the operator is typing a reason).
const sagaLive = document.querySelector("[data-live-saga]");
if (sagaLive) {
  let first = true;
  live(sagaLive.dataset.liveSaga, "saga", async () => {
    if (first) { first = false; return; }
    if (document.querySelector("dialog[open]")) return;
    const response = await fetch(location.pathname, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("live");
    const current = document.getElementById("live");
    if (fresh && current && !document.querySelector("dialog[open]")) {
      current.innerHTML = fresh.innerHTML;
      current.classList.add("updated");
      setTimeout(() => current.classList.remove("updated"), 800);
    }
  });
}

// Pages that simply reload now and then (the stuck list).
const refresh = document.querySelector("[data-refresh]");
if (refresh) {
  setTimeout(() => { if (!document.querySelector("dialog[open]")) location.reload(); },
    Number(refresh.dataset.refresh) * 1000);
}
