"""``BEGIN IMMEDIATE`` transactions on SQLite for Django < 5.1 (tests with a worker process).

Django 5.1+ has ``OPTIONS["transaction_mode"] = "IMMEDIATE"``. On Django 4.2, :func:`enable`
gives the SQLite backend the same behaviour, for the test runs where a Celery worker process and
the test process write one SQLite file.
"""

from django.db.backends.sqlite3.base import DatabaseWrapper


def _begin_immediate(self: DatabaseWrapper) -> None:
    # A deferred BEGIN upgrades its lock at the first write and fails at once ("database is
    # locked") when another process wrote since; IMMEDIATE waits (OPTIONS["timeout"]) instead.
    self.cursor().execute("BEGIN IMMEDIATE")


def enable() -> None:
    DatabaseWrapper._start_transaction_under_autocommit = _begin_immediate  # type: ignore[method-assign]
