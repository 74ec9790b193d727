"""Shared plumbing for providers that speak a vendor's HTTP API, directly or through its SDK.

One `JsonApi` per provider instance: a base URL, an auth header built from a token read from
the environment, status-code -> ProviderError mapping, and retries through `retry_call`
(429, 408, 5xx and connection errors are retried; `Retry-After` is honoured within the
deadline; 4xx answers are not retried).

`SdkCalls` gives the same policy to a vendor SDK built on httpx (Replicate, Baseten): the SDK's
status errors become the same ProviderErrors, and an httpx response hook keeps the
`Retry-After` header that the SDKs' exceptions drop.

Secrets: the token lives only in the httpx client's default headers. It never enters a
config object, a log line, an error message or a repr.
"""
from __future__ import annotations

import email.utils
import importlib
import json
import logging
import math
import os
import time
from typing import Any, Callable, Optional, TypeVar

import httpx
from pydantic import Field

from .base import Provider, ProviderConfig, ProviderError, retry_call

log = logging.getLogger("prewarm.providers.http")

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MESSAGE_KEYS = ("detail", "message", "error", "title", "errorMessage")


class HttpProviderConfig(ProviderConfig):
    """Keys every HTTP provider takes. `api_token_env` names the variable holding the token;
    the token itself is never written in the config file."""

    api_token_env: str = Field(..., description="environment variable holding the API token")
    timeout_s: float = Field(15.0, gt=0, description="per-request timeout in seconds")
    retry_deadline_s: float = Field(30.0, ge=0, description="give up retrying after this long")


class HttpProviderError(ProviderError):
    """A ProviderError that also knows the HTTP status and how long the server asked us to wait."""

    def __init__(self, message: str, *, provider: str, endpoint: str, retryable: bool,
                 code: str | None = None, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, provider=provider, endpoint=endpoint, retryable=retryable,
                         code=code)
        self.status = status
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def read_token(provider: Provider, env_name: str) -> str:
    token = os.environ.get(env_name, "")
    if not token:
        raise provider.error(
            f"environment variable {env_name} (named by api_token_env) is not set or empty",
            retryable=False, code="config")
    return token


def vendor_words(body_text: str) -> str:
    """The message out of an error body (JSON with a message-like key, else the text), shortened."""
    try:
        body = json.loads(body_text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in _MESSAGE_KEYS:
            if body.get(key):
                return str(body[key])[:300]
    return body_text.strip()[:300]


def error_message(response: httpx.Response) -> str:
    """The vendor's own words for a failed call, shortened; never the request headers."""
    text = vendor_words(response.text) or response.reason_phrase
    return f"{response.request.method} {response.request.url.path} -> HTTP {response.status_code}: {text}"


def status_error(provider: Provider, status: int, message: str,
                 retry_after_s: float | None = None) -> HttpProviderError:
    """The one mapping of an HTTP status to a ProviderError, for JsonApi and the SDK wrappers."""
    return HttpProviderError(message, provider=provider.kind, endpoint=provider.endpoint.name,
                             retryable=status in RETRYABLE_STATUS, code=f"http-{status}", status=status,
                             retry_after_s=retry_after_s)


def connection_error(provider: Provider, what: str, exc: Exception) -> HttpProviderError:
    # connect, read, timeouts: the call may not have landed, so it is worth another try
    return HttpProviderError(f"{what}: {type(exc).__name__}: {exc}", provider=provider.kind,
                             endpoint=provider.endpoint.name, retryable=True, code="connection")


def host_root(url: str, key: str) -> str:
    """Base URL for SDKs whose request paths already start with `/v1/`: refuse a `/v1` suffix,
    which would double it and turn every call into a 404."""
    if url.rstrip("/").endswith("/v1"):
        raise ValueError(f"{key} is the API's root URL without /v1 (the client adds it), got {url!r}")
    return url.rstrip("/")


def provider_limit(target: int, limit: Any) -> tuple[int, dict[str, Any]]:
    """Fail warm but honest: a target above the vendor-side maximum is lowered to it (writing
    more would be refused) and the cut is reported in the result's detail."""
    if isinstance(limit, int) and limit >= 0 and target > limit:
        log.warning("target %d exceeds the provider's own maximum %d; applying %d", target, limit, limit)
        return limit, {"requested": target, "limited_by_provider_max": limit}
    return target, {}


def seconds_to_minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60.0))


