"""The example project stays healthy: its checks, its migrations and its own test suite.

The example site is a separate Django project (its own settings, its ``support`` app), so it is
exercised in subprocesses, each with a fresh data folder (SQLite file, filesystem broker).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def _env(data_dir: Path) -> dict[str, str]:
    """This process's environment without anything that would reconfigure the example site."""
    prefixes = ("DJANGO_", "UNILINK_", "CELERY_", "DEMO_", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["DEMO_DATA_DIR"] = str(data_dir)
    return env


def _run(args: list[str], data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=EXAMPLE, env=_env(data_dir), capture_output=True, text=True, timeout=timeout
    )


def test_system_checks_pass_without_warnings(tmp_path: Path) -> None:
    result = _run(["manage.py", "check", "--fail-level", "WARNING"], tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_migrations_match_the_models(tmp_path: Path) -> None:
    result = _run(["manage.py", "makemigrations", "--check", "--dry-run"], tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_its_own_test_suite_passes(tmp_path: Path) -> None:
    """example_project/support/tests: the site's tests, written with django-unilink's testing kit."""
    result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"], tmp_path, timeout=600)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed[1]) >= 10 and "skipped" not in summary, summary


def test_the_demo_refuses_a_real_unilink_without_credentials(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["UNILINK_BASE_URL"] = "https://support.example.com"
    result = subprocess.run(
        ["bash", str(EXAMPLE.parent / "scripts" / "demo.sh")], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "UNILINK_API_ACCESS_TOKEN must be set too" in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()  # it stopped before touching anything
