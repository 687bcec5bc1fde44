"""opsportal settings: one module, every value from the environment (django-environ).

`.env.example` documents each variable. With nothing set, the portal runs on SQLite (WAL) and
Celery's filesystem transport under `var/`, so `make run` needs only Python. A bad value fails
here, at start-up, with ImproperlyConfigured, never at first use.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab  # noqa: F401  (handy in shell overrides)
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


class _FileAwareMapping(environ.FileAwareMapping):
    """os.environ where NAME_FILE (Docker/K8s secrets) supplies NAME, trailing newline dropped."""

    def __getitem__(self, key):
        file_name = self.env.get(f"{key}_FILE")
        if not file_name:
            return self.env[key]
        try:
            return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ImproperlyConfigured(f"{key}_FILE={file_name} cannot be read: {exc}") from exc


class _Env(environ.Env):
    ENVIRON = _FileAwareMapping(cache=False)


# Every variable below is read through `env`, so each accepts NAME or NAME_FILE.
env = _Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_secret(name: str, default: str | None = None) -> str | None:
    """NAME or the contents of NAME_FILE, verbatim (no `$VAR` interpolation: secrets may start with `$`)."""
    return env.ENVIRON.get(name, default)


def _generated(name: str, factory) -> str:
    """A development value kept in var/ so it survives restarts; never committed."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(factory())
        path.chmod(0o600)
    return path.read_text().strip()


DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DJANGO_ENV=production")
    SECRET_KEY = _generated("secret_key", lambda: secrets.token_urlsafe(64))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

# --- applications -------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "guardian",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "health_check",
    "django_jsonform",  # structured editors of JSON fields with a schema (apps/core/jsonform.py)
    "import_export",  # CSV/XLSX export of admin changelists (apps.core.admin.ScopedExportMixin)
    # ours, lowest layer first (DESIGN.md "Layers")
    "apps.core",
    "apps.tenants",
    "apps.notifications",
    "apps.maintenance",
    "apps.tickets",
    "apps.targets",
    "apps.monitoring",
    "apps.oncall",
    "apps.alerts",
    "apps.deployments",
    "apps.dashboard",
]

MIDDLEWARE = [
    "apps.core.health.HealthProbeMiddleware",  # /health/live and /health/ready: before host checks and sessions
    "apps.core.requestid.RequestIdMiddleware",  # X-Request-ID in and out, on every log line of the request
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "apps.core.middleware.ActiveOrganizationMiddleware",
    "apps.core.middleware.ResourceExhaustedMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "apps.core.context_processors.portal",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'opsportal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE avoids lock upgrades.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # tests on SQLite (the `sqlite` marker's run) use a file beside the database, not memory:
    # WAL and IMMEDIATE transactions as `make run` has them
    _sqlite_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", str(_sqlite_file.with_name(f"test_{_sqlite_file.name}")))
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0 if DJANGO_ENV == "test" else 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # django_prometheus's instrumented backend; the per-request health check asks the socket first
    DATABASES["default"]["ENGINE"] = "apps.core.db.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, Celery ------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

_celery_fs = VAR_DIR / "celery"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_celery_fs / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_fs / "out"),
        "data_folder_out": str(_celery_fs / "out"),
        "processed_folder": str(_celery_fs / "processed"),
        "control_folder": str(_celery_fs / "control"),  # exchange tables: under var/, not the working directory
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # Unacked tasks come back after a worker dies; must exceed the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"

# --- auth ---------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "apps.tenants.sso.backends.PortalPasswordBackend",  # ModelBackend + the per-organization "no passwords" rule
    "apps.tenants.sso.backends.PortalOIDCBackend",  # single sign-on (docs/sso.md)
    "apps.core.permissions.RolePermissionBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
if DJANGO_ENV == "test":
    # Hashing dozens of test users with PBKDF2 would dominate the suite's time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# Staff must confirm a TOTP device before the admin opens (django-otp, apps/core/mfa.py): the
# default for organizations whose rule is "inherit" (Organization.require_staff_mfa); on in
# production. Self-enrolment lets a person without a device register one at their next sign-in.
PORTAL_ADMIN_REQUIRE_OTP = env.bool("PORTAL_ADMIN_REQUIRE_OTP", default=PRODUCTION)
PORTAL_MFA_SELF_ENROLL = env.bool("PORTAL_MFA_SELF_ENROLL", default=True)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="opsportal")
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