def call_with_retries(fn: Callable[[], T], *, deadline_s: float,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """`retry_call` plus the server's `Retry-After`: wait at least as long as asked, and give
    up at once when the server asks us back only after the deadline."""
    start = clock()
    wait_at_least = {"s": 0.0}

    def on_retry(exc: ProviderError, attempt: int, delay: float) -> None:
        asked = getattr(exc, "retry_after_s", None)
        if asked is not None and clock() - start + asked > deadline_s:
            raise exc
        wait_at_least["s"] = asked or 0.0
        log.warning("%s / %s: retry %d in %.2fs after: %s", exc.provider, exc.endpoint,
                    attempt, max(delay, asked or 0.0), exc.args[0])

    def wait(delay: float) -> None:
        sleep(max(delay, wait_at_least["s"]))
        wait_at_least["s"] = 0.0

    return retry_call(fn, deadline_s=deadline_s, on_retry=on_retry, sleep=wait, clock=clock)


class JsonApi:
    """A small JSON-over-HTTP client bound to one provider instance."""

    def __init__(self, provider: Provider, config: HttpProviderConfig, *, base_url: str,
                 auth_header: Callable[[str], dict[str, str]],
                 transport: Optional[httpx.BaseTransport] = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._provider = provider
        self._config = config
        self._clock = clock
        self._sleep = sleep
        headers = {"Accept": "application/json", "User-Agent": "prewarm"}
        headers.update(auth_header(read_token(provider, config.api_token_env)))
        self._client = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers,
                                    timeout=config.timeout_s, transport=transport)

    def __repr__(self) -> str:  # the default would be harmless, but say so explicitly
        return f"JsonApi(base_url={str(self._client.base_url)!r}, token=<hidden>)"

    def close(self) -> None:
        self._client.close()

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One logical call: retried on retryable failures, parsed JSON (or None) on success."""
        return self.retrying(lambda: self.once(method, path, body))

    def retrying(self, fn: Callable[[], Any]) -> Any:
        return call_with_retries(fn, deadline_s=self._config.retry_deadline_s, clock=self._clock,
                                 sleep=self._sleep)

    def once(self, method: str, path: str, body: Any = None) -> Any:
        endpoint = self._provider.endpoint.name
        kind = self._provider.kind
        try:
            response = self._client.request(method, path.lstrip("/"), json=body)
        except httpx.TransportError as exc:
            raise connection_error(self._provider, f"{method} {path}", exc) from None
        if response.status_code >= 400:
            raise status_error(self._provider, response.status_code, error_message(response),
                               parse_retry_after(response.headers.get("Retry-After")))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise HttpProviderError(f"{method} {path}: answer is not JSON", provider=kind,
                                    endpoint=endpoint, retryable=False, code="bad-response") from None


def dig(data: Any, *path: str, provider: Provider, default: Any = ...) -> Any:
    """Dig `path` out of a JSON answer; a missing key is a clear, non-retryable error."""
    cur = data
    for key in path:
        if isinstance(cur, dict) and key in cur and cur[key] is not None:
            cur = cur[key]
        elif default is not ...:
            return default
        else:
            raise provider.error(f"answer has no {'.'.join(path)}", retryable=False, code="bad-response")
    return cur


def import_sdk(provider: Provider, module: str, extra: str) -> Any:
    """The vendor SDK, or a clear error naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise provider.error(f"the {provider.kind} provider needs the '{module.split('.')[0]}' package: "
                             f"pip install 'prewarm[{extra}]'", retryable=False,
                             code="missing-dependency") from None


class LastAnswer:
    """httpx response hook: remembers the last answer's request line and `Retry-After`, which
    the SDKs' exceptions do not carry. One per provider instance (calls are sequential)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.request_line = ""
        self.retry_after_s: float | None = None

    def __call__(self, response: httpx.Response) -> None:
        self.request_line = f"{response.request.method} {response.request.url.path}"
        self.retry_after_s = parse_retry_after(response.headers.get("Retry-After"))


class SdkCalls:
    """Runs vendor-SDK calls under our retry policy. `status_of` turns the SDK's HTTP error into
    (status, body or message), or None for anything else. Connection errors are retryable; an
    answer the SDK cannot parse (a ValueError, pydantic's included) is a non-retryable
    `bad-response`; any other exception is a bug and surfaces as it is."""

    def __init__(self, provider: Provider, config: HttpProviderConfig,
                 status_of: Callable[[Exception], Optional[tuple[int, str]]], *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._provider = provider
        self._config = config
        self._status_of = status_of
        self._clock = clock
        self._sleep = sleep
        self.last = LastAnswer()

    @property
    def event_hooks(self) -> dict[str, list[Callable[[httpx.Response], None]]]:
        return {"response": [self.last]}

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retries(lambda: self.once(what, fn), deadline_s=self._config.retry_deadline_s,
                                 clock=self._clock, sleep=self._sleep)

    def once(self, what: str, fn: Callable[[], T]) -> T:
        self.last.reset()
        try:
            return fn()
        except ProviderError:
            raise
        except httpx.TransportError as exc:
            raise connection_error(self._provider, what, exc) from None
        except Exception as exc:
            answer = self._status_of(exc)
            if answer is not None:
                status, text = answer
                raise status_error(self._provider, status,
                                   f"{self.last.request_line or what} -> HTTP {status}: {vendor_words(text)}",
                                   self.last.retry_after_s) from None
            if isinstance(exc, ValueError):
                raise self._provider.error(f"{what}: the answer does not parse: {str(exc)[:300]}",
                                           retryable=False, code="bad-response") from None
            raise
