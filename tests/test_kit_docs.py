"""The examples of docs/testing.md run as written, so the page cannot rot.

Each ```python block whose first line names a file (``# test_receivers.py``, ``# conftest.py``)
is written to a temporary folder and run with pytest against the example project (its ``support``
app is what the examples test), in a subprocess with the example site's settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_unilink import conf

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
BLOCK_RE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FILE_RE = re.compile(r"\A# ([\w/]+\.py)\n")


def _blocks() -> list[str]:
    return BLOCK_RE.findall(DOC.read_text(encoding="utf-8"))


def _files() -> dict[str, str]:
    files: dict[str, str] = {}
    for block in _blocks():
        match = FILE_RE.match(block)
        if match:
            assert match[1] not in files, f"docs/testing.md names {match[1]} twice"
            files[match[1]] = block
    return files


def test_the_page_has_runnable_examples() -> None:
    names = set(_files())

    assert {"conftest.py", "test_receivers.py", "test_sending.py", "test_round_trip.py"} <= names
    # Every other block is the settings example, checked below; nothing is left unexercised.
    assert len(_blocks()) == len(names) + 1


def test_the_settings_example_is_a_valid_configuration() -> None:
    from django.test import override_settings

    [block] = [b for b in _blocks() if not FILE_RE.match(b)]
    namespace: dict[str, object] = {}
    exec(compile(block, "docs/testing.md", "exec"), namespace)  # noqa: S102 - our own documentation

    with override_settings(UNILINK=namespace["UNILINK"]):
        assert conf.validate_inbox(conf.get_inbox_config()) == []
        assert conf.get_setting("WEBHOOK_PROCESSING") == "inline"


def test_the_examples_pass(tmp_path: Path) -> None:
    tests = tmp_path / "doc_examples"
    tests.mkdir()
    for name, code in _files().items():
        (tests / name).write_text(code, encoding="utf-8")
    (tests / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = example.settings\n", encoding="utf-8")
    prefixes = ("DJANGO_", "UNILINK_", "CELERY_", "DEMO_", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(PYTHONPATH=str(ROOT / "example_project"), DEMO_DATA_DIR=str(tmp_path / "data"))

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(tests / "pytest.ini"), str(tests)],
        cwd=tests,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    summary = output.strip().splitlines()[-1]
    expected = sum(code.count("\ndef test_") + code.count("\n    def test_") for code in _files().values())
    assert re.search(rf"\b{expected} passed\b", summary) and "skipped" not in summary, summary


def test_the_page_names_every_factory() -> None:
    from django_unilink.testing import factories

    shipped = {name for name in dir(factories) if name.endswith("Factory") and name[0].isupper()}
    shipped.discard("DjangoModelFactory")
    documented = set(re.findall(r"`(\w+Factory)`", DOC.read_text(encoding="utf-8")))

    assert shipped and documented == shipped
