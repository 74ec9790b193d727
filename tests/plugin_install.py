"""Install a one-module plugin package (as a third party would ship it) into a directory of its
own; put that directory on PYTHONPATH to have it, leave it off to not."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def install_plugin(tmp_path: Path, package: str, module_text: str, group: str, kind: str, attr: str) -> Path:
    src = tmp_path / "src"
    (src / package).mkdir(parents=True)
    (src / package / "__init__.py").write_text(module_text)
    (src / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{package.replace('_', '-')}"
        version = "0.0.1"
        [project.entry-points."{group}"]
        {kind} = "{package}:{attr}"
        [tool.setuptools]
        packages = ["{package}"]
    '''))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    return site
