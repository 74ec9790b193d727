"""The evaluation protocol every benchmark shares: each shared trace split by time into a
tuning part and a report part.

- Every default and constant of the planner and the forecasters is chosen on tuning parts.
- Report parts are only ever scored. A replay scored on a report part may read the history
  before it (the tuning part and earlier report minutes), as the daemon would, but nothing
  after the instant it acts at.
- Every series that qualifies is reported, misses included: each Alibaba model with at least
  200 requests in the report week, `__all__`, NASA, and both Azure traces.

The splits are fixed instants, not fractions of a trace's length, so a trace that grows
(the later parts kept aside) does not move them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
ALIBABA_REQUESTS = TRACES / "alibaba_genai_2026" / "requests.csv"
ALIBABA_COLD_STARTS = TRACES / "alibaba_genai_2026" / "cold_start_latency.csv"
NASA = TRACES / "nasa_http_1995" / "per_minute.csv"
AZURE_PER_MINUTE = TRACES / "azure_llm_2023" / "per_minute.csv"
AZURE_CODE = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv"
AZURE_CONV = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"

MIN_REPORT_REQUESTS = 200  # an Alibaba model qualifies with this many requests in its report week


def _utc(s: str) -> float:
    return datetime.fromisoformat(s).astimezone(timezone.utc).timestamp()


@dataclass(frozen=True)
class Split:
    """[tune_start, report_start) is tuned on; [report_start, report_end) is only scored."""
    name: str
    tune_start: float
    report_start: float
    report_end: float

    def part(self, which: str) -> tuple[float, float]:
        if which == "tune":
            return self.tune_start, self.report_start
        if which == "report":
            return self.report_start, self.report_end
        raise ValueError(f"part must be 'tune' or 'report', not {which!r}")


SPLITS = {
    # Alibaba: tune Nov 15-23, report Nov 24-30 (UTC, as the source's anonymised stamps).
    "alibaba": Split("alibaba", _utc("2024-11-15T00:00:00+00:00"), _utc("2024-11-24T00:00:00+00:00"),
                     _utc("2024-12-01T00:00:00+00:00")),
    # NASA: tune Jul 1-14, report Jul 15-28 (the log's own -04:00 days; it ends Jul 28 13:32).
    "nasa": Split("nasa", _utc("1995-07-01T00:00:00-04:00"), _utc("1995-07-15T00:00:00-04:00"),
                  _utc("1995-07-29T00:00:00-04:00")),
    # Azure: one hour each; tune on the first half, report the second (naive stamps, read as UTC).
    "azure": Split("azure", _utc("2023-11-16T18:15:00+00:00"), _utc("2023-11-16T18:45:00+00:00"),
                   _utc("2023-11-16T19:15:00+00:00")),
}


def alibaba_models(part: str = "report", min_requests: int = MIN_REPORT_REQUESTS) -> list[str]:
    """Every Alibaba base model with at least `min_requests` requests in the part ("report":
    Nov 24-30; "tune": Nov 15-23), busiest first, then `__all__`."""
    import pandas as pd

    start, end = SPLITS["alibaba"].part(part)
    df = pd.read_csv(ALIBABA_REQUESTS, usecols=["gmt_create", "checkpoint_model_version_id"])
    t = pd.to_datetime(df["gmt_create"], utc=True).astype("int64") / 1e9
    counts = df[(t >= start) & (t < end)]["checkpoint_model_version_id"].value_counts()
    return [str(m) for m in counts[counts >= min_requests].index] + ["__all__"]


def alibaba_report_models(min_requests: int = MIN_REPORT_REQUESTS) -> list[str]:
    """The Alibaba series the report tables show (alibaba_models on the report week)."""
    return alibaba_models("report", min_requests)


def alibaba_tune_models(min_requests: int = MIN_REPORT_REQUESTS) -> list[str]:
    """The Alibaba series defaults are chosen on: the same rule on the tuning part (Nov 15-23)."""
    return alibaba_models("tune", min_requests)


def report_series() -> list[tuple[str, str]]:
    """(split name, endpoint) for every series the report tables must show."""
    return ([("alibaba", m) for m in alibaba_report_models()] + [("nasa", "nasa-ksc-www")]
            + [("azure", "code"), ("azure", "conv")])