# --- single sign-on: one platform OpenID Connect provider (mozilla-django-oidc; docs/sso.md) --
# On when OIDC_RP_CLIENT_ID is set; claims map to memberships through SSO role mappings (admin).
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET", "") or ""
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = True
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
OIDC_AUTHENTICATION_CALLBACK_URL = "admin-sso-callback"
OIDC_REDIRECT_ALLOWED_HOSTS: list[str] = []
AXES_WHITELIST_CALLABLE = "apps.tenants.sso.backends.axes_exempt"  # SSO callbacks guess no password
PORTAL_SSO_LABEL = env.str("PORTAL_SSO_LABEL", default="Sign in with single sign-on")
PORTAL_SSO_ENABLED = bool(OIDC_RP_CLIENT_ID)
if PORTAL_SSO_ENABLED:
    _missing = [n for n in ("OIDC_OP_ISSUER", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
                            "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT", "OIDC_RP_CLIENT_SECRET") if not globals()[n]]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set, so single sign-on needs {', '.join(_missing)} too (docs/sso.md)")

# --- encryption of stored secrets (credentials, channel URLs) -----------------------------
def _encryption_keys() -> str:
    raw = env_secret("PORTAL_ENCRYPTION_KEYS")
    if raw:
        return raw
    if PRODUCTION:
        raise ImproperlyConfigured("PORTAL_ENCRYPTION_KEYS must be set when DJANGO_ENV=production")
    return _generated("encryption_keys", lambda: "1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())


PORTAL_ENCRYPTION_KEYS = _encryption_keys()

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenants.tokens.authentication.PortalTokenAuthentication",  # `opp_` API tokens; other bearers fall through to JWT
        "apps.core.api.auth.PortalJWTAuthentication",
        "apps.core.mfa.PortalSessionAuthentication",  # the admin session, once its second factor is confirmed
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # bounded size and nesting: a body the parser cannot take is a JSON 400/413 (apps/core/api/parsers.py)
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.PortalJSONParser",
        "apps.core.api.parsers.PortalFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # orjson for JSON (apps/core/api/renderers.py); the browsable API for people in a browser
    "DEFAULT_RENDERER_CLASSES": ["apps.core.api.renderers.ORJSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "apps.core.api.filters.PortalFilterBackend",  # django-filter; an unknown choice is a 400 naming the allowed ones
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.portal_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "apps.core.api.throttling.UserRateThrottle",  # DRF's rate, a counter per window instead of a list of times
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="6000/min"),
        "auth": env.str("API_THROTTLE_AUTH", default="30/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env_secret("JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "opsportal API",
    "DESCRIPTION": "Tickets, alerts, notifications, targets and jobs, deployments and monitoring for many tenants.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files, not a CDN (the portal may run without internet).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several apps have a `status`/`priority` choice set; each app names its own below.
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.core.choices.Role",
        "OrgKindEnum": "apps.core.choices.OrgKind",
        "OrganizationStatusEnum": "apps.tenants.choices.OrgStatus",
    },
}

# --- email --------------------------------------------------------------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="opsportal <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- i18n, static, media ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# --- portal behaviour ---------------------------------------------------------------------
# Bearer token that may read /metrics besides staff sessions (empty: staff only).
METRICS_TOKEN = env_secret("METRICS_TOKEN", "") or ""
# Domain gauges of /metrics (database counts) are recomputed at most this often (seconds).
METRICS_CACHE_SECONDS = env.int("METRICS_CACHE_SECONDS", default=10)
# Prometheus multiprocess mode (gunicorn.conf.py sets it, compose sets it for every service): the
# directory must exist before django-prometheus creates its first metric, in every process.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
# /health/status calls a worker or beat stale when its last heartbeat is older than this.
HEALTH_HEARTBEAT_STALE_SECONDS = env.int("HEALTH_HEARTBEAT_STALE_SECONDS", default=60)
# How long a published event may wait before the sweeper re-dispatches it.
EVENTS_SWEEP_AFTER_SECONDS = env.int("EVENTS_SWEEP_AFTER_SECONDS", default=60)
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=8)
# Dispatch coalescing (apps/core/events.py): each process gathers the ids of the events its
# requests committed for this many ms and sends one dispatch task for all of them, instead of one
# broker message per request. 0 sends at once (the default under DJANGO_ENV=test, so tests see a
# request's dispatch before it returns). Nothing is lost if a process dies holding ids: the rows
# are committed and the sweeper dispatches them after EVENTS_SWEEP_AFTER_SECONDS.
EVENTS_DISPATCH_COALESCE_MS = env.int("EVENTS_DISPATCH_COALESCE_MS", default=0 if DJANGO_ENV == "test" else 10)

