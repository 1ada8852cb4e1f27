"""Pure parsers: cgroup v1 / v2 file contents, /proc files and stats API replies → figures.

Nothing here opens a file or calls the engine; `monitoring.collector` reads and
calls these, and tests feed them contents captured from real engines
(tests/monitoring/fixtures/).

A container's reading is a `Counters` (cumulative counters and gauges at one
instant). `metrics(prev, cur)` turns two readings of the same container into the
figures of `monitoring.queries.METRICS`: rates are Δ/Δt, a counter that went down
(the container restarted) or a changed pid drops that delta rather than
recording a negative or a huge rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# memory.limit_in_bytes on v1 without a limit: PAGE_COUNTER_MAX × page size
# (9223372036854771712 on 4 KiB pages). Anything at or above the host's memory is
# treated as no limit too, as docker stats does.
V1_NO_LIMIT = 2**62


@dataclass(frozen=True, slots=True)
class Counters:
    """One reading of one container; None = not available from this source."""

    t_ns: int  # wall clock of the reading, ns since the epoch
    pid: int | None = None
    cpu_ns: int | None = None  # cumulative CPU time of all its tasks
    periods: int | None = None  # CFS enforcement periods so far
    throttled: int | None = None  # periods in which it was throttled
    mem_usage: int | None = None
    mem_inactive_file: int | None = None
    mem_limit: int | None = None  # None: no limit
    blk_read: int | None = None  # cumulative bytes
    blk_write: int | None = None
    pids: int | None = None
    net_rx: int | None = None  # cumulative bytes, all interfaces but lo
    net_tx: int | None = None


# --- single files -------------------------------------------------------------


def parse_int(text):
    """A file holding one integer, or "max" (v2: no limit) → None."""
    value = text.strip()
    if value == "max" or value == "":
        return None
    return int(value)


def parse_keyed(text):
    """Flat keyed files (`cpu.stat`, `memory.stat`): "key value" per line → {key: int}."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value:
            try:
                out[key] = int(value)
            except ValueError:
                continue
    return out


def keyed_value(text, key):
    """One value of a flat keyed file, without parsing the rest (memory.stat has ~40 lines)."""
    prefix = key + " "
    if text.startswith(prefix):
        start = len(prefix)
    else:
        found = text.find("\n" + prefix)
        if found == -1:
            return None
        start = found + 1 + len(prefix)
    end = text.find("\n", start)
    try:
        return int(text[start:end] if end != -1 else text[start:])
    except ValueError:
        return None


def parse_proc_cgroup(text):
    """/proc/<pid>/cgroup → {controller: path}; the v2 hierarchy ("0::/…") is under "".

    v1 lines are "id:controller[,controller…]:path"; a named hierarchy such as
    "name=systemd" keeps its name.
    """
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out[""] = path
            continue
        for controller in controllers.split(","):
            out[controller] = path
    return out


def parse_blkio_v1(text):
    """blkio.throttle.io_service_bytes(_recursive) → (read, write) bytes over all devices.

    Lines are "maj:min Op bytes" with Op Read/Write/Sync/Async/Discard/Total, and a
    last "Total N" line; only Read and Write are summed (Sync/Async/Total would count
    the same bytes again).
    """
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        if parts[1] == "Read":
            read += int(parts[2])
        elif parts[1] == "Write":
            write += int(parts[2])
    return read, write


