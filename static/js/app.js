// Small behaviours that htmx attributes cannot express under our CSP (no inline JS, no eval).
document.addEventListener("click", (event) => {
  // "Select all" checkbox in the container table.
  const all = event.target.closest("input[data-select-all]");
  if (all) {
    document.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = all.checked; });
  }
  // Buttons that ask first: data-confirm="Remove web-1?"
  const confirmBtn = event.target.closest("[data-confirm]");
  if (confirmBtn && !window.confirm(confirmBtn.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// htmx shows a server's error page for 4xx/5xx responses it is told to swap; we
// swap 403/404/422 (they carry a readable message) and report the others.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if ([403, 404, 422].includes(status)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("htmx:responseError", (event) => {
  const box = document.getElementById("errors");
  if (box) {
    box.textContent = `The server answered ${event.detail.xhr.status}; try again or reload the page.`;
    box.hidden = false;
  }
});

// Keep the container list current while it is on screen. Skipped while rows are
// selected (a refresh would drop the selection) or the tab is hidden.
setInterval(() => {
  const poller = document.getElementById("poller");
  if (!poller || document.visibilityState !== "visible") return;
  if (document.querySelector("input[name=ids]:checked")) return;
  htmx.trigger(poller, "dockyard:poll");
}, 10000);

// Log pane: keep the newest line in view unless the reader paused auto-scroll.
(() => {
  const pane = document.querySelector("[data-log-follow]");
  if (!pane) return;
  let paused = false;
  const button = document.querySelector("[data-log-pause]");
  if (button) {
    button.addEventListener("click", () => {
      paused = !paused;
      button.textContent = paused ? "Resume scrolling" : "Pause scrolling";
      if (!paused) pane.scrollTop = pane.scrollHeight;
    });
  }
  new MutationObserver(() => {
    if (!paused) pane.scrollTop = pane.scrollHeight;
  }).observe(pane, { childList: true });
})();
