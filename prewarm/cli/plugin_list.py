"""The listing `prewarm providers list` and `prewarm sources list` share: each installed entry
point with its module's first doc line and config keys, or the error that stops it loading."""
from __future__ import annotations

import sys
from typing import Callable


from .output import echo, emit_json


def list_plugins(available: dict, as_json: bool, extra: Callable[[str, type], dict] | None = None) -> None:
    doc = []
    for name, ep in sorted(available.items()):
        item = {"kind": name, "module": ep.value}
        try:
            cls = ep.load()
            item["keys"] = cls.config_keys()
            if extra is not None:
                item.update(extra(name, cls))
            item["doc"] = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n")[0]
        except Exception as exc:  # noqa: BLE001 - a broken plugin is listed with its error
            item["error"] = f"{type(exc).__name__}: {exc}"
        doc.append(item)
    if as_json:
        emit_json(doc)
        return
    for item in doc:
        echo(f"{item['kind']}  ({item['module']})")
        if "error" in item:
            echo(f"  cannot load: {item['error']}")
            continue
        if item.get("doc"):
            echo(f"  {item['doc']}")
        for key, desc in item["keys"].items():
            echo(f"  {key}: {desc}")
        if item.get("capabilities"):
            caps = ", ".join(f"{k}={v}" for k, v in item["capabilities"].items() if v not in (None, ""))
            echo(f"  capabilities: {caps}")