# --- security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_ENV=production")
# Content-Security-Policy on every response (apps/core/csp.py). Inline <script>/<style> run only
# with the per-request nonce; style="" attributes stay allowed (they cannot run code, and every
# resource they could name is limited to the portal by img-src/font-src). Each CSP_<DIRECTIVE>
# variable adds sources to its directive, e.g. CSP_IMG_SRC=https://cdn.example.com.
CSP_ENABLED = env.bool("CSP_ENABLED", default=True)
CSP_REPORT_ONLY = env.bool("CSP_REPORT_ONLY", default=False)
CSP_REPORT_URI = env.str("CSP_REPORT_URI", default="")
CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
for _directive in ("default-src", "script-src", "style-src", "img-src", "font-src", "connect-src", "form-action"):
    CSP_DIRECTIVES[_directive] += env.list("CSP_" + _directive.upper().replace("-", "_"), default=[])
for _directive, _sources in CSP_DIRECTIVES.items():
    for _source in _sources:
        if not _source or any(c in _source for c in ";, \t\r\n"):
            raise ImproperlyConfigured(
                f"CSP source {_source!r} for {_directive} (CSP_{_directive.upper().replace('-', '_')}) must be one token "
                "such as 'self' or https://cdn.example.com; separate several with commas"
            )
if any(c in CSP_REPORT_URI for c in ";, "):
    raise ImproperlyConfigured("CSP_REPORT_URI must be one URL")

