#!/usr/bin/env bash
# Test environment for the suite (DESIGN.md section 7): a Docker engine, a private
# Redis on loopback and the busybox test image.
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
    build_image
    echo "testenv: up (docker, redis on 127.0.0.1:$REDIS_PORT, $IMAGE)"
}

down() {
    # Only what up() recorded: a service someone else started is never touched.
    if [ -f "$STATE/redis.pid" ]; then
        stop_pid "$(cat "$STATE/redis.pid")" "$REDIS_RE" 10
        rm -f "$STATE/redis.pid"
    fi
    if [ -f "$STATE/dockerd.pid" ]; then
        # dockerd stops its containers first (up to their stop timeout, 10 s by default).
        stop_pid "$(cat "$STATE/dockerd.pid")" "$DOCKERD_RE" 60
        rm -f "$STATE/dockerd.pid"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    image) build_image ;;
    *) die "usage: $0 up|down|image" ;;
esac
