"""Traces in, request arrivals out: epoch seconds (sorted) and service times, per endpoint.

Three shapes, recognised by their header:
* per-minute counts `ts,endpoint,requests` (every file in ../shared/traces/): the requests of
  a minute are spread within it, uniformly at random with a fixed seed, so two runs replay the
  same arrivals;
* the Alibaba GenAI `requests.csv`: one row per request, `gmt_create` (1 s), the endpoint in
  `checkpoint_model_version_id`, the service time in `exec_time_seconds`; arrivals are spread
  within their second the same way; the endpoint `__all__` is every request together;
* the Azure LLM traces `TIMESTAMP,ContextTokens,GeneratedTokens`: one row per request, the
  endpoint named after the file (`AzureLLMInferenceTrace_code.csv` -> `code`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

ALL = "__all__"


@dataclass(frozen=True)
class Trace:
    endpoint: str
    arrivals: np.ndarray  # epoch seconds, sorted
    service_s: np.ndarray | None  # per request, when the trace has it

    def __len__(self) -> int:
        return len(self.arrivals)

    def between(self, start: float, end: float) -> "Trace":
        lo, hi = np.searchsorted(self.arrivals, [start, end])
        svc = None if self.service_s is None else self.service_s[lo:hi]
        return Trace(self.endpoint, self.arrivals[lo:hi], svc)

    def per_step_counts(self, start: float, end: float, step_s: int) -> np.ndarray:
        """Dense request counts per step over [start, end)."""
        n = max(0, int(np.ceil((end - start) / step_s)))
        lo, hi = np.searchsorted(self.arrivals, [start, start + n * step_s])
        idx = ((self.arrivals[lo:hi] - start) // step_s).astype(np.int64)
        idx = idx[(idx >= 0) & (idx < n)]
        return np.bincount(idx, minlength=n).astype(float)


def load_trace(path: str | Path, endpoints: list[str] | None = None, *, seed: int = 0) -> dict[str, Trace]:
    """Every endpoint of the file (or the named ones), by name."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such trace file")
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a CSV trace: {exc}") from None
    cols = set(header)
    if {"ts", "endpoint", "requests"} <= cols:
        traces = _per_minute(path, seed)
    elif {"gmt_create", "checkpoint_model_version_id"} <= cols:
        traces = _alibaba_requests(path, seed)
    elif "TIMESTAMP" in cols:
        traces = _timestamps(path)
    else:
        raise InputError(f"{path}: unknown trace format (columns {', '.join(header)}); expected "
                         "ts,endpoint,requests, or an Alibaba requests.csv, or an Azure LLM trace")
    if endpoints:
        missing = [e for e in endpoints if e not in traces]
        if missing:
            known = ", ".join(sorted(traces)[:20])
            raise InputError(f"{path}: no endpoint {', '.join(missing)} in the trace (has: {known})")
        traces = {e: traces[e] for e in endpoints}
    return traces


def _epoch(values, path: Path, column: str) -> np.ndarray:
    import pandas as pd

    try:
        ts = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: column {column}: unparseable time stamp ({exc})") from None
    if ts.isna().any():
        line = int(np.flatnonzero(ts.isna())[0]) + 2
        raise InputError(f"{path}: line {line}: empty time stamp in column {column}")
    return pd.DatetimeIndex(ts).tz_convert(None).as_unit("ns").asi8.astype(np.float64) / 1e9


def _spread(starts: np.ndarray, width: float, seed: int, endpoint: str) -> np.ndarray:
    """Place each arrival uniformly within its [start, start + width) bucket, seeded.

    No look-ahead: one random stream per endpoint (seeded by the seed and the endpoint's
    name), drawn in time order, so an arrival's place depends only on its own endpoint's rows
    up to it: a trace cut at t, or holding other endpoints, spreads every row before t the same
    way (tests/backtest: test_cutting_the_trace_...)."""
    order = np.argsort(starts, kind="stable")
    draws = np.empty(len(starts))
    draws[order] = _stream(seed, endpoint).random(len(starts))
    return np.sort(starts + draws * width)


def _stream(seed: int, endpoint: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(endpoint.encode())])