# --- logging ------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Channel URLs and tokens are scrubbed from every record (any library's) before it is written.
    "filters": {"redact_secrets": {"()": "apps.core.redaction.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
# Request id on every line (apps/core/requestid.py); JSON (one object a line) in production or
# with LOG_FORMAT=json, plain text otherwise. Added to LOGGING above rather than rewriting it.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING.setdefault("filters", {})["request_id"] = {"()": "apps.core.requestid.RequestIdFilter"}
LOGGING["formatters"]["plain"]["format"] = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LOGGING["formatters"]["json"] = {"()": "apps.core.requestid.JsonFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"}
for _handler in LOGGING["handlers"].values():
    _handler.setdefault("filters", []).append("request_id")
    _handler["formatter"] = LOG_FORMAT

# Each app's own settings (limits, retention) are read below, one block per app, so the whole
# configuration stays in this module.
# --- tenants ------------------------------------------------------------------------------
# Hours an e-mailed invitation to join an organization may be accepted.
PORTAL_INVITATION_TTL_HOURS = env.int("PORTAL_INVITATION_TTL_HOURS", default=168)
if PORTAL_INVITATION_TTL_HOURS < 1:
    raise ImproperlyConfigured("PORTAL_INVITATION_TTL_HOURS must be at least 1")
# --- tenants/customers --------------------------------------------------------------------
# Verification codes emailed to a registered customer: lifetime, wrong attempts allowed per
# code, codes that may be sent per customer and hour.
CUSTOMER_VERIFICATION_CODE_TTL_MINUTES = env.int("CUSTOMER_VERIFICATION_CODE_TTL_MINUTES", default=15)
CUSTOMER_VERIFICATION_MAX_ATTEMPTS = env.int("CUSTOMER_VERIFICATION_MAX_ATTEMPTS", default=5)
CUSTOMER_VERIFICATION_MAX_SENDS_PER_HOUR = env.int("CUSTOMER_VERIFICATION_MAX_SENDS_PER_HOUR", default=5)
# Days between a deletion request and the erasure of the customer's personal data.
CUSTOMER_DELETION_GRACE_DAYS = env.int("CUSTOMER_DELETION_GRACE_DAYS", default=30)
# Seconds after which an erasure still running (its runner died) is claimed again.
CUSTOMER_DELETION_STALE_SECONDS = env.int("CUSTOMER_DELETION_STALE_SECONDS", default=3600)
# Hours an export file may be downloaded; seconds after which a pending/running export counts as lost.
CUSTOMER_EXPORT_TTL_HOURS = env.int("CUSTOMER_EXPORT_TTL_HOURS", default=72)
CUSTOMER_EXPORT_STALE_SECONDS = env.int("CUSTOMER_EXPORT_STALE_SECONDS", default=3600)
CUSTOMER_EXPORT_DISK_WAIT_HOURS = env.int("CUSTOMER_EXPORT_DISK_WAIT_HOURS", default=24)  # a full disk: retry this long, then fail
CUSTOMER_EXPORT_DISK_RETRY_SECONDS = env.int("CUSTOMER_EXPORT_DISK_RETRY_SECONDS", default=60)  # first wait; doubles, ≤ 30×
for _name in ("CUSTOMER_VERIFICATION_CODE_TTL_MINUTES", "CUSTOMER_VERIFICATION_MAX_ATTEMPTS",
              "CUSTOMER_VERIFICATION_MAX_SENDS_PER_HOUR", "CUSTOMER_EXPORT_TTL_HOURS", "CUSTOMER_EXPORT_STALE_SECONDS",
              "CUSTOMER_DELETION_STALE_SECONDS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "CustomerStateEnum": "apps.tenants.customers.choices.CustomerState",
        "InvitationStatusEnum": "apps.tenants.choices.InvitationStatus",
        "CustomerServiceStatusEnum": "apps.tenants.customers.choices.ServiceStatus",
        "DataExportStatusEnum": "apps.tenants.customers.choices.ExportStatus",
        "DeletionRequestStatusEnum": "apps.tenants.customers.choices.DeletionStatus",
        "ApiTokenKindEnum": ["personal", "service_account"],
        "ApiTokenStatusEnum": ["active", "expired", "revoked"],
    }
)
if CUSTOMER_DELETION_GRACE_DAYS < 0:
    raise ImproperlyConfigured("CUSTOMER_DELETION_GRACE_DAYS must not be negative")
# --- tickets ------------------------------------------------------------------------------
# Admin "Export" (CSV/XLSX of a filtered changelist, docs/admin.md): at most this many rows.
ADMIN_EXPORT_MAX_ROWS = env.int("ADMIN_EXPORT_MAX_ROWS", default=100_000)
TICKETS_ATTACHMENT_MAX_BYTES = env.int("TICKETS_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
TICKETS_ATTACHMENT_TYPES = frozenset(
    env.list(
        "TICKETS_ATTACHMENT_TYPES",
        default=[
            "image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain", "text/csv",
            "application/json", "application/zip", "application/gzip", "application/x-tar",
        ],
    )
)
if TICKETS_ATTACHMENT_MAX_BYTES <= 0:
    raise ImproperlyConfigured("TICKETS_ATTACHMENT_MAX_BYTES must be a positive number of bytes")
TICKETS_SLA_SWEEP_SECONDS = env.int("TICKETS_SLA_SWEEP_SECONDS", default=60)
# --- tickets: email in and out (docs/email.md) -------------------------------------------
# The domain of the Message-IDs of mail we send (threads replies, recognises our own mail: loops).
TICKETS_MAIL_DOMAIN = env.str("TICKETS_MAIL_DOMAIN", default="opsportal.localhost").strip().lower()
TICKETS_MAIL_MAX_BYTES = env.int("TICKETS_MAIL_MAX_BYTES", default=25 * 1024 * 1024)
TICKETS_MAIL_MAX_RECIPIENTS = env.int("TICKETS_MAIL_MAX_RECIPIENTS", default=50)
TICKETS_MAIL_MAX_TEXT = env.int("TICKETS_MAIL_MAX_TEXT", default=100_000)  # characters of a mail's text kept
TICKETS_MAIL_POLL_SECONDS = env.int("TICKETS_MAIL_POLL_SECONDS", default=60)
TICKETS_MAIL_POLL_BATCH = env.int("TICKETS_MAIL_POLL_BATCH", default=200)  # messages per mailbox per poll
TICKETS_MAIL_IMAP_TIMEOUT = env.int("TICKETS_MAIL_IMAP_TIMEOUT", default=30)
for _name in ("TICKETS_MAIL_MAX_BYTES", "TICKETS_MAIL_MAX_RECIPIENTS", "TICKETS_MAIL_MAX_TEXT", "TICKETS_MAIL_POLL_SECONDS",
              "TICKETS_MAIL_POLL_BATCH", "TICKETS_MAIL_IMAP_TIMEOUT"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number")
if not TICKETS_MAIL_DOMAIN or "@" in TICKETS_MAIL_DOMAIN or " " in TICKETS_MAIL_DOMAIN:
    raise ImproperlyConfigured("TICKETS_MAIL_DOMAIN is a domain name such as support.example.com")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "TicketStatusEnum": "apps.tickets.choices.TicketStatus",
        "TicketPriorityEnum": "apps.tickets.choices.TicketPriority",
    }
)
# --- notifications ------------------------------------------------------------------------
# Channels a user without a preference row gets (in-app is always on).
NOTIFICATIONS_DEFAULT_CHANNELS = env.list("NOTIFICATIONS_DEFAULT_CHANNELS", default=["in_app", "email"])
# Per-recipient flood guard: at most COUNT external deliveries per WINDOW seconds.
NOTIFICATIONS_RATE_LIMIT_COUNT = env.int("NOTIFICATIONS_RATE_LIMIT_COUNT", default=30)
NOTIFICATIONS_RATE_LIMIT_WINDOW = env.int("NOTIFICATIONS_RATE_LIMIT_WINDOW", default=600)
# Retries: base·2^(n-1) seconds ±20%, capped; a delivery fails after MAX_ATTEMPTS.
NOTIFICATIONS_BACKOFF_BASE = env.int("NOTIFICATIONS_BACKOFF_BASE", default=30)
NOTIFICATIONS_BACKOFF_MAX = env.int("NOTIFICATIONS_BACKOFF_MAX", default=3600)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
# The sweeper re-queues pending deliveries not attempted this many seconds after creation.
NOTIFICATIONS_SWEEP_AFTER = env.int("NOTIFICATIONS_SWEEP_AFTER", default=60)
# A delivery claimed by a worker that died is retried after this many seconds.
NOTIFICATIONS_CLAIM_TIMEOUT = env.int("NOTIFICATIONS_CLAIM_TIMEOUT", default=300)
# Deliveries per Celery task, rows per bulk INSERT.
NOTIFICATIONS_DELIVERY_BATCH = env.int("NOTIFICATIONS_DELIVERY_BATCH", default=500)
NOTIFICATIONS_BULK_BATCH = env.int("NOTIFICATIONS_BULK_BATCH", default=2000)
# Channels sent at once by one delivery task on the send loop, and connections per endpoint per process.
NOTIFICATIONS_SEND_CONCURRENCY = env.int("NOTIFICATIONS_SEND_CONCURRENCY", default=16)
# A failing channel: this many failed sends in a row open its circuit breaker for the cool-down
# (deliveries deferred, then one half-open probe); and no channel spends more than its budget of
# seconds per delivery task, so a hanging endpoint cannot hold a worker slot for long.
NOTIFICATIONS_BREAKER_FAILURES = env.int("NOTIFICATIONS_BREAKER_FAILURES", default=5)
NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS = env.int("NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS", default=300)
NOTIFICATIONS_CHANNEL_BUDGET_SECONDS = env.float("NOTIFICATIONS_CHANNEL_BUDGET_SECONDS", default=20.0)
for _name in ("NOTIFICATIONS_BREAKER_FAILURES", "NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS", "NOTIFICATIONS_CHANNEL_BUDGET_SECONDS"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive")
if NOTIFICATIONS_SEND_CONCURRENCY < 1:
    raise ImproperlyConfigured("NOTIFICATIONS_SEND_CONCURRENCY must be at least 1")
# Local hour (recipient's time zone) at which daily digests go out.
NOTIFICATIONS_DIGEST_DAILY_HOUR = env.int("NOTIFICATIONS_DIGEST_DAILY_HOUR", default=8)
if not 0 <= NOTIFICATIONS_DIGEST_DAILY_HOUR <= 23:
    raise ImproperlyConfigured("NOTIFICATIONS_DIGEST_DAILY_HOUR must be 0-23")
# Retention (days; 0 keeps forever), purged by the maintenance tasks purge_notifications /
# purge_deliveries (apps/notifications/maintenance.py).
NOTIFICATIONS_RETENTION_DAYS = env.int("NOTIFICATIONS_RETENTION_DAYS", default=90)
NOTIFICATIONS_DELIVERY_RETENTION_DAYS = env.int("NOTIFICATIONS_DELIVERY_RETENTION_DAYS", default=30)
for _name in ("NOTIFICATIONS_RETENTION_DAYS", "NOTIFICATIONS_DELIVERY_RETENTION_DAYS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 (keep forever) or a number of days")
# One OpenAPI name for the priority choices (notification priority and per-channel minimum).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["NotificationPriorityEnum"] = "apps.notifications.choices.Priority"
# --- targets ------------------------------------------------------------------------------
# Job execution limits (documented in .env.example).
TARGETS_OUTPUT_CAP_BYTES = env.int("TARGETS_OUTPUT_CAP_BYTES", default=1024 * 1024)
TARGETS_FLUSH_SECONDS = env.float("TARGETS_FLUSH_SECONDS", default=0.5)
TARGETS_CONNECT_TIMEOUT = env.float("TARGETS_CONNECT_TIMEOUT", default=20.0)
TARGETS_REAP_AFTER_SECONDS = env.int("TARGETS_REAP_AFTER_SECONDS", default=120)
# A run quiet this long whose Celery worker does not answer a ping is reaped at once (seconds).
TARGETS_REAP_GONE_SECONDS = env.int("TARGETS_REAP_GONE_SECONDS", default=20)
TARGETS_MAX_TARGETS_PER_RUN = env.int("TARGETS_MAX_TARGETS_PER_RUN", default=5000)
# How long the runner keeps retrying a write on a new connection after the database dropped it.
TARGETS_DB_RETRY_SECONDS = env.float("TARGETS_DB_RETRY_SECONDS", default=60.0)
if TARGETS_DB_RETRY_SECONDS < 0:
    raise ImproperlyConfigured("TARGETS_DB_RETRY_SECONDS must be 0 (no retry) or a number of seconds")
# Retention (days; 0 keeps forever), purged by the maintenance tasks purge_job_output /
# purge_job_runs (apps/targets/maintenance.py).
TARGETS_OUTPUT_RETENTION_DAYS = env.int("TARGETS_OUTPUT_RETENTION_DAYS", default=30)
TARGETS_RUN_RETENTION_DAYS = env.int("TARGETS_RUN_RETENTION_DAYS", default=180)
for _name in ("TARGETS_OUTPUT_RETENTION_DAYS", "TARGETS_RUN_RETENTION_DAYS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 (keep forever) or a number of days")
# OpenAPI: name the run and step status enums (they would collide with other apps' "status").
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "JobRunStatusEnum": "apps.targets.choices.RunStatus",
    "JobRunStepStatusEnum": "apps.targets.choices.StepStatus",
})
for _name in ("TARGETS_OUTPUT_CAP_BYTES", "TARGETS_FLUSH_SECONDS", "TARGETS_CONNECT_TIMEOUT", "TARGETS_REAP_AFTER_SECONDS",
              "TARGETS_REAP_GONE_SECONDS", "TARGETS_MAX_TARGETS_PER_RUN"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive")
# --- on-call (docs/oncall.md) ----------------------------------------------------------------
# iCalendar imports expand recurrences this far ahead and refuse more occurrences than this.
ONCALL_ICAL_HORIZON_DAYS = env.int("ONCALL_ICAL_HORIZON_DAYS", default=90)
ONCALL_ICAL_MAX_EVENTS = env.int("ONCALL_ICAL_MAX_EVENTS", default=5000)
ONCALL_CHECK_EVERY_SECONDS = env.int("ONCALL_CHECK_EVERY_SECONDS", default=300)  # gap check and shift-change notices
# --- monitoring ---------------------------------------------------------------------------
# Beat runs the dispatcher this often; it claims every due endpoint and checks it in batches.
# Lateness of a check is at most one tick plus the check itself; 2 s keeps p99 well under 5 s
# for a cheap claim query every 2 s.
MONITORING_DISPATCH_EVERY_SECONDS = env.int("MONITORING_DISPATCH_EVERY_SECONDS", default=2)
MONITORING_BATCH_SIZE = env.int("MONITORING_BATCH_SIZE", default=500)  # endpoints per check task
MONITORING_CONCURRENCY = env.int("MONITORING_CONCURRENCY", default=100)  # checks in flight per worker process
MONITORING_MAX_DUE_PER_TICK = env.int("MONITORING_MAX_DUE_PER_TICK", default=5000)
MONITORING_RESULT_RETENTION_DAYS = env.int("MONITORING_RESULT_RETENTION_DAYS", default=30)
MONITORING_MIN_INTERVAL_SECONDS = env.int("MONITORING_MIN_INTERVAL_SECONDS", default=10)
MONITORING_BODY_LIMIT_BYTES = env.int("MONITORING_BODY_LIMIT_BYTES", default=262144)  # read for keyword/JSON match
MONITORING_USER_AGENT = env.str("MONITORING_USER_AGENT", default="opsportal-monitor/1.0")
MONITORING_TREND_EVERY_SECONDS = env.int("MONITORING_TREND_EVERY_SECONDS", default=60)  # trend rules (p95, TLS expiry)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "EndpointStatusEnum": "apps.monitoring.choices.EndpointStatus",
    "CheckResultStatusEnum": "apps.monitoring.choices.ResultStatus",
    "MaintenanceRunStatusEnum": "apps.maintenance.choices.RunStatus",
})
# --- maintenance --------------------------------------------------------------------------
MAINTENANCE_BATCH_SIZE = env.int("MAINTENANCE_BATCH_SIZE", default=5000)  # rows deleted per transaction
MAINTENANCE_LOCK_SECONDS = env.int("MAINTENANCE_LOCK_SECONDS", default=6 * 3600)  # overlap lock expiry
MAINTENANCE_EVENT_RETENTION_DAYS = env.int("MAINTENANCE_EVENT_RETENTION_DAYS", default=30)
MAINTENANCE_RUN_RETENTION_DAYS = env.int("MAINTENANCE_RUN_RETENTION_DAYS", default=180)
MAINTENANCE_OPEN_WINDOW_MAX_HOURS = env.int("MAINTENANCE_OPEN_WINDOW_MAX_HOURS", default=12)
# --- alerts -------------------------------------------------------------------------------
# Resolved alerts are kept (queryable history) this many days, then purged.
ALERTS_RETENTION_DAYS = env.int("ALERTS_RETENTION_DAYS", default=30)
# Ingested alerts without endsAt resolve after this long unless seen again (Alertmanager's resolve_timeout).
ALERTS_RESOLVE_TIMEOUT_MINUTES = env.int("ALERTS_RESOLVE_TIMEOUT_MINUTES", default=5)
# Per-tenant ingestion limit (alerts per minute); above it the endpoints answer 429 with Retry-After.
ALERTS_INGEST_RATE_PER_MINUTE = env.int("ALERTS_INGEST_RATE_PER_MINUTE", default=600000)
# Largest number of alerts accepted in one ingestion request.
ALERTS_INGEST_MAX_BATCH = env.int("ALERTS_INGEST_MAX_BATCH", default=5000)
# A resent, unchanged firing alert writes nothing; its last_seen (and ends_at) at most once per this
# many seconds (0: on every resend). docs/alerts.md "Resent alerts".
ALERTS_INGEST_LAST_SEEN_SECONDS = env.int("ALERTS_INGEST_LAST_SEEN_SECONDS", default=60)
if not 0 <= ALERTS_INGEST_LAST_SEEN_SECONDS <= 3600:
    raise ImproperlyConfigured("ALERTS_INGEST_LAST_SEEN_SECONDS must be between 0 and 3600 seconds")
