#!/usr/bin/env bash
# `make run`: the whole dashboard on one machine, under one supervisor (honcho).
# Web (daphne), Celery worker, Celery beat and the events watcher; plus a private
# Redis when REDIS_URL is not set. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

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

procfile=$(mktemp)
trap 'rm -f "$procfile"' EXIT
cp Procfile "$procfile"
if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null 2>&1; then
    say "redis-server not found: install Debian's redis-server (apt-get install redis-server), or set REDIS_URL to a running Redis."
    exit 1
  fi
  port=${DASHBOARD_REDIS_PORT:-6379}
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    say "Using the Redis already answering on 127.0.0.1:$port."
  else
    mkdir -p var/redis
    echo "redis: redis-server --bind 127.0.0.1 --port $port --dir var/redis --save '' --appendonly no" >> "$procfile"
  fi
  export REDIS_URL="redis://127.0.0.1:$port/0"
fi

mkdir -p var
.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py ensure_admin --username "${DASHBOARD_ADMIN_USER:-admin}"
.venv/bin/python manage.py add_host local "$DOCKER_URL" || true

say "Dockyard on http://${DASHBOARD_BIND:-127.0.0.1}:${DASHBOARD_PORT:-8000}/  (Ctrl-C stops everything)"
exec .venv/bin/honcho start -f "$procfile" -d .
