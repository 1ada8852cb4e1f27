"""Settings for the test suite: the real services, isolated from a dev install.

Each pytest process gets its own Celery queue and channel-layer prefix, so a
dashboard running on the same Redis never picks up a test's jobs.
"""

import os
import uuid

from .settings import *  # noqa: F403
from .settings import BASE_DIR, CACHES, CHANNEL_LAYERS, DATABASES

RUN_ID = os.environ.get("DOCKYARD_TEST_RUN_ID") or uuid.uuid4().hex[:8]
CELERY_TASK_DEFAULT_QUEUE = f"test-{RUN_ID}"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{RUN_ID}"
CACHES["api"]["KEY_PREFIX"] = f"test-{RUN_ID}-api"
# A test database per run, so two suites on one machine do not wipe each other's.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{RUN_ID}.sqlite3")}
else:
    # PostgreSQL (scripts/test.sh): test_dockyard_<run id> on the same server.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{RUN_ID}"}
# Tests read the engine on every page view unless they test the freshness window.
MIRROR_FRESH_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
DOCKER_TIMEOUT = 15
DOCKER_PING_TIMEOUT = 3
AXES_FAILURE_LIMIT = 3
# Every container this run creates through the app carries its run id, so cleanup
# removes this run's containers only (several suites may share one engine).
CONTAINER_LABELS = {"dockyard.test-run": RUN_ID}
TEST_IMAGE = os.environ.get("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
LOGGING = {"version": 1, "disable_existing_loggers": False}
