"""Benchmark: the container list page vs the raw engine list call.

Target: the list page with 500 containers costs at most 2x a bare
`GET /containers/json?all=1`, and its number of DB queries does not grow with N.

    scripts/testenv.sh up            # dockerd, Redis on 6390, dockyard-test/busybox:latest
    .venv/bin/python benchmarks/list_page.py [--n 500] [--repeat 15]

Creates N containers labelled dockyard.test=1 and dockyard.bench=1 on the local
engine (about 10% running, 5% exited, the rest only created), mirrors them into a
throwaway SQLite DB under /tmp, gives half to a team with an operator, then times
interleaved rounds of the raw call and the page (as admin: all rows; as the
operator: N/2 rows). Everything it created is removed at the end, also on error or
Ctrl-C. See benchmarks/README.md for what each figure means.
"""

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKER_URL = "unix:///var/run/docker.sock"
API_VERSION = "1.41"  # what dashboard.engine uses
LABELS = {"dockyard.test": "1", "dockyard.bench": "1"}
BENCH_FILTER = {"label": "dockyard.bench=1"}
# Exits at once on SIGTERM (busybox sleep as PID 1 would ignore it) and forks nothing.
RUN_CMD = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
EXIT_CMD = ["sh", "-c", "exit 3"]
# Docker words a container's status "Up 5 seconds", "Up 6 seconds", ... for its first
# minute, then "Up About a minute" until 120 s: the mirror (and so every page view)
# would rewrite those rows on each request. Real containers are mostly older than
# that, so the timed rounds wait until the started ones are this old.
SETTLE_SECONDS = 62
WORKERS = 8


