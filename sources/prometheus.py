"""Prometheus and PromQL servers (Thanos, Mimir, VictoriaMetrics): query_range at a 60 s step.

Per-minute counts from the HTTP API's `query_range`, one query per endpoint.

The query is evaluated at the end of each minute and its value is that minute's requests:
the minute stamped t gets the value at t + 60 s. `sum(increase(http_requests_total{...}[1m]))`
is the recommended query (docs/sources/prometheus.md: minute alignment, rounding, resets).
A query must return one series (aggregate with sum); a minute without a value is missing,
not zero. Credentials (bearer token, basic auth, client certificate) are never logged, and
messages show the URL without its user info.
"""
from __future__ import annotations

import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import Field, SecretStr, model_validator

from .base import MINUTE, Answer, Minute, Read, Source, SourceConfig, SourceError, minute_range

# Prometheus refuses a range query of more than 11,000 points per series: a week a request.
MAX_POINTS = 7 * 24 * 60
READERS = 4  # concurrent requests to one server in a sync


class PrometheusConfig(SourceConfig):
    kind: str = "prometheus"
    url: str = Field(description="base URL of the server, e.g. http://prometheus:9090 (a path prefix is kept)")
    query: str = Field(min_length=1, description="PromQL giving one series: the requests in the minute "
                                                 "ending at each evaluation, e.g. sum(increase(x_total{...}[1m]))")
    cold_starts_query: Optional[str] = Field(None, description="PromQL giving the cold starts in the minute, "
                                                               "the same way (optional)")
    bearer_token: Optional[SecretStr] = Field(None, description="Authorization: Bearer (use \"${VAR}\")")
    bearer_token_file: Optional[str] = Field(None, description="file holding the bearer token, read at each sync")
    username: Optional[str] = Field(None, description="basic auth user")
    password: Optional[SecretStr] = Field(None, description="basic auth password (use \"${VAR}\")")
    ca_file: Optional[str] = Field(None, description="CA bundle that signs the server's certificate")
    cert_file: Optional[str] = Field(None, description="client certificate (PEM) for mutual TLS")
    key_file: Optional[str] = Field(None, description="key of cert_file, if not inside it")
    insecure_skip_verify: bool = Field(False, description="do not verify the server's certificate")
    retention_s: Optional[float] = Field(None, gt=0, description="how far back the server keeps data "
                                                                 "(backfills start no earlier; none: as far as asked)")

    @model_validator(mode="after")
    def _checks(self) -> "PrometheusConfig":
        # Here, not in a field validator: a refused URL is not echoed (it may carry user:password@).
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be http:// or https:// with a host, e.g. http://prometheus:9090 "
                             f"(got {redact(self.url)!r})")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if self.bearer_token is not None and self.bearer_token_file is not None:
            raise ValueError("give either bearer_token or bearer_token_file, not both")
        if (self.bearer_token or self.bearer_token_file) and self.username:
            raise ValueError("give either a bearer token or basic auth (username/password), not both")
        if self.password is not None and not self.username:
            raise ValueError("password needs username")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file")
        return self


