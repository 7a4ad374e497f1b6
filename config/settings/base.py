"""Settings shared by every environment; development defaults.

Everything that differs between machines comes from the environment (or a local ``.env``
file) through django-environ. ``test.py`` and ``production.py`` override only what they must.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY",
    default="django-insecure-development-only-never-use-in-production",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "django_htmx",
    "django_tasks_db",
    "organizations",
    "partnerships",
    "settings_sync",
    "settings_sync.project",
    "settings_sync.usage",
    "settings_sync.proposal",
    "settings_sync.unsynced",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Content-Security-Policy: every script and style comes from the app's own static files (htmx
# and Bootstrap are vendored), so markup injected anywhere can run nothing and load nothing
# from elsewhere. Templates therefore hold no inline scripts, event handlers or style
# attributes. Bootstrap's stylesheet draws a few icons as data: images.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

ROOT_URLCONF = "config.urls"
FORM_RENDERER = "config.forms.FormRenderer"
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
                "organizations.context_processors.organizations",
                "notifications.context_processors.unread_notifications",
            ],
        },
    },
]

# SQLite file by default: nothing to install. PostgreSQL with
# DATABASE_URL=postgres://user@host:5432/dbname (psycopg 3).
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Keep a connection between requests (seconds; 0 closes it after each): opening one costs a
# PostgreSQL backend process each time. Production keeps them for a minute.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_MAX_AGE"] != 0


def without_jit(database: dict) -> dict:
    """On PostgreSQL, the connections run without JIT compilation (docs/design.md §10): the
    app's statements are short, and planned on statistics that lag a table that has just
    grown, some looked dear enough to be compiled, which took longer than running them."""
    if database["ENGINE"] == "django.db.backends.postgresql":
        options = database.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    return database


without_jit(DATABASES["default"])
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing with "database is locked" (task workers, tests).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "media")

# Uploaded logos are verified with Pillow; anything larger never reaches the form.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024


def mailers_from_url(email: dict) -> dict:
    """MAILERS for one EMAIL_URL parsed by django-environ."""
    smtp_options = {
        "host": email.get("EMAIL_HOST"),
        "port": email.get("EMAIL_PORT"),
        "username": email.get("EMAIL_HOST_USER"),
        "password": email.get("EMAIL_HOST_PASSWORD"),
        "use_tls": email.get("EMAIL_USE_TLS", False),
        "use_ssl": email.get("EMAIL_USE_SSL", False),
    }
    is_smtp = email["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
    options = {k: v for k, v in smtp_options.items() if v not in (None, "")} if is_smtp else {}
    return {"default": {"BACKEND": email["EMAIL_BACKEND"], "OPTIONS": options}}


# Outgoing email (invitations). EMAIL_URL: consolemail:// (prints to the console, the
# development default), smtp+tls://user:password@host:587, smtps://user:password@host:465.
MAILERS = mailers_from_url(env.email_url("EMAIL_URL", default="consolemail://"))
# The address people reach the app at, for links in emails (invitations).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Channel Data Sync <noreply@localhost>")

# Background work: run immediately in development and tests; production settings switch
# to django-tasks-db's database backend, drained by `manage.py db_worker`.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

MESSAGE_TAGS = {40: "danger"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_on_one_line": {"()": "config.log_filters.ClientErrorsOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.tasks": {"level": "WARNING"},
        # A refused request is one line with its reason, not a traceback.
        "django.request": {"filters": ["client_errors_on_one_line"]},
    },
}
