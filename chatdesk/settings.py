"""chatdesk settings, all from the environment (see .env.example).

Without DATABASE_URL and REDIS_URL chatdesk runs *embedded*: SQLite, the in-memory channel
layer, Dramatiq's stub broker consumed by worker threads inside the web process, and the
WaSender simulator. With them it runs as separate web / worker / scheduler processes.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from chatdesk.config import broker_kind, channel_layers, database
from chatdesk.security import cidrs_check

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(env_file)

# Off unless asked for: a deployment that forgets the variable gets production settings (and
# refuses to start without its secrets), never the public development ones. `make demo`, the
# tests (pyproject's pytest env) and tests/procs.py turn it on explicitly.
DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
WASENDER_WEBHOOK_SECRET = env.str("WASENDER_WEBHOOK_SECRET", default="")

# Production (DEBUG off) never falls back to the public development values: what is missing is
# named here, and the web process (chatdesk/asgi.py) and every manage.py command (a system
# check, chatdesk/checks.py) refuse to start. A worker needs none of them to start: it serves no
# request, and Django refuses an empty SECRET_KEY where one is used.
PRODUCTION_MISSING = []
if not DEBUG:
    PRODUCTION_MISSING = [
        f"{name} must be set when DEBUG is off (see .env.example)."
        for name, value in [
            ("SECRET_KEY", SECRET_KEY),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("WASENDER_WEBHOOK_SECRET", WASENDER_WEBHOOK_SECRET),
        ]
        if not value
    ]
else:
    SECRET_KEY = SECRET_KEY or "django-insecure-chatdesk-development-only"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
    WASENDER_WEBHOOK_SECRET = WASENDER_WEBHOOK_SECRET or "dev-webhook-secret"

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "chatdesk",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    # Its templates and static files: the API docs (Swagger UI) are served from here, not
    # from a CDN, so they work offline and behind a strict firewall.
    "ninja",
    "django_htmx",
    "template_partials",
    "dramatiq_crontab",
    "axes",
    "csp",
    "provider",
    "customers",
    "inbox",
    "outbound",
    "insights",
    # Data generators (seed_demo, generate_large_data); no runtime app imports it.
    "devdata",
]

MIDDLEWARE = [
    "chatdesk.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "chatdesk.middleware.SpanishFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "chatdesk.middleware.WebhookAllowlistMiddleware",
    "chatdesk.middleware.HostileInputMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chatdesk.urls"
ASGI_APPLICATION = "chatdesk.asgi.application"

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
                "chatdesk.roles.nav",
                "inbox.context_processors.unread_badge",
            ],
        },
    }
]

# --- services: database, Redis, broker -----------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
SQLITE_PATH = env.path("SQLITE_PATH", default=BASE_DIR / "var" / "chatdesk.sqlite3")
DATABASES = {"default": database(DATABASE_URL, sqlite_path=Path(SQLITE_PATH))}

REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not REDIS_URL
CHANNEL_LAYERS = channel_layers(REDIS_URL, env.str("CHANNEL_LAYER", default="core"))
# Under pytest the process that enqueues is never the one that works: tests use the stub
# broker unless they start real workers themselves (which set DRAMATIQ_BROKER=redis).
DRAMATIQ_BROKER = env.str(
    "DRAMATIQ_BROKER", default=broker_kind(REDIS_URL, testing="PYTEST_VERSION" in os.environ)
)
DRAMATIQ_CRONTAB = {"REDIS_URL": REDIS_URL or None}
# Insights keeps the figures of settled days here, shared by every web process when there is a
# Redis (rebuilt from the database when lost). Keys carry the database's name, so one Redis
# serving several databases (benchmarks, tests) never answers one's figures for another's.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"chatdesk:{DATABASES['default']['NAME']}",
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- WaSender ----------------------------------------------------------------------------------
WASENDER_API_KEY = env.str("WASENDER_API_KEY", default="")
# Without a real key chatdesk talks to its own simulator (provider/wasender/simulator.py).
USE_SIMULATOR = not WASENDER_API_KEY
WASENDER_SIMULATOR_KEY = "simulator-key"
WASENDER_BASE_URL = env.str(
    "WASENDER_BASE_URL",
    default="http://127.0.0.1:8001/api" if USE_SIMULATOR else "https://www.wasenderapi.com/api",
)
WASENDER_TIMEOUT = env.float("WASENDER_TIMEOUT", default=15.0)
WASENDER_WEBHOOK_MAX_BYTES = env.int("WASENDER_WEBHOOK_MAX_BYTES", default=1024 * 1024)
# A webhook that arrives while this process is handling another is committed raw and applied
# by a worker (inbox/intake.py). Only where workers consume a real broker: embedded mode has
# them too, but needs no such throughput.
WEBHOOK_DEFER_WHEN_BUSY = env.bool("WEBHOOK_DEFER_WHEN_BUSY", default=DRAMATIQ_BROKER == "redis")
# --- Meta's WhatsApp Cloud API: one number configured from the environment -------------------
# With META_PHONE_NUMBER_ID set, that number is a channel (key "meta") beside WaSender's; more
# numbers are added on /inbox/channels/. Without META_ACCESS_TOKEN it talks to the Cloud API
# simulator (provider/cloudapi/simulator.py), as WaSender's number does without its key.
META_PHONE_NUMBER_ID = env.str("META_PHONE_NUMBER_ID", default="")
META_WABA_ID = env.str("META_WABA_ID", default="")
META_DISPLAY_PHONE = env.str("META_DISPLAY_PHONE", default="")
META_CHANNEL_NAME = env.str("META_CHANNEL_NAME", default="WhatsApp Cloud API")
META_ACCESS_TOKEN = env.str("META_ACCESS_TOKEN", default="")
META_APP_SECRET = env.str("META_APP_SECRET", default="")
META_VERIFY_TOKEN = env.str("META_VERIFY_TOKEN", default="")
META_SIMULATOR_TOKEN = "simulator-token"  # noqa: S105 (the local simulator's, public)
META_SIMULATOR_APP_SECRET = "simulator-app-secret"  # noqa: S105
META_GRAPH_URL = env.str(
    "META_GRAPH_URL",
    default="https://graph.facebook.com" if META_ACCESS_TOKEN else "http://127.0.0.1:8002",
)
META_GRAPH_VERSION = env.str("META_GRAPH_VERSION", default="v21.0")
META_TIMEOUT = env.float("META_TIMEOUT", default=15.0)
# Meta's default throughput for a number; its messaging limit (distinct customers reached by
# business-initiated messages in 24 h: 250, 1000, 10000, 100000), empty when unlimited/unknown.
META_SENDS_PER_SECOND = env.int("META_SENDS_PER_SECOND", default=80)
META_DAILY_CUSTOMER_LIMIT = env.int("META_DAILY_CUSTOMER_LIMIT", default=None)
# Error 131049 (Meta's marketing cap per customer): retried later with growing delays for
# this many days, then failed.
META_MARKETING_RETRY_DAYS = env.int("META_MARKETING_RETRY_DAYS", default=3)
# Key for the credentials stored with a channel (Fernet, 32 url-safe base64 bytes); derived
# from SECRET_KEY when unset. Changing it (or SECRET_KEY) makes stored credentials unreadable.
CHANNEL_CREDENTIALS_KEY = env.str("CHANNEL_CREDENTIALS_KEY", default="")
if META_PHONE_NUMBER_ID and META_ACCESS_TOKEN and not DEBUG:
    PRODUCTION_MISSING += [
        f"{name} must be set with META_ACCESS_TOKEN (see .env.example)."
        for name, value in [
            ("META_APP_SECRET", META_APP_SECRET),
            ("META_VERIFY_TOKEN", META_VERIFY_TOKEN),
        ]
        if not value
    ]

# Sending pace shared by every worker (messages per minute); the paid plan allows 256/min.
SEND_RATE_PER_MINUTE = env.int("SEND_RATE_PER_MINUTE", default=256)
SEND_ACCOUNT_PROTECTION = env.bool("SEND_ACCOUNT_PROTECTION", default=False)
SEND_JITTER_SECONDS = env.float("SEND_JITTER_SECONDS", default=0.0)
# Retries of transient errors (5xx, 429, timeouts): exponential backoff, capped, bounded.
SEND_MAX_ATTEMPTS = env.int("SEND_MAX_ATTEMPTS", default=8)
SEND_RETRY_BASE_SECONDS = env.float("SEND_RETRY_BASE_SECONDS", default=5.0)
SEND_RETRY_MAX_SECONDS = env.float("SEND_RETRY_MAX_SECONDS", default=300.0)
# The sweeper: rows left in "sending" or "queued" this long are looked at again.
SEND_STUCK_SENDING_SECONDS = env.int("SEND_STUCK_SENDING_SECONDS", default=120)
# An unconfirmed send (its answer was lost or broken) waits this long for WhatsApp's echo or
# message info, then becomes "unknown"; either way it is never sent again by itself.
SEND_UNCONFIRMED_SECONDS = env.int("SEND_UNCONFIRMED_SECONDS", default=600)
SEND_STUCK_QUEUED_SECONDS = env.int("SEND_STUCK_QUEUED_SECONDS", default=900)
SEND_SWEEP_EVERY_SECONDS = env.int("SEND_SWEEP_EVERY_SECONDS", default=30)
# Campaigns: how often the scheduler launches due campaigns and checks running ones, and how
# late a fan-out run may be before the tick starts a new one (a worker died mid-campaign).
CAMPAIGN_TICK_SECONDS = env.int("CAMPAIGN_TICK_SECONDS", default=10)
CAMPAIGN_STALL_SECONDS = env.int("CAMPAIGN_STALL_SECONDS", default=30)
# The public address of this app, for links handed to the provider (uploaded media).
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000")

# --- auth ------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username+IP before any password is checked.
    "chatdesk.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
# Login throttling (django-axes), for the login page and the Django admin's login alike, in two
# tiers: 5 failures for one username from one address lock that pair out for 15 minutes, even
# with the right password (another user, or the same user elsewhere, is not affected); 20
# failures from one address, whatever the usernames, lock the address.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
AXES_FAILURE_LIMIT = "chatdesk.security.login_failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chatdesk.views.login_lockout"
# REMOTE_ADDR: behind a proxy, daphne --proxy-headers puts the client's address there.
AXES_CLIENT_IP_CALLABLE = "chatdesk.security.client_ip"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Open inbox sockets re-check their session, user and role this often (inbox/socket_access.py):
# a logout, deactivation, role change or deleted session closes them within these seconds.
SOCKET_RECHECK_SECONDS = env.float("SOCKET_RECHECK_SECONDS", default=3.0)

# --- i18n: Spanish (Ecuador) first, English available ------------------------------------------
LANGUAGE_CODE = "es-ec"
LANGUAGES = [("es-ec", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Guayaquil"
USE_I18N = True
USE_TZ = True
CURRENCY = "USD"
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="EC")

# --- static and media ----------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Media (customer attachments) live outside the code tree and are served only to logged-in
# users through a view, never as public static files.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
MEDIA_URL = "/media/"
# Request bodies are capped before they are buffered (chatdesk/bodylimit.py): this much for
# anything but the webhook (WASENDER_WEBHOOK_MAX_BYTES) and a logged-in agent's uploads (the
# attachment and import caps plus a margin); a body must arrive within the timeout.
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=1024 * 1024)
REQUEST_BODY_TIMEOUT = env.float("REQUEST_BODY_TIMEOUT", default=30.0)
REQUEST_UPLOAD_TIMEOUT = env.float("REQUEST_UPLOAD_TIMEOUT", default=300.0)
CUSTOMER_IMPORT_MAX_BYTES = env.int("CUSTOMER_IMPORT_MAX_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# What an agent may attach to a reply, per kind (WhatsApp's limits; megabytes).
ATTACHMENT_MAX_BYTES = {
    kind: env.int(f"ATTACHMENT_MAX_MB_{kind.upper()}", default=mb) * 1024 * 1024
    for kind, mb in {"image": 5, "audio": 16, "video": 16, "document": 50}.items()
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- production hardening -----------------------------------------------------------------------
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # TLS ends at the proxy, which must set (not pass through) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load-balancer probes speak plain HTTP to the process: no redirect for them.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (django-csp): no inline script, no inline style, no eval, and the
# browser may connect only to us: 'self' (which CSP Level 3 browsers also read as our own ws:
# and wss:; a browser test proves Chromium does) and, for the others, the inbox socket at
# PUBLIC_URL's host. htmx's own indicator <style> is switched off in base.html (htmx-config).
# In production it is enforced; on a laptop it is sent as Report-Only so the browser console
# names what would break (CSP_REPORT_ONLY=0 enforces it there too, as the CSP browser test does).
_public = urlsplit(PUBLIC_URL)
INBOX_SOCKET_ORIGIN = f"{'wss' if _public.scheme == 'https' else 'ws'}://{_public.netloc}"
_csp = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", INBOX_SOCKET_ORIGIN],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Not named CSP_REPORT_ONLY here: django-csp 4 takes CSP_* settings for its old format.
_csp_report_only = env.bool("CSP_REPORT_ONLY", default=DEBUG)
CONTENT_SECURITY_POLICY = None if _csp_report_only else _csp
CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp if _csp_report_only else None

# --- webhook source ------------------------------------------------------------------------------
# Optional allowlist of the addresses WaSender calls from (CIDRs, comma separated); empty = any.
# The client address is REMOTE_ADDR (behind a proxy: daphne --proxy-headers).
WASENDER_WEBHOOK_ALLOWED_IPS = env.list("WASENDER_WEBHOOK_ALLOWED_IPS", default=[])
try:
    cidrs_check(WASENDER_WEBHOOK_ALLOWED_IPS)
except ValueError as exc:
    raise ImproperlyConfigured(f"WASENDER_WEBHOOK_ALLOWED_IPS: {exc}") from exc

# --- logging -------------------------------------------------------------------------------------
# json: one JSON object per line (time, level, logger, message, request_id, and message_id /
# webhook_event_id when known) for a log collector; plain for a person at a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "chatdesk.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "chatdesk.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # django-axes says INFO for every login (even "deleted 0 attempts"); lockouts are WARNING.
        "axes": {"level": "WARNING"},
        # The scheduler logs every tick (several a minute) at INFO.
        "apscheduler": {"level": "WARNING"},
    },
}

# Modules that declare Dramatiq actors (and dramatiq-crontab schedules). The worker and the
# scheduler import them all; nothing else needs to.
ACTOR_MODULES: list[str] = [
    "outbound.pipeline",
    "outbound.sweeper",
    "inbox.intake",
    "inbox.media",
    "outbound.reminders",
    "outbound.campaigns.launch",
    "outbound.rules",
    "outbound.meta_templates",
    "insights.rollups",
]