# A silence's creator is reminded this many minutes before it expires.
ALERTS_SILENCE_REMINDER_MINUTES = env.int("ALERTS_SILENCE_REMINDER_MINUTES", default=60)
# Default SLA at-risk buffer when a tenant sets none (settings["sla_at_risk_minutes"]).
ALERTS_SLA_AT_RISK_MINUTES = env.int("ALERTS_SLA_AT_RISK_MINUTES", default=60)
# Default agent workload threshold (open tickets) when a tenant sets none (settings["workload_threshold"]).
ALERTS_WORKLOAD_THRESHOLD = env.int("ALERTS_WORKLOAD_THRESHOLD", default=20)
# Critical tickets unassigned longer than this raise an alert.
ALERTS_UNASSIGNED_CRITICAL_MINUTES = env.int("ALERTS_UNASSIGNED_CRITICAL_MINUTES", default=15)
# A runbook that succeeded for an incident is not started again by a new alert of that incident
# for this long (its remedy is taking effect: a restarted service is still starting).
ALERTS_RUNBOOK_SETTLE_SECONDS = env.int("ALERTS_RUNBOOK_SETTLE_SECONDS", default=120)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "AlertStatusEnum": "apps.alerts.choices.AlertStatus",
    "AlertSeverityEnum": "apps.alerts.choices.Severity",
})
# --- hardening ----------------------------------------------------------------------------
# Every operation documents the portal's error body (400/401/403/404/429, 409 on delete).
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    *SPECTACULAR_SETTINGS.get("POSTPROCESSING_HOOKS", ["drf_spectacular.hooks.postprocess_schema_enums"]),
    "apps.core.api.schema.document_error_responses",
    "apps.core.api.schema.document_organization_header",
]
# Uploads are written under a temporary name and renamed when complete: a full disk leaves no
# partial file, and the API answers 507 (apps/core/storage.py, apps/core/api/errors.py).
STORAGES["default"]["BACKEND"] = "apps.core.storage.AtomicFileSystemStorage"
# --- file storage (ticket attachments, data exports) ----------------------------------------
# STORAGE_BACKEND=filesystem (default: MEDIA_ROOT, shared by web and workers through a volume)
# or s3 (django-storages: AWS S3, MinIO, Ceph...; every variable also readable as NAME_FILE).
# Downloads stay behind the API's permission checks either way: on S3 the view answers with a
# signed URL valid STORAGE_S3_URL_SECONDS (apps/core/storage.py storage_download).
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="filesystem").strip().lower()
if STORAGE_BACKEND == "s3":
    _s3 = {
        "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME", default=""),
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        "access_key": env_secret("AWS_ACCESS_KEY_ID") or None,
        "secret_key": env_secret("AWS_SECRET_ACCESS_KEY") or None,
        "location": env.str("AWS_LOCATION", default=""),
        "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
        "signature_version": env.str("AWS_S3_SIGNATURE_VERSION", default="s3v4"),
        # private objects: no ACL header, every URL signed and short-lived, names never reused
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": env.int("STORAGE_S3_URL_SECONDS", default=300),
        "file_overwrite": False,
    }
    if not _s3["bucket_name"]:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME (or AWS_STORAGE_BUCKET_NAME_FILE).")
    if not 10 <= _s3["querystring_expire"] <= 3600:
        raise ImproperlyConfigured("STORAGE_S3_URL_SECONDS is between 10 and 3600 (download links are short-lived).")
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3}
elif STORAGE_BACKEND != "filesystem":
    raise ImproperlyConfigured(f"STORAGE_BACKEND is filesystem or s3, not {STORAGE_BACKEND!r}.")
