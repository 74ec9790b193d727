"""`prewarm.toml`, validated at load.

Every error names the file, the key (dotted, with list indexes) and what was expected, and
maps to exit code 2. `PREWARM_<SECTION>__<KEY>` environment variables override file values
(e.g. PREWARM_STORE__URL, PREWARM_METRICS__ADDRESS); `${VAR}` inside any string value is
replaced from the environment, so secrets need not sit in the file.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import redact
from .errors import ConfigError
from .forecast_events import ForecastEvent
from .planner.model import SMOOTHING_CHOICES_S
from .units import parse_duration, parse_durations, zone

DEFAULT_CONFIG_NAME = "prewarm.toml"
DEFAULT_DB_URL = "sqlite:///prewarm.db"
ENV_PREFIX = "PREWARM_"


class _Strict(BaseModel):
    # strict: no coercion between kinds, so `speculative = "off"` or `floor = true` is refused
    # rather than read as False or 1. Arrays are the exception (TOML has no tuples): tuple
    # fields say Field(strict=False).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _parse_duration_keys(data: Any, names: dict[str, str]) -> Any:
    """`foo = "5m"` or `foo_s = 300` -> foo_s in seconds. Anything but a string or a number
    (`cycle_interval = true`) is refused, naming the key."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for short, full in names.items():
        if short in out:
            if full in out:
                raise ValueError(f"give either {short} or {full}, not both")
            out[full] = out.pop(short)
        if full in out and isinstance(out[full], (str, bool)):  # a number is checked by the field
            try:
                out[full] = parse_duration(out[full])
            except ValueError as exc:
                raise ValueError(f"{short}: {exc}") from None
    return out


class StoreSettings(_Strict):
    url: str = Field(DEFAULT_DB_URL, description="SQLAlchemy URL of the store")
    echo: bool = Field(False, description="log every SQL statement")


class MetricsSettings(_Strict):
    address: str = Field("127.0.0.1:9464", description="HOST:PORT of /metrics and /healthz")
    enabled: bool = True

    @field_validator("address")
    @classmethod
    def _hostport(cls, v: str) -> str:
        return check_address(v)


def check_address(v: str) -> str:
    """HOST:PORT to listen on, both given: a bare port would listen on every interface.
    Shared by [metrics] address and `prewarm run --metrics-addr`."""
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9464, got {v!r}")
    return v


class DaemonSettings(_Strict):
    cycle_interval_s: float = Field(60.0, gt=0, description="seconds between forecast+plan cycles")
    reconcile_interval_s: float = Field(30.0, gt=0, description="seconds between reconcile passes")
    timezone: str = Field("UTC", description="zone of naive time stamps in ingested files")
    ingest_delay_s: float = Field(60.0, ge=0, description="history newer than now - this is ignored")
    leader_takeover_s: float = Field(15.0, gt=0, description="standby takes over within this")
    forecast_snapshot_interval_s: float = Field(
        3600.0, gt=0, description="store a forecast this often per endpoint (for accuracy and explain)")
    retention_s: float = Field(14 * 86400.0, gt=0, description="drop forecasts, old plans, needs, accuracy scores, times "
                                                          "to ready and static-guard judgements older than this (not "
                                                          "an endpoint's last 50 times to ready, nor its judgement in "
                                                          "force, nor the audit log)")
    refresh_processes: int = Field(
        0, ge=0, le=64, description="forecast refreshes run in this many background processes while cycles only plan "
                                    "(for fleets of thousands of endpoints); 0 refreshes in the cycle")
    audit_spool: Optional[str] = Field(
        None, description="file where audit records wait while the database is down, so a crash does not lose them "
                          "(default: $STATE_DIRECTORY/audit-spool.jsonl under systemd, else .prewarm/audit-spool.jsonl; "
                          "\"\" keeps them in memory only)")
    refresh_timeout_s: float = Field(
        1800.0, gt=0, description="a background refresh job (250 endpoints) running longer than this fails: the "
                                  "refresh processes are restarted and the cached forecasts kept")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        return _parse_duration_keys(data, {"cycle_interval": "cycle_interval_s",
                                           "reconcile_interval": "reconcile_interval_s",
                                           "ingest_delay": "ingest_delay_s",
                                           "leader_takeover": "leader_takeover_s",
                                           "forecast_snapshot_interval": "forecast_snapshot_interval_s",
                                           "retention": "retention_s",
                                           "refresh_timeout": "refresh_timeout_s"})

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v


