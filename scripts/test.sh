#!/usr/bin/env bash
# The whole test command (`make test`, CI): venv, real services (Docker, Redis,
# PostgreSQL), lint, pytest.
# Arguments go to pytest, e.g. scripts/test.sh -k logs -x
# Exits with pytest's status (or the first failing step's).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Same stamp as the Makefile's .venv target: reinstall when pyproject.toml changes.
STAMP=.venv/.installed
if [ ! -x .venv/bin/pytest ] || [ pyproject.toml -nt "$STAMP" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --disable-pip-version-check -q -e '.[test]'
    touch "$STAMP"
fi

# One id per run: the app labels what it creates with it (dashboard/settings_test.py).
DOCKYARD_TEST_RUN_ID=${DOCKYARD_TEST_RUN_ID:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}
export DOCKYARD_TEST_RUN_ID

# shellcheck disable=SC2317  # the functions below run from the EXIT trap

# Belt and braces: the tests remove what they create, but a crash or Ctrl-C must not
# leave labelled containers, networks or volumes behind for the next run to trip on.
remove_leftovers() {
    docker info >/dev/null 2>&1 || return 0
    # Only this run's containers: other suites may share the engine.
    local f=label=dockyard.test-run=$DOCKYARD_TEST_RUN_ID
    # Containers first: they hold the networks and volumes.
    leftover container "$(docker ps -aq --filter "$f")" rm -f -v
    leftover network "$(docker network ls -q --filter "$f")" network rm
    leftover volume "$(docker volume ls -q --filter "$f")" volume rm -f
    # This run's second engine (tests/containers/conftest.py names it by run id) is
    # destroyed by the session teardown; after a crash it would hold a dockerd, a
    # network namespace and mounts.
    # Likewise the mutual-TLS engine (tests/dashboard/test_tls_engines.py).
    local kind name
    for kind in SecondEngine:dockyard-h2 TLSEngine:dockyard-mtls; do
        name=${kind#*:}-$DOCKYARD_TEST_RUN_ID
        kind=${kind%%:*}
        if [ -e "/tmp/$name" ] || [ -e "/var/run/netns/$name" ]; then
            echo "WARNING: the engine /tmp/$name was left behind; destroying it" >&2
            .venv/bin/python -c "from tests.support.engines import $kind; $kind('$name', '/tmp/$name').destroy()" \
                || true
        fi
    done
}

leftover() { # leftover KIND IDS DOCKER-SUBCOMMAND...
    local kind=$1 ids=$2
    shift 2
    [ -n "$ids" ] || return 0
    echo "WARNING: tests left $(wc -w <<<"$ids") ${kind}(s) of this run; removing them" >&2
    # shellcheck disable=SC2086  # one id per word
    docker "$@" $ids >/dev/null || true
}

# On every exit (pytest done, a failed step, Ctrl-C), keeping the status we exit with:
# under `set -e` a failing command in the trap would replace it.
finish() {
    local status=$?
    remove_leftovers || true
    scripts/testenv.sh down || echo "WARNING: scripts/testenv.sh down failed" >&2
    exit "$status"
}
# Registered before `up`, so a half-done bring-up is taken down too.
trap finish EXIT
scripts/testenv.sh up

export REDIS_URL="redis://127.0.0.1:${TEST_REDIS_PORT:-6390}/0"
# PostgreSQL, as in production, on testenv's private cluster (trust auth on loopback);
# the suite makes and drops its own test_dockyard_<run id> database there.
export DATABASE_URL="postgres://postgres@127.0.0.1:${TEST_PG_PORT:-5440}/dockyard"
export DOCKYARD_TEST_IMAGE=dockyard-test/busybox:latest

.venv/bin/ruff check .
.venv/bin/ruff format --check .

.venv/bin/pytest "$@"
