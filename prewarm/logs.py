"""Logging to stderr, as text or one JSON object per line (for journald and collectors)."""
from __future__ import annotations

import json
import logging
import sys
import time

from .redact import redact


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        # Masked before encoding: a secret with a quote or a backslash is escaped in the JSON.
        return json.dumps({k: redact(v) if isinstance(v, str) else v for k, v in doc.items()}, default=str)


class RedactingFormatter(logging.Formatter):
    """Whatever the inner formatter writes, message and traceback, with secrets masked."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def setup_logging(level: str = "warning", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")))
    root = logging.getLogger("prewarm")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