class ForecastSettings(_Strict):
    model: str = Field("select", description="forecaster name (entry point) or 'auto'; the default 'select' picks per endpoint by rolling-origin CV")
    season_s: float = Field(86400.0, gt=0, description="season length for seasonal models")
    history_s: float = Field(14 * 86400.0, gt=0, description="how much history to read")
    horizon_s: float = Field(6 * 3600.0, gt=0, description="how far ahead to forecast and plan")
    step_s: int = Field(60, gt=0, description="forecast step in seconds, whole minutes that divide a day (60, 300, 900, ...)")
    levels: tuple[int, ...] = Field((80, 95), strict=False, description="prediction interval levels")
    resolution: Literal["auto", "fixed"] = Field(
        "auto", description="auto: per endpoint the finest of 1/5/15 min (>= step) that is mostly non-zero")
    timezone: Optional[str] = Field(None, description="local zone of the daily season (DST-aware)")
    refit_interval_s: float = Field(86400.0, gt=0, description="re-run the 'auto' model choice this often")
    refresh_interval_s: float = Field(
        600.0, gt=0, description="re-forecast an endpoint this often (staggered); cycles in between re-plan from it")
    gap_fill: Literal["seasonal", "zero"] = Field("seasonal", description="missing steps: last week/day, or 0")
    backend: Literal["local", "dask"] = Field("local", description="where statsforecast runs")
    dask_address: Optional[str] = Field(None, description="scheduler address; none = a LocalCluster")
    n_jobs: int = Field(1, ge=1, description="processes for the local backend")
    events: tuple[ForecastEvent, ...] = Field((), strict=False, description="calendar overrides ([[forecast.events]])")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        return _parse_duration_keys(data, {"season": "season_s", "history": "history_s",
                                           "horizon": "horizon_s", "step": "step_s",
                                           "refit_interval": "refit_interval_s",
                                           "refresh_interval": "refresh_interval_s"})

    @field_validator("timezone")
    @classmethod
    def _forecast_zone(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            zone(v)
        return v

    @field_validator("step_s", mode="before")
    @classmethod
    def _whole_step(cls, v: Any) -> Any:
        return int(v) if isinstance(v, float) and v.is_integer() else v  # "5m" parses to 300.0

    @field_validator("step_s")
    @classmethod
    def _step(cls, v: int) -> int:
        # Steps line up with the day (daily seasons, per-minute counts aggregated into them).
        if v % 60 or 86400 % v:
            raise ValueError(f"expected whole minutes that divide a day (60, 300, 900, 3600, ...), got {v} s")
        return v

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_are_integers(cls, v: Any) -> Any:
        # The field is lax (a TOML array is a list); its items are not: no "80", no true.
        if isinstance(v, (list, tuple)) and any(type(x) is not int for x in v):
            raise ValueError(f"levels must be integers between 1 and 99, got {list(v)!r}")
        return v

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(not 0 < x < 100 for x in v):
            raise ValueError("levels must be integers between 1 and 99")
        return tuple(sorted(set(v)))


class PlannerSettings(_Strict):
    """Defaults are the `predictive` policy the backtester measures (docs/backtesting.md)."""

    quantile: str = Field("mean", description="forecast band that sizes the pool: mean, hi-50, hi-80, hi-95")
    speculative: bool = Field(True, description="hold one warm worker through lulls")
    speculative_min_requests_per_hour: float = Field(
        0.0, ge=0, description="without cold_start_value: drop the speculative worker below this rate")
    floor: int = Field(0, ge=0, description="always-on workers (hybrid pattern)")
    floor_rule: Literal["fixed", "baseline"] = Field(
        "fixed", description="baseline: the tuner sizes the floor to the baseline load")
    baseline_percentile: float = Field(10.0, gt=0, lt=100, description="low percentile of load that is the baseline")
    scale_in_delay_s: float = Field(1800.0, ge=0, description="hysteresis before lowering a target")
    idle_timeout_s: Optional[float] = Field(None, ge=0, description="fixed idle timeout for on-demand workers")
    idle_timeout_rule: Literal["fixed", "forecast"] = Field(
        "forecast", description="forecast: a long keep-alive in forecast busy hours, the platform's in lulls")
    idle_timeout_busy_s: Optional[float] = Field(
        None, ge=0, description="keep-alive in busy hours (none: the value of an avoided cold start)")
    idle_timeout_max_s: float = Field(14400.0, gt=0, description="cap on the busy-hours keep-alive")
    burst_value_share: float = Field(0.3, gt=0, le=1,
                                     description="share of a cold start's value counted for workers beyond the first")
    burstiness: Literal["poisson", "observed"] = Field(
        "observed", description="observed: size busy steps for the burstiness of recent per-minute counts "
                                "(Hayward's loss); poisson: Erlang's loss on the forecast rate")
    target_cold_rate: float = Field(0.02, gt=0, lt=1, description="target (ceiling) share of cold requests")
    budget_worker_hours_per_day: Optional[float] = Field(None, gt=0, description="cap on planned worker-hours")
    blocking: Optional[float] = Field(0.02, gt=0, lt=1,
                                      description="busy steps: Erlang loss the pool is sized for (none: mean load)")
    cold_start_value_s: Optional[float] = Field(
        None, ge=0, description="worker-seconds one avoided cold start is worth (none: derived from the target)")
    initial_value_factor: float = Field(
        2.0, gt=0, description="without cold_start_value: the tuner starts at this x (cold start + service time) "
                               "/ target_cold_rate worker-seconds (2.0: 100x at a 2% target)")
    give_back_span_s: float = Field(
        86400.0, ge=0, description="the tuner lowers the value only after this much evidence at the current setting")
    smoothing_s: float = Field(7200.0, ge=0, description="average the forecast over +- this")
    smoothing_choices: tuple[float, ...] = Field(
        SMOOTHING_CHOICES_S,
        description="with the static guard on: the smoothings (durations, e.g. [\"1h\", \"2h\", \"3h\"]) its "
                    "weekly judgement replays the plan alone at on the endpoint's own trailing week; the endpoint "
                    "plans with the one that did best there (empty: always smoothing)")
    recent_window_s: float = Field(600.0, ge=0, description="how far ahead recent actual traffic floors the plan")
    auto_tune: bool = Field(True, description="tune quantile, cold-start value and floor toward target_cold_rate "
                                               "from observed cold starts (needs ingested cold_starts)")
    tune_interval_s: float = Field(3600.0, gt=0, description="how often the tuner may move the knobs")
    static_guard: Literal["auto", "lift", "always", "off"] = Field(
        "auto", description="never plan below last week's best static (floor, keep-alive) setting, judged weekly "
                            "on the endpoint's own history: auto (only after the plan alone did worse on it), "
                            "lift (as auto, but only the least floor/keep-alive under the plan that held "
                            "there), always, or off")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        return _parse_duration_keys(data, {"scale_in_delay": "scale_in_delay_s", "idle_timeout": "idle_timeout_s",
                                           "cold_start_value": "cold_start_value_s", "smoothing": "smoothing_s",
                                           "recent_window": "recent_window_s", "tune_interval": "tune_interval_s",
                                           "idle_timeout_busy": "idle_timeout_busy_s",
                                           "idle_timeout_max": "idle_timeout_max_s",
                                           "give_back_span": "give_back_span_s"})

    @field_validator("smoothing_choices", mode="before")
    @classmethod
    def _smoothing_choices(cls, v: Any) -> Any:
        """`smoothing_choices = ["1h", "2h", "3h"]` (or seconds): each a duration, none twice."""
        if not isinstance(v, (list, tuple)):
            raise ValueError("expected a list of durations such as [\"1h\", \"2h\", \"3h\"]")
        try:
            return parse_durations(v)
        except ValueError as exc:
            raise ValueError(f"smoothing_choices: {exc}") from None

    @field_validator("quantile")
    @classmethod
    def _quantile(cls, v: str) -> str:
        if v != "mean" and not re.fullmatch(r"(lo|hi)-\d{1,2}", v):
            raise ValueError("expected 'mean' or a band such as 'hi-80' or 'hi-95'")
        return v


class CapacitySettings(_Strict):
    concurrency: int = Field(1, ge=1, description="requests one worker serves at once")
    service_time_s: float = Field(1.0, gt=0, description="seconds a request holds a slot")
    cold_start_s: float = Field(30.0, ge=0, description="seconds from start to ready")
    cold_start_dist: Optional[str] = Field(None, description="CSV of measured cold starts")
    cold_start_percentile: float = Field(90.0, gt=0, le=100,
                                         description="percentile of cold_start_dist used as lead")
    cold_start_learn: bool = Field(False, description="use measured times to ready (after 5 scale-outs) as the lead")
    min_workers: int = Field(0, ge=0)
    max_workers: int = Field(10, ge=0)
    price_per_worker_hour: float = Field(1.0, ge=0, description="currency per worker-hour")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        return _parse_duration_keys(data, {"service_time": "service_time_s",
                                           "cold_start": "cold_start_s"})

    @model_validator(mode="after")
    def _bounds(self) -> "CapacitySettings":
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers})")
        return self


