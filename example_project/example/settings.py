"""Settings of the example support site.

Everything that differs between the demo and a real deployment comes from the environment
(docs/example-project.md lists every variable):

- ``UNILINK_BASE_URL``, ``UNILINK_ACCOUNT_ID``, ``UNILINK_API_ACCESS_TOKEN``, ``UNILINK_INBOX_ID``,
  ``UNILINK_WEBHOOK_SECRET``: the UniLink inbox (defaults: the local emulator ``make demo`` starts).
- ``UNILINK_WEBHOOK_PROCESSING``: ``celery`` (default here: the worker processes deliveries) or ``inline``.
- ``DEMO_DATABASE_URL``: ``postgres://user:password@host:5432/name``; default a SQLite file.
- ``CELERY_BROKER_URL``: ``redis://...`` or ``amqp://...``; default ``filesystem://``, a broker
  made of folders under ``DEMO_DATA_DIR`` that needs no service.
- ``DEMO_DATA_DIR``: where the SQLite file and the filesystem broker live (default: this folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import django

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DEMO_DATA_DIR") or BASE_DIR)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_unilink",
    "support",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

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


def _database() -> dict[str, Any]:
    url = os.environ.get("DEMO_DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
        }
    if url:
        raise ValueError(f"DEMO_DATABASE_URL must start with postgres:// or postgresql://, not {url.split(':')[0]!r}.")
    options: dict[str, Any] = {"timeout": 20}
    if django.VERSION >= (5, 1):
        # The web server and the Celery worker write to this file at the same time: WAL lets
        # readers go on while one writes, and IMMEDIATE transactions avoid "database is locked"
        # when two writers would otherwise both try to upgrade a read lock.
        options.update(init_command="PRAGMA journal_mode=WAL;", transaction_mode="IMMEDIATE")
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "OPTIONS": options,
        # Tests get a file too (not SQLite's shared in-memory database): the live server's thread
        # and the test then use connections of their own, as the web process and the worker do.
        "TEST": {"NAME": DATA_DIR / "test-db.sqlite3"},
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "/static/"
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = LOGOUT_REDIRECT_URL = "/"

# The UniLink inbox. The defaults match the emulator that `make demo` starts.
UNILINK = {
    "BASE_URL": os.environ.get("UNILINK_BASE_URL", "http://127.0.0.1:3000"),
    "ACCOUNT_ID": int(os.environ.get("UNILINK_ACCOUNT_ID", "1")),
    "API_ACCESS_TOKEN": os.environ.get("UNILINK_API_ACCESS_TOKEN", "demo-token"),
    "INBOX_ID": int(os.environ.get("UNILINK_INBOX_ID", "7")),
    "WEBHOOK_SECRET": os.environ.get("UNILINK_WEBHOOK_SECRET", "demo-webhook-secret"),
    # "celery": the view stores each delivery and answers at once; the worker processes it and
    # sends the signals (support/receivers.py runs in the worker). "inline" does it in the request.
    "WEBHOOK_PROCESSING": os.environ.get("UNILINK_WEBHOOK_PROCESSING", "celery"),
}

# Celery (example/celery.py reads every CELERY_* setting).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker made of folders: the web process writes task files into queue/, the worker
    # takes them out. No service to install; one machine only. Use Redis or RabbitMQ in production.
    CELERY_BROKER_DIR = DATA_DIR / ".celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "polling_interval": 0.2,  # seconds between looks at the folder
    }
    for _folder in ("queue", "control"):  # kombu expects them to exist
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# CELERY_TASK_ALWAYS_EAGER=1 runs tasks inside the web process: `manage.py runserver` alone then
# works without a worker (webhooks are then best processed inline too).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"short": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "short"}},
    "loggers": {
        "django_unilink": {"handlers": ["console"], "level": os.environ.get("UNILINK_LOG_LEVEL", "INFO")},
        "support": {"handlers": ["console"], "level": "INFO"},
    },
}
