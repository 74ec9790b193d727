"""Audit records that could not be written to the database, kept on local disk.

Apply writes one audit record per provider call. While the database is down those records wait
in memory and are written when it answers again (prewarm.apply). Memory alone loses them if the
process dies too: a crash, SIGKILL, an OOM kill, or a host reboot during the outage. So every
record that waits is also appended here, one JSON line each, flushed and fsynced. The next
process to run apply (the restarted daemon, the next `prewarm once`) writes them once the
database answers. The spool is the queue itself, not a copy of one in memory: whichever
process flushes first writes each record once.

Writers share the file through an exclusive lock (flock): the daemon, a `prewarm once` from
cron, and a standby that takes over. A rewrite goes to a temporary file, which is then renamed
over the spool, so a crash leaves the old spool or the new one, never half of one. If the
process dies between a record's database commit and the rename, the records that flush wrote
are written again by the next one: the only way a record is doubled.

Bounded: past MAX_SPOOL_BYTES (about 200,000 records) `append` refuses, and apply keeps the
newer records in its bounded in-memory queue instead, saying so in the log.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger("prewarm.audit_spool")

MAX_SPOOL_BYTES = 64 * 1024 * 1024
SPOOL_NAME = "audit-spool.jsonl"


def default_path() -> Path:
    """Under systemd (StateDirectory=prewarm sets STATE_DIRECTORY), the service's state
    directory, the one place ProtectSystem=strict leaves writable; else ./.prewarm/, beside
    the local provider's default state."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state or ".prewarm") / SPOOL_NAME


class AuditSpool:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self._lock_path, "a", opener=_private) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, endpoint: str, entry: dict[str, Any]) -> None:
        """Add one record, durably (raises OSError if the disk refuses)."""
        line = (_dump(endpoint, entry) + "\n").encode()
        with self._locked():
            with open(self.path, "a+b", opener=_private) as f:
                if f.tell() > MAX_SPOOL_BYTES:
                    raise OSError(f"audit spool {self.path} is full ({MAX_SPOOL_BYTES} bytes)")
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a torn last line (power cut): keep it apart from this one
                        line = b"\n" + line
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

    def count(self) -> int:
        with self._locked():
            return len(self._read())

    def __bool__(self) -> bool:
        return self.path.exists()

    def flush(self, write: Callable[[str, dict[str, Any]], bool]) -> int:
        """Hand the records to `write`, oldest first, until it returns False (the database is
        still away); keep the rest. Holds the lock throughout, so two processes never write
        the same record. Returns how many were written."""
        with self._locked():
            records = self._read()
            done = 0
            for endpoint, entry in records:
                if not write(endpoint, entry):
                    break
                done += 1
            if done:
                self._write(records[done:])
            return done

    def _read(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(_load(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("audit spool %s line %d unreadable, skipped: %s", self.path, number, exc)
        return out

    def _write(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        if not records:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", opener=_private) as f:
            f.writelines(_dump(e, r) + "\n" for e, r in records)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _private(path: str, flags: int) -> int:
    """Files the spool creates are the owner's alone (0600 whatever the umask): the records
    name endpoints, targets and provider errors."""
    return os.open(path, flags, 0o600)


def _dump(endpoint: str, entry: dict[str, Any]) -> str:
    return json.dumps({"endpoint": endpoint, **entry, "ts": entry["ts"].isoformat()},
                      default=str, sort_keys=True)


def _load(line: str) -> tuple[str, dict[str, Any]]:
    data = json.loads(line)
    endpoint = data.pop("endpoint")
    data["ts"] = datetime.fromisoformat(data["ts"])
    return endpoint, data