class HistorySource(_Strict):
    """History from the user's own table: a query with bound :start and :end (and :endpoint)."""

    url: str
    query: str

    @field_validator("query")
    @classmethod
    def _binds(cls, v: str) -> str:
        missing = [p for p in (":start", ":end") if p not in v]
        if missing:
            raise ValueError(f"query must use the bound parameters {', '.join(missing)}")
        return v


class EndpointSettings(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")
    provider: dict[str, Any] = Field(default_factory=lambda: {"kind": "dry-run"})
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    planner: dict[str, Any] = Field(default_factory=dict, description="overrides of [planner]")
    forecast: dict[str, Any] = Field(default_factory=dict, description="overrides of [forecast]")
    history: Optional[HistorySource] = None
    source: Optional[dict[str, Any]] = Field(
        None, description="where the daemon reads this endpoint's traffic (`prewarm sync`); inherits [source]")

    @field_validator("provider")
    @classmethod
    def _kind(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "kind" not in v or not isinstance(v["kind"], str):
            raise ValueError("the provider table needs kind = \"...\" (see `prewarm providers list`)")
        return v


class Settings(_Strict):
    store: StoreSettings = Field(default_factory=StoreSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    planner: PlannerSettings = Field(default_factory=PlannerSettings)
    endpoints: tuple[EndpointSettings, ...] = Field((), strict=False)
    source: dict[str, Any] = Field(default_factory=dict, description="what endpoints' [endpoints.source] inherit")
    config_file: Optional[str] = Field(None, description="file this was loaded from")

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, v: tuple[EndpointSettings, ...]) -> tuple[EndpointSettings, ...]:
        seen: set[str] = set()
        for ep in v:
            if ep.name in seen:
                raise ValueError(f"endpoint name {ep.name!r} appears twice")
            seen.add(ep.name)
        return v

    def endpoint(self, name: str) -> EndpointSettings:
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        known = ", ".join(e.name for e in self.endpoints) or "none configured"
        from .errors import InputError
        raise InputError(f"unknown endpoint {name!r} (configured: {known})")

    def endpoint_or_default(self, name: str) -> EndpointSettings:
        """The configured endpoint, or one with the defaults (default capacity, the dry-run
        provider, no overrides): what the show commands use for an endpoint that has history
        in the store but no [[endpoints]] entry."""
        return next((ep for ep in self.endpoints if ep.name == name), None) or EndpointSettings(name=name)

    def planner_for(self, ep: EndpointSettings) -> PlannerSettings:
        return _merged(self.planner, ep.planner, f"endpoints.{ep.name}.planner", self.config_file)

    def forecast_for(self, ep: EndpointSettings) -> ForecastSettings:
        return _merged(self.forecast, ep.forecast, f"endpoints.{ep.name}.forecast", self.config_file)

    def source_for(self, ep: EndpointSettings) -> dict[str, Any] | None:
        """The endpoint's source table: [source] overlaid by [endpoints.source]. None for an
        endpoint without an [endpoints.source] table (a shared [source] alone feeds nothing:
        each endpoint needs its own query)."""
        if ep.source is None:
            return None
        return {**self.source, **ep.source}


def _merged(base: BaseModel, overrides: dict[str, Any], where: str, source: str | None):
    if not overrides:
        return base
    data = base.model_dump()
    # `scale_in_delay = "2m"` overrides `scale_in_delay_s`: drop the inherited _s value so the
    # duration parser sees only one of them.
    for key in overrides:
        data.pop(f"{key}_s", None)
    try:
        return type(base).model_validate({**data, **overrides})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source or "<config>", prefix=where)) from None