# The Redis cache degrades to misses while Redis is down (apps/core/cache.py) and never waits long.
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "apps.core.cache.ResilientRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=1.0), "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=1.0)}
    )
# --- deployments --------------------------------------------------------------------------
# Pending approvals (four eyes) expire after this many hours (tenants may override in
# settings["deployments"]["approval_ttl_hours"]).
DEPLOYMENTS_APPROVAL_TTL_HOURS = env.float("DEPLOYMENTS_APPROVAL_TTL_HOURS", default=24.0)
# The sweeper (beat) starts operations whose window opened and advances lost ones this often.
DEPLOYMENTS_SWEEP_SECONDS = env.int("DEPLOYMENTS_SWEEP_SECONDS", default=30)
# A health gate left half-way (worker died) is retried after this many seconds.
DEPLOYMENTS_STALE_SECONDS = env.int("DEPLOYMENTS_STALE_SECONDS", default=300)
for _name in ("DEPLOYMENTS_APPROVAL_TTL_HOURS", "DEPLOYMENTS_SWEEP_SECONDS", "DEPLOYMENTS_STALE_SECONDS"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive")
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "InstanceStatusEnum": "apps.deployments.choices.InstanceStatus",
    "DeploymentOperationStatusEnum": "apps.deployments.choices.OperationStatus",
    "DeploymentOperationKindEnum": "apps.deployments.choices.OperationKind",
    "DeploymentBatchStatusEnum": "apps.deployments.choices.BatchStatus",
    "DeploymentTriggerEnum": "apps.deployments.choices.Trigger",
    "RunbookActionEnum": "apps.deployments.choices.RunbookAction",
    # The maintenance window source shows up in /deployments/windows/ too.
    "MaintenanceWindowSourceEnum": "apps.maintenance.choices.WindowSource",
})
# --- dashboard ----------------------------------------------------------------------------
# Seconds between refreshes of the per-tenant summary behind the admin dashboard.
DASHBOARD_REFRESH_SECONDS = env.int("DASHBOARD_REFRESH_SECONDS", default=60)
# Seconds between recomputations of account health (tenants and customers).
DASHBOARD_HEALTH_SECONDS = env.int("DASHBOARD_HEALTH_SECONDS", default=900)
# Default KPI targets given to every tenant (percent; editable per tenant in the admin).
DASHBOARD_KPI_SLA_COMPLIANCE = env.float("DASHBOARD_KPI_SLA_COMPLIANCE", default=95.0)
DASHBOARD_KPI_JOB_SUCCESS = env.float("DASHBOARD_KPI_JOB_SUCCESS", default=99.0)
DASHBOARD_KPI_AVAILABILITY = env.float("DASHBOARD_KPI_AVAILABILITY", default=99.9)
# Default checkpoint period of new targets: day, week or month.
DASHBOARD_KPI_PERIOD = env.str("DASHBOARD_KPI_PERIOD", default="week")
for _name in ("DASHBOARD_KPI_SLA_COMPLIANCE", "DASHBOARD_KPI_JOB_SUCCESS", "DASHBOARD_KPI_AVAILABILITY"):
    if not 0 <= globals()[_name] <= 100:
        raise ImproperlyConfigured(f"{_name} is a percentage between 0 and 100.")
if DASHBOARD_KPI_PERIOD not in ("day", "week", "month"):
    raise ImproperlyConfigured("DASHBOARD_KPI_PERIOD is day, week or month.")
if DASHBOARD_REFRESH_SECONDS < 5 or DASHBOARD_HEALTH_SECONDS < 5:
    raise ImproperlyConfigured("DASHBOARD_REFRESH_SECONDS and DASHBOARD_HEALTH_SECONDS are at least 5.")
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "DashboardKpiEnum": "apps.dashboard.choices.Kpi",
    "DashboardHealthGradeEnum": "apps.dashboard.choices.HealthGrade",
})
