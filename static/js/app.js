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

// Live log outages. The server replaces #log-status when the engine goes away or comes
// back; here the page says when its own websocket drops. htmx reconnects it, and the
// new socket carries `after=<time of the last line received>` (#log-after, kept by the
// server) so the log resumes where it stopped, with no line twice.
(() => {
  const holder = document.querySelector("[data-log-socket]");
  if (!holder || !window.htmx) return;
  const status = (text, warn) => {
    const line = document.getElementById("log-status");
    if (!line) return;
    line.textContent = text;
    line.classList.toggle("warn", warn);
  };
  const create = htmx.createWebSocket;
  htmx.createWebSocket = (url) => {
    const marker = document.getElementById("log-after");
    const after = marker && marker.dataset.after;
    if (after && /^\d+$/.test(after) && url.includes("/logs/")) {
      const target = new URL(url);
      target.searchParams.set("after", after);
      url = target.toString();
    }
    if (create) return create(url);
    const socket = new WebSocket(url, []);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };
  holder.addEventListener("htmx:wsClose", (event) => {
    const code = event.detail.event.code;
    if ([1006, 1011, 1012, 1013].includes(code)) status("Connection to the dashboard lost — reconnecting…", true);
    else if (code === 4403) status("Disconnected: your access to this container changed.", true);
    else if (code !== 1000 && code !== 1001) status(`Disconnected (${code}); reload the page to try again.`, true);
  });
  holder.addEventListener("htmx:wsOpen", () => status("", false));
})();

// A running job's output is replaced on every update: keep following its end unless
// the reader scrolled up to read something.
(() => {
  let follow = true;
  document.addEventListener("htmx:wsBeforeMessage", () => {
    const log = document.querySelector(".job-log");
    if (log) follow = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  document.addEventListener("htmx:wsAfterMessage", () => {
    const log = document.querySelector(".job-log");
    if (log && follow) log.scrollTop = log.scrollHeight;
  });
  const first = document.querySelector(".job-log");
  if (first) first.scrollTop = first.scrollHeight;
})();

// Sockets of open pages (job rows, live logs) come back soon after the web process does.
// htmx's default waits up to 2^n s (capped at 64 s) between tries: a page would sit
// for half a minute after a restart of a few seconds. Here: at most ~4 s, with jitter
// so a restart does not bring every page back at the same instant.
if (window.htmx) {
  htmx.config.wsReconnectDelay = (retryCount) => {
    const ceiling = Math.min(4000, 500 * 2 ** retryCount);
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  };
}
