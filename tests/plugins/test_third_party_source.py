"""A metrics source shipped as a separate package appears in prewarm with no change to prewarm:
listed, its config validated by its own schema, synced into the store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from plugin_install import install_plugin

PLUGIN_MODULE = '''
"""tally: a tiny third-party metrics source for the plugin test (minute m of the hour: m requests)."""
from datetime import timedelta
from pydantic import Field
from prewarm.sources.base import Answer, Minute, Source, SourceConfig


class TallyConfig(SourceConfig):
    kind: str = "tally"
    scale: int = Field(description="requests per minute-of-the-hour")


class TallySource(Source):
    kind = "tally"
    Config = TallyConfig
    retention_s = 3600.0

    def read(self, start, end):
        answer = Answer(self.endpoint, start, end)
        t = start
        while t < end:
            if t.minute % 10 != 9:  # minute 9, 19, ...: no value
                answer.minutes[t] = Minute(t.minute * self.config.scale)
            t += timedelta(minutes=1)
        return answer
'''


def test_installed_source_plugin_is_listed_validated_and_synced(tmp_path):
    site = install_plugin(tmp_path, "tally_prewarm", PLUGIN_MODULE, "prewarm.sources", "tally", "TallySource")
    env = {**os.environ, "PYTHONPATH": str(site)}
    prewarm = str(Path(sys.executable).parent / "prewarm")

    def run(*args, **kw):
        return subprocess.run([prewarm, *args], env=kw.pop("env", env), cwd=tmp_path, capture_output=True,
                              text=True, **kw)

    listed = json.loads(run("sources", "list", "--json", check=True).stdout)
    tally = next(p for p in listed if p["kind"] == "tally")
    assert "scale" in tally["keys"] and tally["retention_s"] == 3600
    cfg = tmp_path / "prewarm.toml"
    cfg.write_text('[[endpoints]]\nname = "x"\n[endpoints.source]\nkind = "tally"\n')
    bad = run("sync")
    assert bad.returncode == 2 and "endpoints[0] (x).source.scale" in bad.stderr
    cfg.write_text('[[endpoints]]\nname = "x"\n[endpoints.source]\nkind = "tally"\nscale = 2\n')
    done = json.loads(run("sync", "--json", check=True).stdout)["endpoints"][0]
    # The backfill reaches back the source's retention (an hour, less five minutes of margin).
    assert done["error"] is None and 40 < done["inserted"] < 60 and done["missing"] >= 4
    gone = run("sync", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert gone.returncode == 2 and "unknown source kind 'tally'" in gone.stderr
