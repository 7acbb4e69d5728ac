"""Run every benchmark once, on SQLite then PostgreSQL, and print their figures (`make bench`).

Each benchmark measures django-unilink against a baseline in the same run and prints the
ratio; this script only runs them one after another. Services come from scripts/services.sh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["webhooks.py", "outbound.py"]


def main() -> int:
    failures = 0
    for database in ("sqlite", "postgres"):
        for script in BENCHMARKS:
            print(f"\n=== {script} on {database} ===", flush=True)
            env = {**os.environ, "UNILINK_TEST_DB": database, "UNILINK_TEST_DB_NAME": "unilink_bench"}
            failures += subprocess.call([sys.executable, str(HERE / script)], env=env) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
