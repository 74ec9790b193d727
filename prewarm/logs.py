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


class ConditionLog:
    """One log line when a condition starts, one when it ends, and while it lasts at most one
    every `every_s` seconds, saying how many repeats it stood for. For a failure met on every
    poll (the leader lock during a database outage) that would otherwise be logged each time."""

    def __init__(self, logger: logging.Logger, every_s: float = 60.0, clock=time.monotonic) -> None:
        self.log = logger
        self.every_s = every_s
        self.clock = clock
        self.active = False
        self.since = 0.0
        self._last = 0.0
        self._suppressed = 0
        self._total = 0

    def failing(self, level: int, msg: str, *args) -> None:
        now = self.clock()
        self._total += 1
        if not self.active:
            self.active, self.since, self._last, self._suppressed = True, now, now, 0
            self.log.log(level, msg, *args)
        elif now - self._last >= self.every_s:
            self.log.log(level, msg + " (still failing after %.0fs; %d repeats not logged)",
                         *args, now - self.since, self._suppressed)
            self._last, self._suppressed = now, 0
        else:
            self._suppressed += 1

    def ok(self, msg: str, *args) -> None:
        if self.active:
            self.log.info(msg + " (after %d failures over %.0fs)", *args, self._total, self.clock() - self.since)
        self.active, self._total = False, 0