def parse_io_stat_v2(text):
    """io.stat (v2, nested keyed: "maj:min rbytes=… wbytes=… rios=…") → (read, write)."""
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def parse_net_dev(text):
    """/proc/<pid>/net/dev → (rx bytes, tx bytes) summed over interfaces other than lo."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if not rest or name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def no_limit(limit, host_mem_total=None):
    """The limit, or None when it means "no limit" (max, v1's huge number, ≥ host RAM)."""
    if limit is None or limit >= V1_NO_LIMIT:
        return None
    if host_mem_total and limit >= host_mem_total:
        return None
    return limit


# --- a container's files ------------------------------------------------------

# The files a reading needs, per cgroup version: (controller, file name). The
# collector reads exactly these; the fixtures hold exactly these.
V1_FILES = (
    ("cpuacct", "cpuacct.usage"),
    ("cpu", "cpu.stat"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.stat"),
    ("blkio", "blkio.throttle.io_service_bytes_recursive"),
    ("pids", "pids.current"),
)
V2_FILES = (
    ("", "cpu.stat"),
    ("", "memory.current"),
    ("", "memory.max"),
    ("", "memory.stat"),
    ("", "io.stat"),
    ("", "pids.current"),
)


def counters_v1(files, net_dev, t_ns, pid=None, host_mem_total=None):
    """A reading from cgroup v1 file contents ({file name: text}; missing files → None)."""
    cpu = parse_keyed(files.get("cpu.stat", ""))
    mem = files.get("memory.stat", "")
    # total_* covers the whole subtree, as docker stats uses on v1.
    inactive = keyed_value(mem, "total_inactive_file")
    if inactive is None:
        inactive = keyed_value(mem, "inactive_file")
    blk = files.get("blkio.throttle.io_service_bytes_recursive")
    read, write = parse_blkio_v1(blk) if blk is not None else (None, None)
    rx, tx = parse_net_dev(net_dev) if net_dev is not None else (None, None)
    usage = _int_or_none(files.get("memory.usage_in_bytes"))
    limit = _int_or_none(files.get("memory.limit_in_bytes"))
    if limit is None:
        # The collector reads the limit here rather than from memory.limit_in_bytes:
        # the same number for a container, and the parents' limits count too.
        limit = keyed_value(mem, "hierarchical_memory_limit")
    return Counters(
        t_ns=t_ns,
        pid=pid,
        cpu_ns=_int_or_none(files.get("cpuacct.usage")),
        periods=cpu.get("nr_periods"),
        throttled=cpu.get("nr_throttled"),
        mem_usage=usage,
        mem_inactive_file=inactive,
        mem_limit=no_limit(limit, host_mem_total),
        blk_read=read,
        blk_write=write,
        pids=_int_or_none(files.get("pids.current")),
        net_rx=rx,
        net_tx=tx,
    )


def counters_v2(files, net_dev, t_ns, pid=None, host_mem_total=None):
    """A reading from cgroup v2 file contents ({file name: text})."""
    cpu = parse_keyed(files.get("cpu.stat", ""))
    io = files.get("io.stat")
    read, write = parse_io_stat_v2(io) if io is not None else (None, None)
    rx, tx = parse_net_dev(net_dev) if net_dev is not None else (None, None)
    usage_usec = cpu.get("usage_usec")
    return Counters(
        t_ns=t_ns,
        pid=pid,
        cpu_ns=usage_usec * 1000 if usage_usec is not None else None,
        periods=cpu.get("nr_periods"),
        throttled=cpu.get("nr_throttled"),
        mem_usage=_int_or_none(files.get("memory.current")),
        mem_inactive_file=keyed_value(files.get("memory.stat", ""), "inactive_file"),
        mem_limit=no_limit(_int_or_none(files.get("memory.max")), host_mem_total),
        blk_read=read,
        blk_write=write,
        pids=_int_or_none(files.get("pids.current")),
        net_rx=rx,
        net_tx=tx,
    )


def _int_or_none(text):
    if text is None:
        return None
    try:
        return parse_int(text)
    except ValueError:
        return None


# --- the stats API (fallback for hosts whose cgroups are not readable here) ---


def parse_engine_time(value):
    """The stats API's "read" (RFC 3339 with up to 9 fractional digits) → ns, or None."""
    if not value or value.startswith("0001-"):
        return None
    try:
        head, _, rest = value.partition(".")
        frac = ""
        zone = "Z"
        if rest:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            frac, zone = rest[:digits], rest[digits:]
        else:
            for sign in ("Z", "+", "-"):
                idx = head.find(sign, 10)
                if idx != -1:
                    head, zone = head[:idx], head[idx:]
                    break
        zone = "+00:00" if zone in ("Z", "") else zone
        seconds = datetime.fromisoformat(head + zone).timestamp()
        return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9])
    except ValueError:
        return None


