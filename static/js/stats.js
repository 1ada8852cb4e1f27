// Charts of a container's (or a host's) figures with uPlot; live points from the
// stats socket. Everything is read from data- attributes (CSP: no inline script).
(() => {
  const RANGE_SECONDS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];
  const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

  function bytes(v) {
    if (v == null) return "—";
    let i = 0;
    while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) { v /= 1024; i += 1; }
    // Small values keep a decimal, so axis ticks of 0.2, 0.4, … B/s stay distinct.
    const digits = i || (v !== Math.round(v) && Math.abs(v) < 10) ? 1 : 0;
    return `${v.toFixed(digits)} ${BYTE_UNITS[i]}`;
  }

  function format(v, unit) {
    if (v == null) return "—";
    if (unit === "%") return `${v.toFixed(v !== 0 && Math.abs(v) < 1 ? 2 : 1)} %`;
    if (unit === "bytes") return bytes(v);
    if (unit === "bytes/s") return `${bytes(v)}/s`;
    return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2)));
  }

  function makeChart(el, data, span) {
    const unit = el.dataset.chart;
    const metrics = el.dataset.metrics.split(",");
    const labels = el.dataset.labels.split("|");
    const opts = {
      width: Math.max(280, el.clientWidth),
      height: 190,
      cursor: { drag: { x: true, y: false } },
      scales: {
        // The whole range asked for, ending at the newest point (or now): a fresh
        // container's few points do not stretch over the chart.
        x: {
          range: (u, min, max) => {
            const end = max ?? Date.now() / 1000;
            return [end - span, end];
          },
        },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [{}, { size: 82, values: (u, ticks) => ticks.map((t) => format(t, unit)) }],
      series: [{}].concat(metrics.map((m, i) => ({
        label: labels[i] || m,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        spanGaps: false,
        // Dots while the points are few (a new container: a line of one point is
        // nothing); lines alone once there are enough to draw one.
        points: { show: (u, si) => u.data[si].filter((v) => v != null).length < 60, size: 5 },
        value: (u, v) => format(v, unit),
      }))),
    };
    const columns = [data.t].concat(metrics.map((m) => data[m] || data.t.map(() => null)));
    const plot = new uPlot(opts, columns, el);
    return { el, plot, metrics };
  }

  function setStatus(text) {
    const status = document.getElementById("stats-status");
    if (status) status.textContent = text;
  }

  function updateNow(point) {
    document.querySelectorAll("#stats-now [data-now]").forEach((el) => {
      const v = point[el.dataset.now];
      el.textContent = v == null && el.dataset.none ? el.dataset.none : format(v, el.dataset.unit);
    });
  }

  function live(root, data, charts) {
    const span = RANGE_SECONDS[root.dataset.range] || 3600;
    const keys = Object.keys(data).filter((k) => Array.isArray(data[k]));
    let delay = 1000;
    const connect = () => {
      const scheme = window.location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.wsUrl}`);
      socket.onopen = () => {
        delay = 1000;
        // A stopped container keeps its "not running" line until a sweep brings a point.
        if (root.dataset.running === "1") setStatus("live");
      };
      socket.onmessage = (event) => {
        const point = JSON.parse(event.data);
        keys.forEach((k) => data[k].push(k === "t" ? point.t : (point[k] ?? null)));
        // Keep the window of the range: drop what scrolled off its left edge.
        const oldest = point.t - span;
        let cut = 0;
        while (cut < data.t.length && data.t[cut] < oldest) cut += 1;
        if (cut) keys.forEach((k) => data[k].splice(0, cut));
        charts.forEach((c) => c.plot.setData([data.t].concat(c.metrics.map((m) => data[m]))));
        updateNow(point);
        setStatus(`live · last sweep ${new Date(point.t * 1000).toLocaleTimeString()}`);
      };
      socket.onclose = (event) => {
        if ([4401, 4403, 4404].includes(event.code)) {
          setStatus("no longer allowed to watch this container; reload the page");
          return;
        }
        setStatus("disconnected — reconnecting…");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    };
    connect();
  }

  async function start(root) {
    let data;
    try {
      const response = await fetch(root.dataset.seriesUrl, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      data = await response.json();
    } catch (err) {
      setStatus(`could not load the history (${err.message})`);
      return;
    }
    const span = RANGE_SECONDS[root.dataset.range] || 3600;
    const charts = Array.from(root.querySelectorAll("[data-chart]")).map((el) => makeChart(el, data, span));
    window.addEventListener("resize", () => {
      charts.forEach((c) => c.plot.setSize({ width: Math.max(280, c.el.clientWidth), height: 190 }));
    });
    if (root.dataset.wsUrl) live(root, data, charts);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-stats]").forEach(start);
  });
})();
