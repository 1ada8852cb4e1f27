#!/usr/bin/env bash
# `make run`: the whole dashboard on one machine, under one supervisor (supervisord).
#
# Three processes: the web server (daphne); one Celery worker (thread pool) that also
# runs Celery beat and the Docker events watcher as threads (dashboard/celery.py);
# and a private Redis, persisted in the data directory, when REDIS_URL is not set.
# A process that dies is restarted (and logged) while the others keep serving;
# Ctrl-C, or SIGTERM to this script, stops them all.
#
# Settings: DASHBOARD_PORT (8000), DASHBOARD_BIND (127.0.0.1), DASHBOARD_DATA_DIR
# (var/: database, keys, Redis data, logs), DASHBOARD_REDIS_PORT (6379),
# DASHBOARD_LOCAL_DOCKER (unix:///var/run/docker.sock), CELERY_CONCURRENCY (4),
# DASHBOARD_TRUSTED_PROXIES, and every setting of dashboard/settings.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '%s\n' "$*" >&2; }

# Prerequisites, each as one sentence rather than a traceback later.
DOCKER_URL=${DASHBOARD_LOCAL_DOCKER:-unix:///var/run/docker.sock}
if ! command -v docker >/dev/null 2>&1 && [ ! -S "${DOCKER_URL#unix://}" ]; then
  say "No Docker engine found: install Debian's docker.io (apt-get install docker.io) and start dockerd."
  exit 1
fi
if [ "${DOCKER_URL#unix://}" != "$DOCKER_URL" ] && [ ! -S "${DOCKER_URL#unix://}" ]; then
  say "No Docker engine is listening on ${DOCKER_URL}: start dockerd (e.g. 'systemctl start docker' or 'dockerd &')."
  exit 1
fi
if [ ! -x .venv/bin/supervisord ] || [ ! -x .venv/bin/daphne ]; then
  say "The virtualenv .venv is missing or out of date: start with 'make run', which installs it."
  exit 1
fi

BIND=${DASHBOARD_BIND:-127.0.0.1}
PORT=${DASHBOARD_PORT:-8000}
if (exec 3<>"/dev/tcp/$BIND/$PORT") 2>/dev/null; then
  say "Something already listens on $BIND:$PORT: stop it, or choose another port with DASHBOARD_PORT=8001."
  exit 1
fi

DATA_DIR=${DASHBOARD_DATA_DIR:-$ROOT/var}
case $DATA_DIR in /*) ;; *) DATA_DIR=$ROOT/$DATA_DIR ;; esac
export DASHBOARD_DATA_DIR=$DATA_DIR
mkdir -p "$DATA_DIR/log"
# A one-machine install keeps its keys in the data directory (dashboard/settings.py).
export DASHBOARD_GENERATE_KEYS=${DASHBOARD_GENERATE_KEYS:-true}

own_redis=
if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null 2>&1; then
    say "redis-server not found: install Debian's redis-server (apt-get install redis-server), or set REDIS_URL to a running Redis."
    exit 1
  fi
  redis_port=${DASHBOARD_REDIS_PORT:-6379}
  if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
    say "Using the Redis already answering on 127.0.0.1:$redis_port."
  else
    own_redis=1
    mkdir -p "$DATA_DIR/redis"
  fi
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
fi

# Settings first: a bad or missing setting is one sentence, not a traceback (this also
# creates the keys, before web and worker start).
if ! problem=$(.venv/bin/python - 2>&1 <<'EOF'
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
from django.core.exceptions import ImproperlyConfigured
try:
    import django
    django.setup()
except ImproperlyConfigured as exc:
    sys.exit(str(exc))
EOF
); then
  say "$problem"
  exit 1
fi

# The first-run steps tell open pages about new users and hosts through Redis: our
# own Redis runs for them, and is stopped (its data on disk) before supervisord
# starts it again.
redis_args=(--bind 127.0.0.1 --port "${redis_port:-}" --dir "$DATA_DIR/redis"
  --appendonly yes --appendfsync everysec --save "" --loglevel warning)
setup_redis=
if [ -n "$own_redis" ]; then
  redis-server "${redis_args[@]}" >>"$DATA_DIR/log/redis-setup.log" 2>&1 &
  setup_redis=$!
  trap 'kill "$setup_redis" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    kill -0 "$setup_redis" 2>/dev/null || break
    sleep 0.1
  done
  if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
    say "redis-server did not start on 127.0.0.1:$redis_port: see $DATA_DIR/log/redis-setup.log, or choose another port with DASHBOARD_REDIS_PORT."
    exit 1
  fi
fi

.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py ensure_admin --username "${DASHBOARD_ADMIN_USER:-admin}"
.venv/bin/python manage.py add_host local "$DOCKER_URL" --all-teams || true

if [ -n "$setup_redis" ]; then
  kill "$setup_redis"
  wait "$setup_redis" || true
  trap - EXIT
fi

# Every process dies with its parent, however that one ends (kill -9, a broken pipe
# after Ctrl-C in `make run | tee log`): setpriv (util-linux) sets its parent-death
# signal before it starts. No orphan is left to hold the port or the Redis data.
reaper=()
if command -v setpriv >/dev/null 2>&1; then reaper=(setpriv --pdeathsig TERM --); fi

# supervisord's configuration, written afresh on every start. Output of every process
# goes to this terminal; supervisord's own lines ("exited: worker (...; not expected)",
# "spawned: ...") say what died and what came back.
program() { # program NAME PRIORITY [ENV=VALUE] -- ARGV...
  local name=$1 priority=$2
  shift 2
  echo "[program:$name]"
  while [ "$1" != -- ]; do
    echo "environment=$1"
    shift
  done
  shift
  echo "command=$(printf '%q ' "${reaper[@]}" "$@")"
  cat <<EOF
directory=$ROOT
priority=$priority
autostart=true
; A process that exits is restarted at once; one that dies again within startsecs
; waits 1, 2, 3... s between tries, and is given up (FATAL) after startretries.
autorestart=true
startsecs=3
startretries=20
stopsignal=TERM
stopwaitsecs=15
stopasgroup=true
killasgroup=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
redirect_stderr=true

EOF
}
conf=$DATA_DIR/supervisord.conf
{
  cat <<EOF
; Written by scripts/run.sh on every start; edits here are lost.
[supervisord]
nodaemon=true
logfile=$DATA_DIR/log/supervisord.log
logfile_maxbytes=5MB
logfile_backups=1
pidfile=$DATA_DIR/supervisord.pid
childlogdir=$DATA_DIR/log
EOF
  # Silences "running as root" (privileges are not dropped either way).
  if [ "$(id -u)" = 0 ]; then echo "user=root"; fi
  echo
  if [ -n "$own_redis" ]; then
    # Append-only file in the data directory: queued jobs survive a restart.
    program redis 10 -- redis-server "${redis_args[@]}"
  fi
  # Threads: the tasks wait on the Docker engine, not the CPU. Beat and the events
  # watcher run inside this worker (dashboard/celery.py).
  program worker 20 'DASHBOARD_WORKER_EMBEDS="beat,events"' -- \
    "$ROOT/.venv/bin/celery" -A dashboard worker --pool threads \
    --concurrency "${CELERY_CONCURRENCY:-4}" -Q "${CELERY_QUEUE:-dashboard}" --loglevel INFO \
    --without-gossip --without-mingle --without-heartbeat
  program web 30 -- "$ROOT/.venv/bin/daphne" -b "$BIND" -p "$PORT" dashboard.asgi:application
} >"$conf"

say "Dockyard on http://$BIND:$PORT/  (Ctrl-C stops everything)"
# supervisord runs as this shell's child rather than in its place: a closed terminal
# (SIGHUP, which supervisord alone would take as "reload") or SIGTERM to this script
# stops everything, and so does Ctrl-C (SIGINT reaches supervisord from the terminal
# too; a second one is harmless).
"${reaper[@]}" .venv/bin/supervisord -c "$conf" &
supervisor=$!
trap 'kill -TERM "$supervisor" 2>/dev/null || true' HUP TERM
trap 'kill -INT "$supervisor" 2>/dev/null || true' INT
set +e
while :; do
  wait "$supervisor"
  status=$?
  kill -0 "$supervisor" 2>/dev/null || break
done
exit "$status"
