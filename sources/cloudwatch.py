"""Amazon CloudWatch: per-minute Sum of a metric (GetMetricData, period 60), many endpoints a call.

Queries are batched up to the API's 500 MetricDataQuery structures a call (an endpoint's
requests and cold-start metrics in the same call) and paged with NextToken through its
100,800 data points a call. CloudWatch keeps 1-minute data 15 days, so a backfill reaches at
most that far. AWS services publish no data point in a minute without requests, so a minute
without one is zero traffic (`absent = "zero"`, the default here); a call that fails, or a
query CloudWatch could not answer (StatusCode InternalError or Forbidden), records nothing and
is read again at the next sync. Credentials come from boto3's standard chain (environment,
profile, instance role), as for the AWS providers; nothing here reads or logs a secret.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, ClassVar, Literal, Optional, Sequence

from pydantic import Field, field_validator

from ..providers.aws_common import classify, make_client
from .base import Answer, Minute, Read, Source, SourceConfig, SourceError, floor_minute, whole_minutes

log = logging.getLogger("prewarm.sources.cloudwatch")
MAX_QUERIES = 500  # MetricDataQuery structures in one GetMetricData call (the API's limit)
RETENTION_S = 15 * 86400.0  # 1-minute data points are kept 15 days


class CloudWatchConfig(SourceConfig):
    kind: str = "cloudwatch"
    region: str = Field(min_length=1, description="AWS region, e.g. us-east-1")
    endpoint_url: Optional[str] = Field(None, pattern=r"^https?://",
                                        description="override: moto, LocalStack, a VPC endpoint")
    profile: Optional[str] = Field(None, description="named profile of the shared config files")
    connect_timeout_s: float = Field(5.0, gt=0)
    namespace: str = Field(min_length=1, description="e.g. AWS/Lambda, AWS/SageMaker, AWS/ApplicationELB")
    metric: str = Field(min_length=1, description="e.g. Invocations, RequestCount")
    dimensions: dict[str, str] = Field(default_factory=dict, description="e.g. { FunctionName = \"chat\" }")
    cold_starts_metric: Optional[str] = Field(None, description="a metric counting cold starts (optional), "
                                                                "same namespace and dimensions unless given")
    cold_starts_namespace: Optional[str] = None
    cold_starts_dimensions: Optional[dict[str, str]] = None
    cold_starts_stat: Literal["Sum", "SampleCount"] = Field(
        "Sum", description="SampleCount counts the data points of a latency metric: SageMaker Serverless "
                           "ModelSetupTime's SampleCount is its cold starts")
    absent: Literal["missing", "zero"] = Field("zero", description="a minute without a data point: zero "
                                                                   "(AWS publishes none without requests)")
    delay_s: float = Field(180.0, ge=0, description="read a minute this long after it ended (CloudWatch "
                                                    "publishes a minute's data points with a delay)")

    @field_validator("dimensions", "cold_starts_dimensions")
    @classmethod
    def _dims(cls, v: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
        if v is not None and len(v) > 30:
            raise ValueError("CloudWatch takes at most 30 dimensions")
        return v


@dataclass(frozen=True)
class _Query:
    id: str
    read: int  # index in the reads
    cold: bool


class CloudWatchSource(Source):
    kind: ClassVar[str] = "cloudwatch"
    Config = CloudWatchConfig
    retention_s: ClassVar[Optional[float]] = RETENTION_S

    def reports_cold_starts(self) -> bool:
        return self.config.cold_starts_metric is not None

    def metric_stats(self) -> list[tuple[bool, dict[str, Any]]]:
        """(is_cold_starts, MetricStat) of this endpoint's queries."""
        c = self.config
        out = [(False, _stat(c.namespace, c.metric, c.dimensions))]
        if c.cold_starts_metric:
            out.append((True, _stat(c.cold_starts_namespace or c.namespace, c.cold_starts_metric,
                                    c.dimensions if c.cold_starts_dimensions is None else c.cold_starts_dimensions,
                                    c.cold_starts_stat)))
        return out

    def client_key(self) -> tuple:
        c = self.config
        return (c.region, c.endpoint_url, c.profile, c.connect_timeout_s, c.timeout_s)

    def client(self):
        c = self.config
        return make_client("cloudwatch", SimpleNamespace(profile=c.profile, region=c.region,
                                                         endpoint_url=c.endpoint_url,
                                                         connect_timeout_s=c.connect_timeout_s,
                                                         read_timeout_s=c.timeout_s))

    def read(self, start: datetime, end: datetime) -> Answer:
        answer = self.read_many([Read(self, start, end)])[0]
        if answer.error is not None:
            raise answer.error
        return answer

    @classmethod
    def read_many(cls, reads: Sequence[Read]) -> list[Answer]:
        """Reads sharing a client and a time range go together, 500 queries a call."""
        answers = [Answer(r.source.endpoint, r.start, r.end) for r in reads]
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(reads):
            groups.setdefault((r.source.client_key(), r.start, r.end), []).append(i)
        for (_, start, end), members in groups.items():
            client = reads[members[0]].source.client()
            for batch in _batches(reads, members):
                cls._call(client, reads, answers, batch, start, end)
        return answers

    @classmethod
    def _call(cls, client, reads: Sequence[Read], answers: list[Answer], batch: list[int],
              start: datetime, end: datetime) -> None:
        queries: list[dict[str, Any]] = []
        index: dict[str, _Query] = {}
        for i in batch:
            for cold, stat in reads[i].source.metric_stats():
                qid = f"{'c' if cold else 'r'}{i}"
                index[qid] = _Query(qid, i, cold)
                queries.append({"Id": qid, "MetricStat": stat, "ReturnData": True})
        values: dict[str, dict[datetime, float]] = {q: {} for q in index}
        status: dict[str, tuple[str, str]] = {}
        params: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end,
                                  "ScanBy": "TimestampAscending"}
        pages = 0
        try:
            while True:
                page = client.get_metric_data(**params)
                pages += 1
                for res in page.get("MetricDataResults", []):
                    got = values.setdefault(res["Id"], {})
                    for ts, v in zip(res.get("Timestamps", []), res.get("Values", [])):
                        minute = floor_minute(ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc))
                        got[minute] = got.get(minute, 0.0) + float(v)
                    messages = "; ".join(m.get("Value", "") for m in res.get("Messages", []) or [])
                    status[res["Id"]] = (res.get("StatusCode", "Complete"), messages)
                token = page.get("NextToken")
                if not token:
                    break
                params["NextToken"] = token
        except Exception as exc:  # noqa: BLE001 - judged by classify; anything else is a bug, re-raised
            judged = classify(exc)
            if judged is None:
                raise
            retryable, code, message = judged
            for i in batch:
                answers[i].error = SourceError(f"GetMetricData: {message}", source=cls.kind,
                                               endpoint=reads[i].source.endpoint, retryable=retryable, code=code)
            return
        log.debug("GetMetricData: %d queries, %d pages", len(queries), pages)
        for qid, q in index.items():
            code, messages = status.get(qid, ("Complete", ""))
            answer = answers[q.read]
            if code in ("InternalError", "Forbidden") and answer.error is None:
                answer.error = SourceError(f"GetMetricData answered {code} for {qid}"
                                           + (f": {messages}" if messages else ""), source=cls.kind,
                                           endpoint=reads[q.read].source.endpoint,
                                           retryable=code == "InternalError", code=code)
        for qid, q in index.items():
            answer = answers[q.read]
            if answer.error is not None:
                answer.minutes.clear()
                continue
            for minute, v in values.get(qid, {}).items():
                if not (answer.start <= minute < answer.end):
                    continue
                count = whole_minutes(v)
                if count is None:
                    continue
                old = answer.minutes.get(minute)
                if q.cold:
                    answer.minutes[minute] = Minute(old.requests if old else 0, count)
                else:
                    answer.minutes[minute] = Minute(count, old.cold_starts if old else None)
        for i in batch:
            src = reads[i].source
            if src.reports_cold_starts() and answers[i].error is None and src.config.absent == "zero":
                answers[i].minutes = {ts: Minute(m.requests, m.cold_starts or 0) for ts, m in answers[i].minutes.items()}


def _stat(namespace: str, metric: str, dimensions: dict[str, str], stat: str = "Sum") -> dict[str, Any]:
    return {"Metric": {"Namespace": namespace, "MetricName": metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())]},
            "Period": 60, "Stat": stat}


def _batches(reads: Sequence[Read], members: list[int]) -> list[list[int]]:
    """Endpoints in calls of at most MAX_QUERIES queries, an endpoint's queries together."""
    out: list[list[int]] = []
    batch: list[int] = []
    size = 0
    for i in members:
        n = len(reads[i].source.metric_stats())
        if batch and size + n > MAX_QUERIES:
            out.append(batch)
            batch, size = [], 0
        batch.append(i)
        size += n
    if batch:
        out.append(batch)
    return out
