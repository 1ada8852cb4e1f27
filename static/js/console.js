// The container console (xterm.js over /ws/containers/<pk>/exec/) and the replay of a
// recorded session. No inline script: the pages carry their parameters in data-*.
(() => {
  const box = document.getElementById("terminal");
  if (!box || !window.Terminal) return;

  const status = (text) => {
    const line = document.getElementById("console-status");
    if (line) line.textContent = text;
  };

  // ---- live console
  const form = document.getElementById("console-form");
  if (form) {
    let socket = null;
    let term = null;
    let fit = null;
    // Connect is disabled in the HTML until this handler exists: a click made earlier
    // would submit the form as a plain GET and lose the session.
    const connect = form.querySelector("button[type=submit]");
    if (connect) connect.disabled = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (socket) socket.close();
      if (term) term.dispose();
      term = new window.Terminal({ cursorBlink: true, scrollback: 5000 });
      fit = window.FitAddon ? new window.FitAddon.FitAddon() : null;
      if (fit) term.loadAddon(fit);
      term.open(box);
      if (fit) fit.fit();
      const query = new URLSearchParams();
      query.set("cmd", form.elements.cmd.value);
      query.set("user", form.elements.user.value);
      if (form.elements.privileged && form.elements.privileged.checked) query.set("privileged", "1");
      query.set("cols", term.cols);
      query.set("rows", term.rows);
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const url = `${scheme}//${window.location.host}${form.dataset.socket}?${query}`;
      const ws = new WebSocket(url);
      socket = ws;
      ws.binaryType = "arraybuffer";
      let opened = false;
      let ended = false; // the server said why it ends (exit or error)
      status("Connecting…");
      ws.onopen = () => { opened = true; status("Connected (recorded)."); term.focus(); };
      ws.onmessage = (event) => {
        if (event.data instanceof ArrayBuffer) {
          term.write(new Uint8Array(event.data));
          return;
        }
        const message = JSON.parse(event.data);
        if (message.t === "exit") { ended = true; status(`The process exited (code ${message.code}).`); }
        if (message.t === "error") { ended = true; status(message.message); }
      };
      ws.onclose = (event) => {
        if (socket !== ws) return;
        socket = null;
        if (!opened) status("Refused: you may not open this console with these options (or the session expired).");
        else if (event.code === 4403) status("Disconnected: your access to this container changed.");
        else if (!ended) {
          if (event.code !== 4409 && event.code !== 4502) {
            status("Connection lost: the console was disconnected and its shell is gone. Press Connect to start a new one.");
          }
        }
      };
      term.onData((data) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ t: "i", d: data }));
      });
      term.onResize(({ cols, rows }) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ t: "r", c: cols, r: rows }));
      });
    });
    window.addEventListener("resize", () => { if (fit) fit.fit(); });
    window.addEventListener("pagehide", () => { if (socket) socket.close(); });
    return;
  }

  // ---- replay of a recording (asciicast v2: header line, then [t, kind, data])
  const source = box.dataset.replay;
  const start = document.getElementById("replay-start");
  if (!source || !start) return;
  const MAX_PAUSE = 2; // seconds: long idle stretches are shortened
  let timer = null;
  // The button stays disabled in the HTML until this listener exists, so a click made
  // while the scripts are still loading is not silently lost.
  start.disabled = false;
  start.removeAttribute("title");
  start.addEventListener("click", async () => {
    if (timer) clearTimeout(timer);
    box.textContent = "";
    const response = await fetch(source, { credentials: "same-origin" });
    const lines = (await response.text()).split("\n").filter((l) => l.trim());
    const header = JSON.parse(lines.shift() || "{}");
    const term = new window.Terminal({ cols: header.width || 80, rows: header.height || 24 });
    term.open(box);
    const events = lines.map((l) => JSON.parse(l));
    let i = 0;
    const step = () => {
      const [at, kind, data] = events[i];
      i += 1;
      if (kind === "o") term.write(data);
      if (kind === "r") {
        const [c, r] = data.split("x").map(Number);
        if (c && r) term.resize(c, r);
      }
      if (i < events.length) timer = setTimeout(step, Math.min(events[i][0] - at, MAX_PAUSE) * 1000);
    };
    if (events.length) timer = setTimeout(step, Math.min(events[0][0], MAX_PAUSE) * 1000);
  });
})();