def counters_from_stats(stats, t_ns=None, host_mem_total=None):
    """A reading from one stats API reply (`stream=false`, `one-shot=true`), v1 or v2 engine."""
    t_ns = parse_engine_time(stats.get("read")) or t_ns
    cpu = stats.get("cpu_stats") or {}
    usage = (cpu.get("cpu_usage") or {}).get("total_usage")
    throttling = cpu.get("throttling_data") or {}
    memory = stats.get("memory_stats") or {}
    mem = memory.get("stats") or {}
    inactive = mem.get("total_inactive_file", mem.get("inactive_file"))
    read = write = None
    entries = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive")
    if entries is not None:
        read = write = 0
        for entry in entries:
            op = str(entry.get("op", "")).lower()
            if op == "read":
                read += int(entry.get("value", 0))
            elif op == "write":
                write += int(entry.get("value", 0))
    rx = tx = None
    networks = stats.get("networks")
    if networks is not None:
        rx = sum(int(n.get("rx_bytes", 0)) for name, n in networks.items() if name != "lo")
        tx = sum(int(n.get("tx_bytes", 0)) for name, n in networks.items() if name != "lo")
    return Counters(
        t_ns=t_ns,
        cpu_ns=usage,
        periods=throttling.get("periods"),
        throttled=throttling.get("throttled_periods"),
        mem_usage=memory.get("usage"),
        mem_inactive_file=inactive,
        mem_limit=no_limit(memory.get("limit"), host_mem_total),
        blk_read=read,
        blk_write=write,
        pids=(stats.get("pids_stats") or {}).get("current"),
        net_rx=rx,
        net_tx=tx,
    )


# --- two readings → the figures -------------------------------------------------


def _rate(prev, cur, seconds):
    if prev is None or cur is None or cur < prev:  # a reset: drop this delta
        return None
    return (cur - prev) / seconds


def metrics(prev, cur, host_mem_total=None):
    """{metric: value} for `cur`, rates against `prev` (None, or another pid: no rates)."""
    working_set = None
    if cur.mem_usage is not None:
        inactive = cur.mem_inactive_file or 0
        working_set = cur.mem_usage - inactive if inactive < cur.mem_usage else cur.mem_usage
    limit = cur.mem_limit
    # Without a limit the host's memory is the ceiling, as docker stats shows it.
    ceiling = limit or host_mem_total
    out = {
        "cpu_percent": None,
        "cpu_throttled_percent": None,
        "mem_bytes": working_set,
        "mem_usage_bytes": cur.mem_usage,
        "mem_limit_bytes": limit,
        "mem_percent": (
            working_set * 100.0 / ceiling if working_set is not None and ceiling else None
        ),
        "net_rx_bps": None,
        "net_tx_bps": None,
        "blk_read_bps": None,
        "blk_write_bps": None,
        "pids": cur.pids,
    }
    if prev is None or prev.pid != cur.pid or cur.t_ns <= prev.t_ns:
        return out
    seconds = (cur.t_ns - prev.t_ns) / 1e9
    cpu = _rate(prev.cpu_ns, cur.cpu_ns, seconds)
    if cpu is not None:
        # ns of CPU per second of wall clock: 1e9 is one core busy = 100 %.
        out["cpu_percent"] = cpu / 1e7
    if None not in (prev.periods, cur.periods, prev.throttled, cur.throttled):
        periods = cur.periods - prev.periods
        throttled = cur.throttled - prev.throttled
        if periods >= 0 and throttled >= 0:
            out["cpu_throttled_percent"] = throttled * 100.0 / periods if periods else 0.0
    out["net_rx_bps"] = _rate(prev.net_rx, cur.net_rx, seconds)
    out["net_tx_bps"] = _rate(prev.net_tx, cur.net_tx, seconds)
    out["blk_read_bps"] = _rate(prev.blk_read, cur.blk_read, seconds)
    out["blk_write_bps"] = _rate(prev.blk_write, cur.blk_write, seconds)
    return out


# --- host totals -----------------------------------------------------------------


def parse_proc_stat_cpu(text):
    """/proc/stat's "cpu" line → (busy, total) jiffies (iowait counts as idle)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            # user nice system idle iowait irq softirq steal guest guest_nice; guest
            # time is already inside user/nice.
            values = values[:8]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            total = sum(values)
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def parse_meminfo(text):
    """/proc/meminfo → (total, used) bytes; used = MemTotal − MemAvailable, as `free`."""
    fields = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            fields[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    total = fields["MemTotal"]
    available = fields.get("MemAvailable", fields.get("MemFree", 0))
    return total, total - available


def parse_loadavg(text):
    """/proc/loadavg → (load1, load5, load15)."""
    a, b, c = text.split()[:3]
    return float(a), float(b), float(c)


def host_cpu_percent(prev, cur):
    """Busy share of all cores between two (busy, total) readings of /proc/stat, or None."""
    if prev is None:
        return None
    busy, total = cur[0] - prev[0], cur[1] - prev[1]
    if total <= 0 or busy < 0:
        return None
    return busy * 100.0 / total