def _describe(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        named = re.match(r"([a-z_]+): (.*)", msg, re.S)  # a section's check naming its key
        if named and err["type"] == "value_error":
            loc, msg = ".".join(x for x in (loc, named.group(1)) if x), named.group(2)
        key = ".".join(x for x in (prefix, loc) if x) or "(top level)"
        got = err.get("input")
        shown = "" if isinstance(got, (dict, list, tuple)) or got is None else f" (got {redact.redact(repr(got))})"
        lines.append(f"  {key}: {msg}{shown}")
    return "\n".join(lines)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, where: str, source: str, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            if m.group(1) not in env:
                raise ConfigError(f"{source}: {where}: environment variable {m.group(1)} is not set")
            if redact.looks_secret(m.group(1)):
                redact.remember(env[m.group(1)])
            return env[m.group(1)]
        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else k, source, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", source, env) for i, v in enumerate(value)]
    return value


def _remember_url_passwords(value: Any) -> None:
    """The password of every URL in the config is masked wherever it shows from now on, also
    alone (a driver's message), also under a misspelled key."""
    if isinstance(value, str):
        password = redact.url_password(value)
        if password:
            redact.remember(password)
            redact.remember(unquote(password))
    elif isinstance(value, dict):
        for v in value.values():
            _remember_url_passwords(v)
    elif isinstance(value, list):
        for v in value:
            _remember_url_passwords(v)


def _env_overrides(data: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    out = dict(data)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in Settings.model_fields or section == "endpoints":
            continue
        table = dict(out.get(section) or {})
        table[key] = _coerce_env(value)
        out[section] = table
    return out


def _coerce_env(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def load(path: str | os.PathLike | None = None, *, env: dict[str, str] | None = None,
         db_url: str | None = None, required: bool = False) -> Settings:
    """Load and validate. No file (and none required) gives the embedded defaults."""
    env = dict(os.environ if env is None else env)
    source = str(path) if path else env.get("PREWARM_CONFIG") or DEFAULT_CONFIG_NAME
    data: dict[str, Any] = {}
    file = Path(source)
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    elif required or path:
        raise ConfigError(f"{source}: no such config file (create one with `prewarm init`)")
    data = _expand_env(data, "", source, env)
    data = _env_overrides(data, env)
    if db_url:
        data["store"] = {**(data.get("store") or {}), "url": db_url}
    _remember_url_passwords(data)
    data["config_file"] = str(file) if file.exists() else None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    _validate_plugins(settings, source, env)
    return settings


def _validate_plugins(settings: Settings, source: str, env: dict[str, str] | None = None) -> None:
    """Each endpoint's provider table is validated by that provider's own schema, and each
    per-endpoint override by the section it overrides. The value of an environment variable a
    provider reads its token from (`api_token_env`, default or given) is masked from now on."""
    from .forecasters import registry as forecasters
    from .providers import registry

    def check_model(model: str, where: str) -> None:
        # By name only, from the entry points: the forecaster's module (statsforecast) is
        # imported when it forecasts, not when the config loads.
        if model not in forecasters.names():
            raise ConfigError(f"{source}: {where}: unknown forecaster {model!r} "
                              f"(installed: {', '.join(forecasters.names()) or 'none'})")

    check_model(settings.forecast.model, "forecast.model")
    for i, ep in enumerate(settings.endpoints):
        where = f"endpoints[{i}] ({ep.name})"
        try:
            provider = registry.validate_config(ep.provider["kind"], ep.provider)
        except registry.UnknownProvider as exc:
            raise ConfigError(f"{source}: {where}.provider.kind: {exc}") from None
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source, prefix=f"{where}.provider")) from None
        for key, name in provider.model_dump().items():
            if key.endswith("_env") and isinstance(name, str) and name in (env or {}):
                redact.remember(env[name])
        settings.planner_for(ep)
        if "model" in ep.forecast:
            check_model(settings.forecast_for(ep).model, f"{where}.forecast.model")
        else:
            settings.forecast_for(ep)
        _validate_source(settings, ep, where, source)


def _validate_source(settings: Settings, ep: EndpointSettings, where: str, source: str) -> None:
    from .sources import registry as sources

    table = settings.source_for(ep)
    if table is None:
        return
    if ep.history is not None:
        raise ConfigError(f"{source}: {where}: give either [endpoints.history] (your own table) or "
                          "[endpoints.source] (a metrics source prewarm syncs into the store), not both")
    # Keys the endpoint takes from the top-level [source] are named as the endpoint's.
    inherited = "\n  (the endpoint's [endpoints.source] is overlaid on [source])" if settings.source else ""
    try:
        sources.validate_config(table)
    except sources.UnknownSource as exc:
        raise ConfigError(f"{source}: {where}.source.kind: {exc}{inherited}") from None
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, prefix=f"{where}.source") + inherited) from None
