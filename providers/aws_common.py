"""The one place AWS clients are made and AWS errors are judged.

Clients come from boto3's standard credential chain (environment, profile, instance role);
nothing here reads, logs or stores a secret. botocore's own retries are switched off
(`total_max_attempts=1`) so that the policy in force is `retry_call` from base.py: jittered
exponential backoff within `retry_deadline_s`, on throttling, 5xx and connection errors only.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, ClassVar, Literal, Optional

import boto3
import botocore.exceptions as bx
from botocore import xform_name
from botocore.config import Config as BotoConfig
from pydantic import Field, field_validator

from .aws_scheduled import AppAutoScalingSchedule
from .base import (ApplyResult, Capabilities, CapacityState, EndpointRef, Finding, Provider,
                   ProviderConfig, ProviderError, ReadyReport, retry_call)

log = logging.getLogger("prewarm.providers.aws")

# Error codes that mean "slow down", across the services used here (Lambda, SageMaker, ECS,
# EC2 Auto Scaling, Application Auto Scaling) and botocore's own list of throttling codes.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "ProvisionedThroughputExceeded", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "RequestThrottled", "SlowDown",
    "PriorRequestNotComplete", "EC2ThrottledException",
})
# Quotas, not rates: a retry cannot help until someone raises the quota or removes resources.
# botocore's standard retry mode counts `LimitExceededException` as throttling (API Gateway
# uses it so), but for the services here it is a quota: Application Auto Scaling's
# LimitExceededException is "A per-account resource limit is exceeded" (e.g. 200 scheduled
# actions per scalable target), EC2 Auto Scaling's LimitExceeded "You have already reached a
# limit for your Amazon EC2 Auto Scaling resources", SageMaker's ResourceLimitExceeded.
# (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScheduledAction.html,
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutScheduledUpdateGroupAction.html)
QUOTA_CODES = frozenset({"LimitExceededException", "LimitExceeded", "ResourceLimitExceeded"})
# Transient server-side or conflict codes that a later attempt can clear.
TRANSIENT_CODES = frozenset({
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
    "InternalServerError", "ServiceException", "ServiceUnavailable", "ServiceUnavailableException",
    "ConcurrentUpdateException", "ResourceContention", "ScalingActivityInProgress",
    "ResourceConflictException", "IDPCommunicationError", "EC2ThrottledException",
})
# Codes that are transient only with a given message: SageMaker answers a change to an endpoint
# that another update holds with `ValidationException: Cannot update in-progress endpoint` (the
# status check before a write cannot close the race with another writer).
TRANSIENT_MESSAGES = {"ValidationException": ("Cannot update in-progress endpoint",)}
_CONNECTION_ERRORS = (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError,
                      bx.ConnectionClosedError, bx.ConnectionError, bx.HTTPClientError)
_SETUP_ERRORS = (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound,
                 bx.NoRegionError, bx.ParamValidationError, bx.UnknownServiceError)


class AwsConfig(ProviderConfig):
    """Keys shared by every AWS kind."""

    region: str = Field(min_length=1, description="AWS region, e.g. us-east-1")
    endpoint_url: Optional[str] = Field(None, description="override: moto, LocalStack, a VPC endpoint")
    profile: Optional[str] = Field(None, description="named profile of the shared config files")
    mode: Literal["direct", "scheduled"] = Field(
        "direct", description="scheduled: also write the plan as scheduled actions")
    schedule_prefix: str = Field("prewarm", pattern=r"^[A-Za-z0-9_.\-]{1,40}$",
                                 description="name prefix of the scheduled actions prewarm owns")
    retry_deadline_s: float = Field(30.0, ge=0, description="give up retrying after this long")
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must start with http:// or https://")
        return v


def classify(exc: BaseException) -> tuple[bool, str, str] | None:
    """(retryable, code, message) for an AWS SDK error, or None if it is not one."""
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {}) or {}
        code = str(err.get("Code") or "Unknown")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        # Bounded: some services echo request details in messages; keep logs short and plain.
        message = str(err.get("Message") or err.get("message") or exc)[:300]
        if code in QUOTA_CODES:
            return False, code, f"{message} (a service quota: raise it or free resources; not retried)"
        retryable = (code in THROTTLING_CODES or code in TRANSIENT_CODES or status == 429 or status >= 500
                     or message.startswith(TRANSIENT_MESSAGES.get(code, ())))
        return retryable, code, message
    if isinstance(exc, _CONNECTION_ERRORS):
        return True, type(exc).__name__, str(exc)
    if isinstance(exc, _SETUP_ERRORS):
        return False, type(exc).__name__, str(exc)
    if isinstance(exc, bx.BotoCoreError):
        return False, type(exc).__name__, str(exc)
    return None


_sessions: dict[Optional[str], boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def make_client(service: str, config: AwsConfig) -> Any:
    # One session per profile for the process: a session loads the service models and
    # resolves credentials once (measured ~170 ms for session+client vs ~5 ms for a client
    # of a shared session), which would otherwise repeat per endpoint.
    with _sessions_lock:
        session = _sessions.get(config.profile)
        if session is None:
            session = _sessions[config.profile] = boto3.session.Session(profile_name=config.profile)
        boto_config = BotoConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=config.connect_timeout_s, read_timeout=config.read_timeout_s,
            user_agent_extra="prewarm")
        return session.client(service, region_name=config.region, endpoint_url=config.endpoint_url,
                              config=boto_config)


class AwsProvider(Provider):
    """Shared plumbing of the AWS kinds: clients, calls with retries, waiting on a status.

    Subclasses implement `read`, `_write(target, previous_state)` and `capabilities`, and may
    set `hard_min` when the AWS API itself refuses targets below it (raised, never lowered:
    fail warm). Scheduled mode is provided by a `schedule` object (see aws_scheduled.py).
    """

    config: AwsConfig
    hard_min: ClassVar[int] = 0

    def __init__(self, config: AwsConfig, endpoint: EndpointRef) -> None:
        super().__init__(config, endpoint)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Injectable so tests can observe the backoff without waiting for it (and measure the
        # retry deadline on a clock of their own, not the loaded machine's).
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic
        self.retry_base_s = 0.2
        # Operations attempted, in order, without parameters (nothing secret): for tests and
        # for checking that the documented IAM policies cover what is really called.
        self.calls: list[str] = []
        self.service_calls: list[tuple[str, str]] = []

    # -- plumbing -------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = make_client(service, self.config)
            return self._clients[service]

    def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """One AWS operation, retried per our policy; errors become ProviderError.
        (Positional-only: ECS itself has a `service` parameter.)"""
        def once() -> dict[str, Any]:
            self.calls.append(operation)
            self.service_calls.append((service, operation))
            try:
                # Inside the try: a missing profile or region surfaces at client creation.
                return getattr(self.client(service), xform_name(operation))(**params)
            except Exception as exc:  # noqa: BLE001 - classified below, others re-raised
                judged = classify(exc)
                if judged is None:
                    raise
                retryable, code, message = judged
                raise self.error(f"{service} {operation}: {message}", retryable=retryable,
                                 code=code) from None

        def on_retry(exc: ProviderError, attempt: int, delay: float) -> None:
            log.warning("%s %s for %s failed (%s), retry %d in %.2fs", service, operation,
                        self.endpoint.name, exc.code, attempt, delay)

        return retry_call(once, deadline_s=self.config.retry_deadline_s, base_s=self.retry_base_s,
                          clock=self.clock, sleep=self.sleep, on_retry=on_retry)

    def bounded(self, target: int) -> int:
        """Clamp to the endpoint's bounds, then raise to what the API accepts."""
        return max(self.endpoint.clamp(target), self.hard_min)

    # -- verbs ----------------------------------------------------------------------------
    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        asked = self.endpoint.clamp(target)
        target = self.bounded(target)
        detail: dict[str, Any] = {}
        if asked != target:
            detail["raised_to_api_minimum"] = self.hard_min
        state = self.read()
        fitted = self.fit(target, state)
        if fitted != target:
            detail["fitted_to_resource_bounds"] = fitted
            target = fitted
        floor_changed = False
        schedule = self.schedule()
        if schedule is not None:
            # Floor first: lowering capacity under a higher floor would be undone by the scaler.
            # The floor is kept under the scalable target's maximum, and so is the target.
            target, floor_changed = schedule.set_floor(target)
            detail["floor"] = target
        changed = self._write(target, state)
        if changed:
            log.info("%s: set %s warm capacity to %d (was %d)", self.kind, self.endpoint.name,
                     target, state.desired)
        return ApplyResult(changed or floor_changed, state.desired, target, None, detail)

    def fit(self, target: int, state: CapacityState) -> int:
        """Bounds the resource itself enforces (read from `state`); identity by default."""
        return target

    def _write(self, target: int, state: CapacityState) -> bool:
        """Make the change if `state` is not already at `target`; return whether it did."""
        raise NotImplementedError

    def schedule(self):
        """The scheduled-mode backend, or None in direct mode."""
        if self.config.mode != "scheduled":
            return None
        if not hasattr(self, "_schedule"):
            self._schedule = self.make_schedule()
        return self._schedule

    def make_schedule(self):
        return AppAutoScalingSchedule(self, *self.scalable_target())

    def scalable_target(self) -> tuple[str, str, str]:
        """(ServiceNamespace, ResourceId, ScalableDimension) in Application Auto Scaling."""
        raise NotImplementedError

    def apply_schedule(self, commands, *, now=None):
        """Write future (datetime, workers) commands as scheduled actions (scheduled mode)."""
        schedule = self.schedule()
        if schedule is None:
            raise self.error("apply_schedule needs mode = \"scheduled\" in the provider table",
                             retryable=False, code="NotScheduled")
        return schedule.sync(commands, now=now)

    def check(self) -> list[Finding]:
        """Direct mode beside an Application Auto Scaling policy on the same scalable target: the
        policy also sets the capacity ("adds or removes service tasks as required to keep the
        metric at, or close to, the specified target value",
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-autoscaling-targettracking.html)
        and undoes a raise when it scales in; prewarm raises again at its next pass. Warned."""
        if self.config.mode != "direct":
            return []
        try:
            namespace, resource_id, dimension = self.scalable_target()
        except NotImplementedError:
            return []
        got = self.call("application-autoscaling", "DescribeScalingPolicies", ServiceNamespace=namespace,
                        ResourceId=resource_id, ScalableDimension=dimension)
        policies = [f"{p.get('PolicyName')} ({p.get('PolicyType')})" for p in got.get("ScalingPolicies", [])]
        if not policies:
            return []
        return [Finding("warning", f"{resource_id} has Application Auto Scaling policies "
                                   f"{', '.join(policies)}: in direct mode they also set the capacity and "
                                   "undo prewarm's raises when they scale in. Use mode = \"scheduled\": "
                                   "prewarm then moves MinCapacity, the floor the policies scale above")]

    def base_capabilities(self, **kw: Any) -> Capabilities:
        return Capabilities(scheduled=self.config.mode == "scheduled", **kw)

    def wait_ready(self, target: int, timeout_s: float, *, poll_s: float = 1.0,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> ReadyReport:
        """Poll the provider's status until `ready >= target`; stop early on a failed status
        (read() puts it in detail["failed"])."""
        target = self.bounded(target)
        start = clock()
        while True:
            state = self.read()
            if state.ready >= target and state.detail.get("settled", True):
                return ReadyReport(True, clock() - start, state)
            if state.detail.get("failed") or clock() - start >= timeout_s:
                return ReadyReport(False, clock() - start, state)
            sleep(poll_s)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

