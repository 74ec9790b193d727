"""Installed, prewarm keeps one namespace and ships its migrations."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO


def test_wheel_has_one_namespace_and_the_migrations(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(Path(tmp_path).glob("prewarm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("prewarm-")}
    assert tops == {"prewarm"}, tops
    for needed in ("prewarm/forecasters/seasonal_naive.py", "prewarm/providers/local.py",
                   "prewarm/sources/prometheus.py",
                   "prewarm/migrations/env.py", "prewarm/migrations/script.py.mako",
                   "prewarm/migrations/versions/0001_initial_schema.py", "prewarm/planner/core.py"):
        assert needed in names, needed
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[prewarm.providers]" in entry and "[prewarm.forecasters]" in entry and "[prewarm.sources]" in entry


def test_no_generic_top_level_imports(tmp_path):
    # From outside the checkout (python -m pytest puts the checkout itself on sys.path).
    code = ("import importlib.util, prewarm.forecasters, prewarm.providers, prewarm.sources, prewarm.migrations\n"
            "print([g for g in ('forecasters', 'providers', 'sources', 'migrations') if importlib.util.find_spec(g)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
