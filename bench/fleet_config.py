"""The synthetic fleet's prewarm.toml, shared by the fleet benchmarks: N dry-run endpoints
(ep00000, ...) with cold starts of 60-240 s, and the given [daemon] and [forecast] keys."""
from __future__ import annotations

from pathlib import Path


def toml_value(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def write_fleet_config(path: Path, url: str, n: int, *, daemon: dict, forecast: dict) -> Path:
    lines = [f'[store]\nurl = "{url}"\n', '[metrics]\nenabled = false\n']
    for section, keys in (("daemon", daemon), ("forecast", forecast)):
        lines.append(f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()))
    for i in range(n):
        lines.append(f'[[endpoints]]\nname = "ep{i:05d}"\n[endpoints.provider]\nkind = "dry-run"\n'
                     f'[endpoints.capacity]\nmax_workers = 50\ncold_start_s = {60 + 30 * (i % 7)}\n')
    path.write_text("\n".join(lines))
    return path