def redact(url: str) -> str:
    """The URL without user info (http://user:secret@host -> http://host)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_clients: dict[tuple, httpx.Client] = {}
_clients_lock = threading.Lock()


def _client(config: PrometheusConfig) -> httpx.Client:
    """One pooled client per server and TLS/auth setting, shared by every endpoint's source
    (1,000 endpoints on one server share its connections)."""
    auth = None
    if config.username:
        auth = (config.username, config.password.get_secret_value() if config.password else "")
    key = (config.url, config.ca_file, config.cert_file, config.key_file, config.insecure_skip_verify, auth,
           config.timeout_s)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = httpx.Client(
                verify=_tls(config), auth=auth, timeout=httpx.Timeout(config.timeout_s),
                limits=httpx.Limits(max_connections=READERS * 2, max_keepalive_connections=READERS * 2),
                headers={"User-Agent": "prewarm"})
        return client


def _tls(config: PrometheusConfig) -> ssl.SSLContext:
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(config, name)
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{name} {path!r} is not a readable file")
    context = ssl.create_default_context(cafile=config.ca_file)
    if config.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert_file:
        try:
            context.load_cert_chain(config.cert_file, config.key_file)
        except ssl.SSLError as exc:
            raise FileNotFoundError(f"cert_file/key_file: not a certificate and its key: {exc.reason}") from None
    return context


class PrometheusSource(Source):
    kind: ClassVar[str] = "prometheus"
    Config = PrometheusConfig

    def retention(self) -> float | None:
        return self.config.retention_s

    def reports_cold_starts(self) -> bool:
        return self.config.cold_starts_query is not None

    def _headers(self) -> dict[str, str]:
        token = None
        if self.config.bearer_token is not None:
            token = self.config.bearer_token.get_secret_value()
        elif self.config.bearer_token_file:
            try:
                token = Path(self.config.bearer_token_file).read_text().strip()
            except OSError as exc:
                raise self.error(f"cannot read bearer_token_file {self.config.bearer_token_file!r}: "
                                 f"{exc.strerror}", retryable=False, code="config") from None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def read(self, start: datetime, end: datetime) -> Answer:
        answer = Answer(self.endpoint, start, end)
        for page_start, page_end in minute_range(start, end, MAX_POINTS):
            requests = self._range(self.config.query, page_start, page_end, "query")
            if self.config.cold_starts_query:
                cold = self._range(self.config.cold_starts_query, page_start, page_end, "cold_starts_query")
                answer.minutes.update({ts: Minute(value, cold.get(ts)) for ts, value in requests.items()})
            else:
                answer.minutes.update({ts: Minute(value) for ts, value in requests.items()})
        return answer

    def _range(self, query: str, start: datetime, end: datetime, key: str) -> dict[datetime, int]:
        """Values of `query` evaluated at the end of each minute in [start, end), by minute start."""
        where = redact(self.config.url)
        try:
            client = _client(self.config)
        except FileNotFoundError as exc:
            raise self.error(str(exc), retryable=False, code="config") from None
        params = {"query": query, "start": f"{(start + MINUTE).timestamp():.0f}",
                  "end": f"{end.timestamp():.0f}", "step": "60", "timeout": f"{self.config.timeout_s:g}s"}
        try:
            resp = client.post(self.config.url + "/api/v1/query_range", data=params, headers=self._headers())
        except httpx.TimeoutException:
            raise self.error(f"timeout after {self.config.timeout_s:g} s from {where}", retryable=True,
                             code="timeout") from None
        except httpx.TransportError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
                raise self.error(f"{where}: TLS certificate not trusted (set ca_file, or insecure_skip_verify)",
                                 retryable=False, code="tls") from None
            raise self.error(f"cannot reach {where}: {type(exc).__name__}: {_plain(exc)}", retryable=True,
                             code="unreachable") from None
        body = _json(resp)
        if resp.status_code != 200 or body.get("status") != "success":
            kind = body.get("errorType") or f"http {resp.status_code}"
            message = body.get("error") or resp.text[:200].strip() or resp.reason_phrase
            if resp.status_code in (401, 403):
                raise self.error(f"{where} refused the credentials ({resp.status_code})", retryable=False,
                                 code="auth")
            retryable = resp.status_code == 429 or resp.status_code >= 500 or kind in ("timeout", "canceled")
            raise self.error(f"{key} refused by {where}: {kind}: {message}", retryable=retryable, code=str(kind))
        data = body.get("data") or {}
        series = data.get("result") or []
        if data.get("resultType") != "matrix":
            raise self.error(f"{key} gave a {data.get('resultType')}, expected an instant vector evaluated per "
                             "minute (a range query's matrix)", retryable=False, code="bad_result")
        if len(series) > 1:
            labels = ", ".join(_labels(s.get("metric") or {}) for s in series[:3])
            raise self.error(f"{key} returned {len(series)} series ({labels}{', ...' if len(series) > 3 else ''}); "
                             "it must return one: aggregate them, e.g. sum(...)", retryable=False,
                             code="many_series")
        out: dict[datetime, int] = {}
        minute_of = _minute_of
        for ts, raw in (series[0].get("values") or []) if series else []:
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if value == value and value not in (_INF, -_INF):  # NaN and infinities are no value
                out[minute_of(ts)] = int(value + 0.5) if value > 0 else 0  # rounded: see whole_minutes
        return out

    @classmethod
    def read_many(cls, reads: Sequence[Read]) -> list[Answer]:
        """Concurrently, a few requests at a time per server. A server that times out or cannot
        be reached is not asked again in this sync: its other endpoints get the same error."""
        down: dict[str, SourceError] = {}
        lock = threading.Lock()

        def one(r: Read) -> Answer:
            src = r.source
            with lock:
                known = down.get(src.config.url)
            if known is not None:
                return Answer(src.endpoint, r.start, r.end, error=SourceError(
                    known.message, source=cls.kind, endpoint=src.endpoint, retryable=True, code=known.code))
            try:
                return src.read(r.start, r.end)
            except SourceError as exc:
                if exc.code in ("timeout", "unreachable"):
                    with lock:
                        down.setdefault(src.config.url, exc)
                return Answer(src.endpoint, r.start, r.end, error=exc)

        if len(reads) <= 1:
            return [one(r) for r in reads]
        with ThreadPoolExecutor(READERS, thread_name_prefix="prometheus") as pool:
            return list(pool.map(one, reads))


_INF = float("inf")
_minutes: dict[float, datetime] = {}


def _minute_of(ts: float) -> datetime:
    """The minute that ends at evaluation time ts. Every endpoint is evaluated at the same
    minute ends, so each is converted once (a 14-day backfill of 1,000 endpoints: 20 M values)."""
    minute = _minutes.get(ts)
    if minute is None:
        if len(_minutes) > 100_000:
            _minutes.clear()
        minute = _minutes[ts] = datetime.fromtimestamp(float(ts), timezone.utc) - MINUTE
    return minute


def _json(resp: httpx.Response) -> dict:
    try:
        body = resp.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}


def _labels(metric: dict) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _plain(exc: Exception) -> str:
    """A transport error's text without any URL user info it might quote."""
    text = str(exc)
    return text if "@" not in text else "(details withheld: they quote the URL)"