def configure(db_path):
    """Point Django at a fresh SQLite file, set it up and migrate it."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings_test"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/0")
    os.environ.setdefault("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def docker_client():
    import docker

    return docker.DockerClient(
        base_url=DOCKER_URL, version=API_VERSION, timeout=120, max_pool_size=WORKERS + 2
    )


def parallel(fn, items):
    """fn over items in a thread pool; on Ctrl-C or error, start nothing new."""
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        results = list(pool.map(fn, items))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


# ---------------------------------------------------------------- engine setup


def plan(n, seed=8):
    """Which indices run, exit, belong to the operator's team, and survive to N/5."""
    rng = random.Random(seed)
    idx = list(range(n))
    running = set(rng.sample(idx, n // 10))
    exited = set(rng.sample([i for i in idx if i not in running], n // 20))
    owned = set(rng.sample(idx, n // 2))
    small = set(rng.sample(idx, n // 5))
    return running, exited, owned, small


def create_containers(api, image, n, running, exited, prefix, labels=LABELS):
    """Create N containers; start the running/exited ones first so they settle sooner.

    Returns ({index: docker_id}, monotonic time of the last start).
    """
    started = sorted(running | exited)
    rest = [i for i in range(n) if i not in running and i not in exited]

    def create(i):
        cmd = EXIT_CMD if i in exited else RUN_CMD
        cid = api.create_container(image, cmd, name=f"{prefix}-{i:04d}", labels=labels)["Id"]
        if i in running or i in exited:
            api.start(cid)
        return i, cid

    ids = dict(parallel(create, started))
    last_start = time.monotonic()
    ids.update(parallel(create, rest))
    return ids, last_start


def remove_bench_containers(api, ids=None):
    """Remove the given containers, or every one labelled dockyard.bench=1."""
    for _ in range(3):
        todo = (
            ids
            if ids is not None
            else [c["Id"] for c in api.containers(all=True, filters=BENCH_FILTER)]
        )
        if not todo:
            return

        def remove(cid):
            try:
                api.remove_container(cid, force=True, v=True)
            except Exception as exc:  # already gone, or removal in progress
                if getattr(exc, "status_code", None) not in (404, 409):
                    raise

        parallel(remove, todo)
        if ids is not None:
            return


# ---------------------------------------------------------------- dashboard setup


def setup_dashboard():
    from django.contrib.auth import get_user_model

    from dashboard.models import Host, Membership, Role, Team

    user_model = get_user_model()
    host = Host.objects.create(name="local", url=DOCKER_URL)
    team = Team.objects.create(name="bench")
    admin = user_model.objects.create_superuser("bench-admin", password="bench-pass-123!")
    operator = user_model.objects.create_user("bench-operator", password="bench-pass-123!")
    Membership.objects.create(user=operator, team=team, role=Role.OPERATOR)
    return host, team, admin, operator


def give_to_operator(host, team, operator, docker_ids):
    from containers.models import Container
    from containers.services import sync_host

    sync_host(host)
    Container.objects.filter(host=host, docker_id__in=list(docker_ids)).update(
        owner=operator, team=team
    )


def page_client(user):
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def get_page(client):
    """One list page request; returns (seconds, rows, queries)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        response = client.get("/containers/")
        elapsed = time.perf_counter() - t0
    if response.status_code != 200:
        raise SystemExit(f"list page answered {response.status_code}")
    rows = response.content.count(b'<tr id="container-')
    return elapsed, rows, ctx.captured_queries


def is_write(query):
    return query["sql"].lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")


def steady_query_count(client, tries=3):
    """Queries of one page view in steady state: the fewest over a few views.

    The page syncs the mirror first; a view that happens to catch a status text
    change ("Exited (3) 2 minutes ago") adds an UPDATE, which is not per row.
    """
    get_page(client)  # let the sync catch up with the engine
    best = None
    for _ in range(tries):
        _, rows, queries = get_page(client)
        if best is None or len(queries) < len(best[1]):
            best = (rows, queries)
    return best


class Vanished(Exception):
    pass


def intact(api, expected):
    """Stop if some of our containers disappeared: the figures would be meaningless."""
    found = len(api.containers(all=True, filters=BENCH_FILTER))
    if found != expected:
        raise Vanished(
            f"{expected - found} of the benchmark's {expected} containers vanished during the "
            "run: another process removed them (test sessions remove every container labelled "
            "dockyard.test=1). Run it again when no tests run, or with --bench-label-only."
        )


def time_raw(api):
    t0 = time.perf_counter()
    api.containers(all=True)
    return time.perf_counter() - t0


# ---------------------------------------------------------------- report


def p90(values):
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def verdict(ok):
    return "OK" if ok else "MISSED"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="containers to create (default 500)")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument(
        "--no-settle", action="store_true", help="do not wait for status texts to settle"
    )
    parser.add_argument(
        "--show-queries", action="store_true", help="print the SQL of one page view at N"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--fresh-seconds",
        type=float,
        default=3.0,
        help="MIRROR_FRESH_SECONDS for the page (default 3, the production default; "
        "0 makes every page view re-list the engine, the worst case)",
    )
    parser.add_argument(
        "--bench-label-only",
        action="store_true",
        help="label containers dockyard.bench=1 only, so that test sessions running at "
        "the same time (which remove every dockyard.test=1 container) leave them alone",
    )
    args = parser.parse_args(argv)
    if args.n < 10 or args.repeat < 2:
        parser.error("--n must be at least 10 and --repeat at least 2")

    fd, db_path = tempfile.mkstemp(prefix="dockyard-bench-", suffix=".sqlite3", dir="/tmp")
    os.close(fd)
    # SIGTERM cleans up like Ctrl-C; SIGINT too when a shell started us in the
    # background (which makes Python ignore SIGINT).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    dc = None
    try:
        configure(db_path)
        from django.conf import settings

        dc = docker_client()
        api = dc.api
        dc.images.get(settings.TEST_IMAGE)  # fails early without scripts/testenv.sh up
        return run(args, api, settings.TEST_IMAGE)
    except Vanished as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if dc is not None:
            print("removing the benchmark's containers ...", flush=True)
            remove_bench_containers(dc.api)
            left = dc.api.containers(all=True, filters=BENCH_FILTER)
            if left:
                print(f"WARNING: {len(left)} benchmark containers are left", file=sys.stderr)
            dc.close()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django never got set up
            pass
        for suffix in ("", "-wal", "-shm"):
            Path(db_path + suffix).unlink(missing_ok=True)


def run(args, api, image):
    from django.conf import settings

    from containers.views import PAGE_SIZE

    # The test settings switch the window off; measure what production runs.
    settings.MIRROR_FRESH_SECONDS = args.fresh_seconds
    n = args.n
    running, exited, owned, small = plan(n)
    prefix = f"bench-{os.getpid()}"
    host, team, admin, operator = setup_dashboard()

    t0 = time.monotonic()
    labels = {"dockyard.bench": "1"} if args.bench_label_only else LABELS
    ids, last_start = create_containers(api, image, n, running, exited, prefix, labels)
    print(
        f"created {n} containers ({len(running)} running, {len(exited)} exited, "
        f"{n - len(running) - len(exited)} created) in {time.monotonic() - t0:.1f} s",
        flush=True,
    )
    give_to_operator(host, team, operator, (ids[i] for i in owned))
    clients = {"admin": page_client(admin), "operator": page_client(operator)}
    for client in clients.values():
        get_page(client)  # compile templates, open connections

    if not args.no_settle:
        wait = SETTLE_SECONDS - (time.monotonic() - last_start)
        if wait > 0:
            print(
                f"waiting {wait:.0f} s for the started containers' status text to settle ...",
                flush=True,
            )
            time.sleep(wait)

    counts = {n: {who: steady_query_count(c) for who, c in clients.items()}}
    if args.show_queries:
        print(f"-- SQL of the admin's page view at N={n}:")
        for q in counts[n]["admin"][1]:
            print(f"   {q['sql'][:200]}")
    intact(api, n)

    on_engine = len(api.containers(all=True))
    load = os.getloadavg()[0]
    samples = {"raw": [], "admin": [], "operator": []}
    rows_seen = {"admin": set(), "operator": set()}
    writes = 0
    for round_no in range(args.repeat + 2):  # the first two rounds warm up
        order = ["admin", "operator"] if round_no % 2 == 0 else ["operator", "admin"]
        for who in order:
            raw = time_raw(api)
            elapsed, rows, queries = get_page(clients[who])
            if round_no >= 2:
                samples["raw"].append(raw)
                samples[who].append(elapsed)
                rows_seen[who].add(rows)
                writes += any(is_write(q) for q in queries)
    intact(api, n)

    # Down to N/5 (a random fifth: the same mix of states and owners), count again.
    remove_bench_containers(api, [ids[i] for i in range(n) if i not in small])
    counts[n // 5] = {who: steady_query_count(c) for who, c in clients.items()}
    intact(api, len(small))

    print()
    print(
        f"engine: {on_engine} containers listed by the raw call ({n} made by this benchmark); "
        f"{args.repeat} timed rounds, {len(samples['raw'])} raw samples; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    raw_med = statistics.median(samples["raw"])
    print(
        f"raw call GET /containers/json?all=1: median {ms(raw_med)}, p90 {ms(p90(samples['raw']))}"
    )
    print(
        f"page: {PAGE_SIZE} rows a page; mirror re-listed when older than "
        f"{args.fresh_seconds:g} s (MIRROR_FRESH_SECONDS)"
    )
    ok = True
    for who in ("admin", "operator"):
        med = statistics.median(samples[who])
        rows = "/".join(str(r) for r in sorted(rows_seen[who]))
        ratio = med / raw_med
        ok &= ratio <= 2
        print(
            f"list page ({who}, {rows} rows) / raw call: {ratio:.1f}x "
            f"(median {ms(med)} vs {ms(raw_med)}; page p90 {ms(p90(samples[who]))}) "
            f"[target <= 2x: {verdict(ratio <= 2)}]"
        )
    print(f"timed page views that wrote to the mirror: {writes} of {2 * args.repeat}")
    for who in ("admin", "operator"):
        (big_rows, big_q), (small_rows, small_q) = counts[n][who], counts[n // 5][who]
        big_r, small_r = reads(big_q), reads(small_q)
        same = big_r == small_r
        ok &= same
        print(
            f"DB queries per page view ({who}): {describe(big_q)} at N={n} ({big_rows} rows), "
            f"{describe(small_q)} at N/5={n // 5} ({small_rows} rows): "
            f"{'equal' if same else 'NOT equal'} [target independent of N: {verdict(same)}]"
        )
    return 1 if (args.check and not ok) else 0


def reads(queries):
    return sum(not is_write(q) and not is_txn(q) for q in queries)


def is_txn(query):
    return query["sql"].lstrip().split(None, 1)[0].upper() in (
        "BEGIN",
        "COMMIT",
        "SAVEPOINT",
        "RELEASE",
        "ROLLBACK",
    )


def describe(queries):
    """'6' or '6 (+1 for mirror writes)': writes follow engine changes since the last view."""
    r = reads(queries)
    w = len(queries) - r
    return f"{r}" if not w else f"{r} (+{w} for mirror writes)"


if __name__ == "__main__":
    sys.exit(main())
