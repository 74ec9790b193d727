"""A provider shipped as a separate package appears in prewarm with no change to prewarm."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from plugin_install import install_plugin

PLUGIN_MODULE = '''
"""nimbus: a tiny third-party provider for the plugin test."""
from pydantic import Field
from prewarm.providers.base import ApplyResult, Capabilities, CapacityState, Provider, ProviderConfig

STATE = {}


class NimbusConfig(ProviderConfig):
    kind: str = "nimbus"
    pool: str = Field(description="the Nimbus pool to size")


class NimbusProvider(Provider):
    kind = "nimbus"
    Config = NimbusConfig

    def read(self):
        n = STATE.get(self.config.pool, 0)
        return CapacityState(desired=n, ready=n)

    def apply(self, target, idle_timeout_s=None):
        target = self.endpoint.clamp(target)
        before = STATE.get(self.config.pool, 0)
        STATE[self.config.pool] = target
        return ApplyResult(before != target, before, target)

    def capabilities(self):
        return Capabilities(notes="test plugin")
'''


def test_installed_plugin_is_listed_and_validated(tmp_path):
    site = install_plugin(tmp_path, "nimbus_prewarm", PLUGIN_MODULE, "prewarm.providers", "nimbus", "NimbusProvider")
    env = {**os.environ, "PYTHONPATH": str(site)}
    prewarm = str(Path(sys.executable).parent / "prewarm")
    listed = json.loads(subprocess.run([prewarm, "providers", "list", "--json"], env=env, cwd=tmp_path,
                                       capture_output=True, text=True, check=True).stdout)
    nimbus = next(p for p in listed if p["kind"] == "nimbus")
    assert "pool" in nimbus["keys"] and nimbus["capabilities"]["notes"] == "test plugin"
    # Its own schema validates its config section, naming the key.
    (tmp_path / "prewarm.toml").write_text('[[endpoints]]\nname = "x"\n[endpoints.provider]\nkind = "nimbus"\n')
    bad = subprocess.run([prewarm, "plan"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "endpoints[0] (x).provider.pool" in bad.stderr
    # Without the package, the kind is unknown.
    gone = subprocess.run([prewarm, "plan"], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert gone.returncode == 2 and "unknown provider kind 'nimbus'" in gone.stderr
