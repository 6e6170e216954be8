"""Django settings for Établi, driven by ETABLI_* environment variables.

Every setting has a safe default so that `etabli start` works with nothing configured:
SQLite in the data directory, a secret key generated there on first run, DEBUG off.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import dj_database_url


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("ETABLI_DATA_DIR", Path.cwd() / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    configured = os.environ.get("ETABLI_SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        # Written with owner-only permissions; generated once and kept for the life of the data.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("ETABLI_DEBUG", False)
ALLOWED_HOSTS = _env_list("ETABLI_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _env_list("ETABLI_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "etabli.core",
    "etabli.accounts",
    "etabli.workshops",
    "etabli.clients",
    "etabli.orders",
    "etabli.materials",
    "etabli.documents",
    "etabli.production",
    "etabli.design",
    "etabli.stonesetting",
    "etabli.finishing",
    "etabli.quality",
    "etabli.shipping",
    "django_tasks",
    "django_tasks_db",
    "etabli.alerts",
    "etabli.notifications",
    "etabli.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "etabli.core.middleware.UserLanguageMiddleware",
    "etabli.core.middleware.ApiJsonErrorsMiddleware",
    "etabli.core.middleware.BusyDatabaseMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "etabli.urls"
WSGI_APPLICATION = "etabli.wsgi.application"

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
                "django.template.context_processors.i18n",
                "etabli.core.context_processors.etabli",
            ],
        },
    },
]

_SQLITE_URL = f"sqlite:///{DATA_DIR / 'etabli.sqlite3'}"
DATABASE_URL = os.environ.get("ETABLI_DATABASE_URL", "").strip() or _SQLITE_URL
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on the
        # busy timeout instead of failing when one tries to upgrade a read lock.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
    }
    # Tests use a file, not shared-cache memory, so that concurrent tests see real SQLite
    # locking; one file per test process, so two runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("ETABLI_TEST_SQLITE_NAME")
        or str(DATA_DIR / f"test_etabli_{os.getpid()}.sqlite3"),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("ETABLI_TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

# A few indexes carry extra columns for PostgreSQL's index-only scans (INCLUDE); SQLite builds
# them without those columns, which is all it can do and is fine.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Front-end libraries fetched from the npm registry by `etabli assets` (never committed): they
# live beside the installed packages, like any other dependency.
VENDOR_STATIC_DIR = Path(os.environ.get("ETABLI_VENDOR_DIR", Path(sys.prefix) / "share" / "etabli"))
try:
    VENDOR_STATIC_DIR.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only install: `etabli assets` will say where it cannot write
    pass
STATICFILES_DIRS = [VENDOR_STATIC_DIR] if VENDOR_STATIC_DIR.is_dir() else []
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploaded documents on S3-compatible storage (AWS S3, MinIO, Scaleway, OVH…) when a bucket is
# named. Objects stay private: files are always served through the access-checked
# /documents/<token>/ view, never from a bucket URL.
ETABLI_S3_BUCKET = os.environ.get("ETABLI_S3_BUCKET", "").strip()


def s3_storage(bucket: str, *, endpoint_url: str = "", region: str = "", access_key_id: str = "",
               secret_access_key: str = "", addressing_style: str = "") -> dict:
    """The STORAGES entry for documents in an S3-compatible bucket."""
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url or None,
        "region_name": region or None,
        "access_key": access_key_id or None,
        "secret_key": secret_access_key or None,
        # Other providers than AWS usually want path-style addresses.
        "addressing_style": addressing_style or ("path" if endpoint_url else None),
        "default_acl": None,  # the bucket's own (private) policy; never public-read
        "querystring_auth": True,  # any URL ever made would be signed and short-lived
        "querystring_expire": 300,
        "file_overwrite": False,
        "object_parameters": {"CacheControl": "private"},
    }}


if ETABLI_S3_BUCKET:
    STORAGES["default"] = s3_storage(
        ETABLI_S3_BUCKET, endpoint_url=os.environ.get("ETABLI_S3_ENDPOINT_URL", "").strip(),
        region=os.environ.get("ETABLI_S3_REGION", "").strip(),
        access_key_id=os.environ.get("ETABLI_S3_ACCESS_KEY_ID", "").strip(),
        secret_access_key=os.environ.get("ETABLI_S3_SECRET_ACCESS_KEY", "").strip(),
        addressing_style=os.environ.get("ETABLI_S3_ADDRESSING_STYLE", "").strip())
WHITENOISE_USE_FINDERS = True

# Behind a reverse proxy that terminates HTTPS and says so in X-Forwarded-Proto (replacing any
# such header a client sent): requests that came in over HTTPS are seen as such, so the
# addresses Établi writes (the QR codes of job bags and slips) start with https://.
if _env_bool("ETABLI_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _env_bool("ETABLI_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Domain settings.
ETABLI_DEFAULT_CURRENCY = os.environ.get("ETABLI_DEFAULT_CURRENCY", "EUR").upper()
ETABLI_HOUSE_NAME = os.environ.get("ETABLI_HOUSE_NAME", "Maison Établi")
ETABLI_BUFFER_PERCENT = int(os.environ.get("ETABLI_BUFFER_PERCENT", "10"))
ETABLI_BUFFER_MIN_DAYS = int(os.environ.get("ETABLI_BUFFER_MIN_DAYS", "2"))
ETABLI_WEIGHT_TOLERANCE_G = os.environ.get("ETABLI_WEIGHT_TOLERANCE_G", "0.050")
# Whether client contacts see the names of the workshops making their pieces (off: plain words).
ETABLI_CLIENT_SEES_WORKSHOPS = _env_bool("ETABLI_CLIENT_SEES_WORKSHOPS", False)

# The house as it appears on printed documents (launch sheets, invoices, care cards…).
ETABLI_HOUSE_ADDRESS = os.environ.get("ETABLI_HOUSE_ADDRESS",
                                      "12 rue de la Paix\n75002 Paris\nFrance")
ETABLI_HOUSE_LOGO = os.environ.get("ETABLI_HOUSE_LOGO", "")  # path to a PNG/JPEG file
ETABLI_HOUSE_VAT_NUMBER = os.environ.get("ETABLI_HOUSE_VAT_NUMBER", "")
ETABLI_HOUSE_EMAIL = os.environ.get("ETABLI_HOUSE_EMAIL", "")
ETABLI_HOUSE_PHONE = os.environ.get("ETABLI_HOUSE_PHONE", "")
# VAT charged on invoices, in percent.
ETABLI_VAT_PERCENT = os.environ.get("ETABLI_VAT_PERCENT", "20")
# Design rounds sent to a client before a warning shows.
ETABLI_DESIGN_ROUND_LIMIT = int(os.environ.get("ETABLI_DESIGN_ROUND_LIMIT", "3"))
# Country whose hallmarking law (and weight exemptions) applies to the house's pieces.
ETABLI_HALLMARK_COUNTRY = os.environ.get("ETABLI_HALLMARK_COUNTRY", "FR").upper()
# Largest uploaded document, in megabytes.
ETABLI_MAX_UPLOAD_MB = int(os.environ.get("ETABLI_MAX_UPLOAD_MB", "25"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ETABLI_LOG_LEVEL", "WARNING")},
}

# Background work: alert detection, notifications (e-mail, webhooks), daily digests. Tasks
# wait in the database (django-tasks' database backend): `etabli serve` runs a worker beside
# the web server, and on PostgreSQL any number of `etabli worker` processes may run instead.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# Whether `etabli serve` (and `etabli start`) run the background worker themselves.
ETABLI_SERVE_WORKER = _env_bool("ETABLI_SERVE_WORKER", True)
# Public address of this Établi, for links in e-mails and webhooks (e.g. https://atelier.example).
ETABLI_PUBLIC_URL = os.environ.get("ETABLI_PUBLIC_URL", "").rstrip("/")

# E-mail: SMTP configured by environment. With no ETABLI_SMTP_HOST, e-mails are written to
# the log (console backend) so nothing is lost silently and nothing leaves the machine.
ETABLI_SMTP_HOST = os.environ.get("ETABLI_SMTP_HOST", "").strip()
if ETABLI_SMTP_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = ETABLI_SMTP_HOST
    EMAIL_PORT = int(os.environ.get("ETABLI_SMTP_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("ETABLI_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("ETABLI_SMTP_PASSWORD", "")
    EMAIL_USE_TLS = _env_bool("ETABLI_SMTP_STARTTLS", EMAIL_PORT == 587)
    EMAIL_USE_SSL = _env_bool("ETABLI_SMTP_SSL", EMAIL_PORT == 465)
    EMAIL_TIMEOUT = int(os.environ.get("ETABLI_SMTP_TIMEOUT", "20"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("ETABLI_EMAIL_FROM", "Établi <etabli@localhost>")
