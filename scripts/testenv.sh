#!/usr/bin/env bash
# Test environment for the suite: a Docker engine, a private
# Redis and a private PostgreSQL 15 cluster on loopback, and the busybox test image.
#
#   scripts/testenv.sh up      start what is missing, then build the image
#   scripts/testenv.sh image   build (or reuse) dockyard-test/busybox:latest
#   scripts/testenv.sh down    stop what `up` started, and nothing else
#
# `up` is idempotent and leaves alone services that were already running (a
# developer's own dockerd, say): only what it started is written to the state dir,
# and `down` stops only what is written there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.testenv"
REDIS_PORT="${TEST_REDIS_PORT:-6390}"
PG_PORT="${TEST_PG_PORT:-5440}"
PG_BIN=/usr/lib/postgresql/15/bin
# What up() started of PostgreSQL: the postmaster's pid, then the cluster's directory.
PG_STATE="$STATE/postgres"
IMAGE="dockyard-test/busybox:latest"
BUSYBOX=/bin/busybox
DOCKERD_LOG=/var/log/dockerd.log

die() { echo "testenv: $*" >&2; exit 1; }
need() { # need CMD PACKAGE
    command -v "$1" >/dev/null 2>&1 \
        || die "$1 not found: install Debian's $2 (apt-get install $2)"
}
docker_up() { docker info >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
pg_up() { "$PG_BIN/pg_isready" -q -t 2 -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1; }

# Is PID alive with a command line matching REGEX? Guards against a recycled pid in
# a stale state file: we must never signal a process we did not start.
alive() { # alive PID REGEX
    [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] \
        && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qE -- "$2"
}
# What our own processes look like (the second engine's dockerd has arguments).
DOCKERD_RE='^dockerd $'
REDIS_RE="redis-server [^ ]*:$REDIS_PORT( |\$)"

# Stop PID (if it still matches REGEX) with SIGTERM; SIGKILL only after TIMEOUT s.
stop_pid() { # stop_pid PID REGEX TIMEOUT
    local pid="$1" i
    alive "$pid" "$2" || return 0
    kill -TERM "$pid"
    for ((i = 0; i < $3 * 10; i++)); do
        alive "$pid" "$2" || return 0
        sleep 0.1
    done
    echo "testenv: pid $pid ignored SIGTERM for $3 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

start_dockerd() {
    need dockerd docker.io
    echo "testenv: starting dockerd (log: $DOCKERD_LOG)"
    # setsid + nohup: the engine must outlive this shell and any terminal it had.
    setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$! i
    # Written before waiting, so a `down` after a failed start still stops it.
    echo "$pid" >"$STATE/dockerd.pid"
    for ((i = 0; i < 60; i++)); do
        docker_up && break
        sleep 1
        # Give up early if it died (checked after the sleep: until setsid and nohup
        # have exec'd, the pid does not look like dockerd yet).
        dockerd_pid "$pid" >/dev/null || break
    done
    if ! docker_up; then
        stop_pid "$(dockerd_pid "$pid" || true)" "$DOCKERD_RE" 20
        rm -f "$STATE/dockerd.pid"
        echo "testenv: dockerd did not answer within 60 s; its log ($DOCKERD_LOG) ends with:" >&2
        tail -n 15 "$DOCKERD_LOG" | sed 's/^/    /' >&2
        exit 1
    fi
    dockerd_pid "$pid" >"$STATE/dockerd.pid" || true
}

# The pid of the dockerd we started: $! normally, dockerd's own pidfile should setsid
# have had to fork (it does when it is started as a process-group leader).
dockerd_pid() { # dockerd_pid PID
    local p
    for p in "$1" "$(cat /var/run/docker.pid 2>/dev/null || true)"; do
        if alive "$p" "$DOCKERD_RE"; then echo "$p"; return 0; fi
    done
    return 1
}

start_redis() {
    need redis-server redis-server
    echo "testenv: starting redis-server on 127.0.0.1:$REDIS_PORT"
    # No persistence: tests must never depend on (or leave) data between runs.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
        --save '' --appendonly no --pidfile "$STATE/redis.pid" --dir "$STATE" \
        --logfile "$STATE/redis.log"
    local i
    for ((i = 0; i < 100; i++)); do
        redis_up && return 0
        sleep 0.1
    done
    die "redis-server did not answer on 127.0.0.1:$REDIS_PORT within 10 s; see $STATE/redis.log"
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's
# `postgres` user; as anyone else, to that user. From /, so that a private working
# directory does not trouble the tools.
as_pg() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi
}

# Is our recorded postmaster still the one running the recorded cluster? Prints its
# pid and directory. Guards `down` (and `up`'s reuse) against a stale record: a
# recycled pid, a cluster someone else restarted, or one in another directory.
pg_ours() {
    local pid dir
    [ -f "$PG_STATE" ] || return 1
    { read -r pid && read -r dir; } <"$PG_STATE" || return 1
    [ -n "$pid" ] && [ -n "$dir" ] || return 1
    # The cluster's own lock file must name the same pid...
    [ "$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)" = "$pid" ] || return 1
    # ...and that pid must be a postgres serving exactly that data directory.
    [ -r "/proc/$pid/cmdline" ] \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "postgres -D $dir/data " \
        || return 1
    echo "$pid $dir"
}

start_postgres() {
    [ -x "$PG_BIN/initdb" ] \
        || die "PostgreSQL 15 not found in $PG_BIN: install Debian's postgresql (apt-get install postgresql)"
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        die "there is no postgres user to run the test cluster as: reinstall Debian's postgresql (apt-get install --reinstall postgresql)"
    fi
    local dir="$STATE/pg"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    # A checkout under a private directory (/root, say) is out of the postgres user's
    # reach: then the cluster lives in a fresh directory of its own under /tmp.
    if ! as_pg test -w "$dir" 2>/dev/null; then
        dir="$(mktemp -d /tmp/dockyard-testenv-pg.XXXXXX)"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    fi
    # A cluster already running in that directory (started for another port) would
    # be wiped below: refuse instead.
    if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        die "a test PostgreSQL is already running from $dir/data but not answering on 127.0.0.1:$PG_PORT: stop it first (scripts/testenv.sh down)"
    fi
    echo "testenv: starting PostgreSQL 15 on 127.0.0.1:$PG_PORT (log: $dir/log)"
    # A throwaway cluster, made afresh on every start: no leftovers of an earlier run,
    # and no crash safety needed (fsync and synchronous commit off, for speed).
    rm -rf "$dir/data"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 \
        || die "initdb failed for $dir/data; see $dir/initdb.log"
    # -w: return once the server accepts connections (or fail after 60 s).
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/log" \
        -o "-p $PG_PORT -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null; then
        # It may be up but slow: stop whatever started in our directory.
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        echo "testenv: PostgreSQL did not start on 127.0.0.1:$PG_PORT; its log ($dir/log) ends with:" >&2
        tail -n 15 "$dir/log" | sed 's/^/    /' >&2
        exit 1
    fi
    printf '%s\n%s\n' "$(head -n 1 "$dir/data/postmaster.pid")" "$dir" >"$PG_STATE"
    # The database DATABASE_URL names (the suite itself makes test_dockyard_<run id>).
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres dockyard \
        || die "could not create database dockyard on 127.0.0.1:$PG_PORT; see $dir/log"
}

stop_postgres() {
    local ours pid dir
    if ours="$(pg_ours)"; then
        read -r pid dir <<<"$ours"
        # fast: roll back open transactions and disconnect clients, then shut down.
        if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null; then
            # Keep the record: a second `down` may still stop it.
            echo "testenv: pg_ctl could not stop the PostgreSQL of $dir (pid $pid)" >&2
            return 1
        fi
        # A fallback directory under /tmp (see start_postgres) is ours alone.
        case "$dir" in /tmp/dockyard-testenv-pg.*) rm -rf "$dir" ;; esac
    else
        # Stopped already, or restarted by someone else: either way not ours to stop.
        echo "testenv: the PostgreSQL recorded in $PG_STATE is no longer the one running; leaving it alone" >&2
    fi
    rm -f "$PG_STATE"
}

build_image() {
    need docker docker.io
    [ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install Debian's busybox-static (apt-get install busybox-static)"
    # A dynamically linked busybox (Debian's `busybox` package) cannot run in FROM scratch.
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        die "$BUSYBOX is dynamically linked: install Debian's busybox-static (apt-get install busybox-static)"
    fi
    docker_up || die "the Docker engine is not answering: run scripts/testenv.sh up first"

    local sum have
    sum="$(sha256sum "$BUSYBOX" | cut -d' ' -f1)"
    have="$(docker image inspect -f '{{ index .Config.Labels "dockyard.busybox-sha256" }}' \
        "$IMAGE" 2>/dev/null || true)"
    if [ "$have" != "$sum" ]; then
        echo "testenv: building $IMAGE from $BUSYBOX"
        local old ctx
        old="$(docker image inspect -f '{{ .Id }}' "$IMAGE" 2>/dev/null || true)"
        ctx="$(mktemp -d)"
        cp "$BUSYBOX" "$ctx/busybox"
        cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
EOF
        # Legacy builder on purpose: works with or without the buildx plugin, and no
        # image has to be pulled (BuildKit would want its frontend image).
        # Its output (a deprecation notice when all is well) only matters on failure.
        local out
        if ! out="$(DOCKER_BUILDKIT=0 docker build -q --label "dockyard.busybox-sha256=$sum" \
            -t "$IMAGE" "$ctx" 2>&1)"; then
            rm -rf "$ctx"
            die "building $IMAGE failed: $out"
        fi
        rm -rf "$ctx"
        # The previous build is now untagged; drop it unless a container still uses it.
        if [ -n "$old" ]; then docker image rm "$old" >/dev/null 2>&1 || true; fi
    fi
    [ "$(docker run --rm "$IMAGE" echo ok)" = ok ] \
        || die "$IMAGE was built but 'docker run --rm $IMAGE echo ok' does not print ok"
}

up() {
    need docker docker.io
    need redis-cli redis-server
    mkdir -p "$STATE"
    docker_up || start_dockerd
    redis_up || start_redis
    # A record whose cluster is gone (crash, reboot) would mislead `down`.
    if [ -f "$PG_STATE" ] && ! pg_ours >/dev/null; then rm -f "$PG_STATE"; fi
    if pg_up; then
        pg_ours >/dev/null || echo "testenv: using the PostgreSQL already answering on 127.0.0.1:$PG_PORT"
    else
        start_postgres
    fi
    build_image
    echo "testenv: up (docker, redis on 127.0.0.1:$REDIS_PORT, postgres on 127.0.0.1:$PG_PORT, $IMAGE)"
}

down() {
    # Only what up() recorded: a service someone else started is never touched.
    local status=0
    if [ -f "$PG_STATE" ]; then stop_postgres || status=1; fi
    if [ -f "$STATE/redis.pid" ]; then
        stop_pid "$(cat "$STATE/redis.pid")" "$REDIS_RE" 10
        rm -f "$STATE/redis.pid"
    fi
    if [ -f "$STATE/dockerd.pid" ]; then
        # dockerd stops its containers first (up to their stop timeout, 10 s by default).
        stop_pid "$(cat "$STATE/dockerd.pid")" "$DOCKERD_RE" 60
        rm -f "$STATE/dockerd.pid"
    fi
    return "$status"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    image) build_image ;;
    *) die "usage: $0 up|down|image" ;;
esac