def _per_minute(path: Path, seed: int) -> dict[str, Trace]:
    import pandas as pd

    df = pd.read_csv(path, dtype={"endpoint": str})
    counts = pd.to_numeric(df["requests"], errors="coerce")
    bad = counts.isna() | (counts < 0) | (counts != counts.round())
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise InputError(f"{path}: line {line}: requests must be a non-negative whole number")
    df["t"] = _epoch(df["ts"], path, "ts")
    df["n"] = counts.astype(np.int64)
    out = {}
    for name, part in df.groupby("endpoint", sort=True):
        out[str(name)] = from_counts(str(name), part["t"].to_numpy(), part["n"].to_numpy(), seed=seed)
    return out


def from_counts(endpoint: str, starts_s, counts, width_s: float = 60.0, *, seed: int = 0) -> Trace:
    """A trace from per-bucket request counts (bucket start in epoch seconds, count), as a
    store holds them: each bucket's requests spread within it as the per-minute loader does.
    What the daemon hands the static guard (runner.static_guard) from its history."""
    starts = np.repeat(np.asarray(starts_s, dtype=float), np.asarray(counts, dtype=np.int64))
    return Trace(endpoint, _spread(starts, width_s, seed, endpoint), None)


def _alibaba_requests(path: Path, seed: int) -> dict[str, Trace]:
    import pandas as pd

    df = pd.read_csv(path, usecols=["gmt_create", "checkpoint_model_version_id", "exec_time_seconds"],
                     dtype={"checkpoint_model_version_id": str})
    t = _epoch(df["gmt_create"], path, "gmt_create")
    svc = pd.to_numeric(df["exec_time_seconds"], errors="coerce").to_numpy(np.float64)
    svc = np.where(np.isfinite(svc) & (svc > 0), svc, np.nan)  # 0 or missing -> the default
    names = df["checkpoint_model_version_id"].fillna("(none)").astype(str).to_numpy()
    # 1 s resolution: spread within the second, per endpoint in time order (file order among
    # equal stamps), as _spread: no row's draw depends on a later row or another endpoint.
    order = np.lexsort((np.arange(len(t)), t))
    t, svc, names = t[order], svc[order], names[order]
    for name in np.unique(names):
        mask = names == name
        t[mask] = t[mask] + _stream(seed, str(name)).random(int(mask.sum()))
    order = np.argsort(t, kind="stable")
    t, svc, names = t[order], svc[order], names[order]
    out = {ALL: Trace(ALL, t, svc)}
    for name in np.unique(names):
        mask = names == name
        out[str(name)] = Trace(str(name), t[mask], svc[mask])
    return out


def _timestamps(path: Path) -> dict[str, Trace]:
    import pandas as pd

    df = pd.read_csv(path, usecols=["TIMESTAMP"])
    name = path.stem.rsplit("_", 1)[-1] if "_" in path.stem else path.stem
    t = np.sort(_epoch(df["TIMESTAMP"], path, "TIMESTAMP"))
    return {name: Trace(name, t, None)}


def service_times(trace: Trace, default_s: float | None) -> np.ndarray:
    """Per-request service times: the trace's own where it has them, else the default."""
    if trace.service_s is None:
        if default_s is None:
            raise InputError(f"endpoint {trace.endpoint}: the trace has no service times; give --service-time")
        return np.full(len(trace), float(default_s))
    if default_s is None:
        fill = float(np.nanmedian(trace.service_s)) if np.isfinite(trace.service_s).any() else 1.0
    else:
        fill = float(default_s)
    return np.where(np.isnan(trace.service_s), fill, trace.service_s)


def load_cold_starts(path: str | Path) -> np.ndarray:
    """Measured cold-start durations in seconds: column `seconds`, or `value` in milliseconds."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such cold-start file")
    df = pd.read_csv(path)
    if "seconds" in df.columns:
        values = pd.to_numeric(df["seconds"], errors="coerce").to_numpy(np.float64)
    elif "value" in df.columns:
        values = pd.to_numeric(df["value"], errors="coerce").to_numpy(np.float64) / 1000.0
    else:
        raise InputError(f"{path}: expected a column `seconds` (or `value` in milliseconds), "
                         f"found {', '.join(df.columns)}")
    values = values[np.isfinite(values) & (values >= 0)]
    if len(values) == 0:
        raise InputError(f"{path}: no usable cold-start durations")
    return values
