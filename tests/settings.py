"""Settings for the test suite. UNILINK_TEST_DB=postgres switches to PostgreSQL on loopback."""

import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_unilink",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("UNILINK_TEST_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("UNILINK_TEST_DB_NAME", "unilink"),
            "USER": os.environ.get("PGUSER", "unilink"),
            "PASSWORD": os.environ.get("PGPASSWORD", "unilink"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": "test_" + os.environ.get("UNILINK_TEST_DB_NAME", "unilink")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "unilink-tests.sqlite3"),
            "TEST": {"NAME": os.environ.get("UNILINK_TEST_SQLITE_NAME") or None},
        }
    }

MEDIA_ROOT = os.path.join(tempfile.gettempdir(), "unilink-test-media")
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

UNILINK = {
    "BASE_URL": "http://127.0.0.1:9",
    "ACCOUNT_ID": 1,
    "API_ACCESS_TOKEN": "test-token-do-not-log",
    "INBOX_ID": 7,
    "WEBHOOK_SECRET": "test-webhook-secret",
    "WEBHOOK_PROCESSING": "inline",
}

# Celery: tests that need a real worker configure their own broker (see tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "WARNING"},
}
