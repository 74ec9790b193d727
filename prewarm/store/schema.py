"""Tables, as SQLAlchemy Core. The Alembic migrations in prewarm.migrations create exactly
these; a test compares the two on every database.

Times are stored as naive UTC (MariaDB's DATETIME has no zone) with microseconds, and come
back as aware UTC through UTCDateTime.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator):
    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; pass aware UTC")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


# MariaDB needs a length on VARCHAR; 128 keeps composite indexes under its key-size limit.
# Names are case-sensitive on every store: MySQL/MariaDB compare VARCHARs case-insensitively
# by default (utf8mb4_general_ci merged `CHAT` into `chat`), so name columns are binary there.
NAME_LENGTH = 128
Name = sa.String(NAME_LENGTH).with_variant(
    mysql.VARCHAR(NAME_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")
JSONText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

endpoints = sa.Table(
    "endpoints", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", Name, nullable=False, unique=True),
    sa.Column("provider_kind", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

request_counts = sa.Table(
    "request_counts", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ts", UTCDateTime, primary_key=True),  # start of the bucket
    sa.Column("bucket_s", sa.Integer, nullable=False, server_default="60"),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("cold_starts", sa.Integer, nullable=True),
    sa.Column("p50_ms", sa.Float, nullable=True),
    sa.Column("p99_ms", sa.Float, nullable=True),
)

forecasts = sa.Table(
    "forecasts", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("ds", UTCDateTime, nullable=False),
    sa.Column("step_s", sa.Integer, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("mean", sa.Float, nullable=False),  # requests per minute
    sa.Column("lo_80", sa.Float), sa.Column("hi_80", sa.Float),
    sa.Column("lo_95", sa.Float), sa.Column("hi_95", sa.Float),
    sa.Column("extra", JSONText, nullable=True),  # other bands as JSON
    sa.Index("ix_forecasts_endpoint_issued", "endpoint_id", "issued_at"),
)

CURRENT_ENDPOINT = "CASE WHEN current THEN endpoint_id END"

plans = sa.Table(
    "plans", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("horizon_end", UTCDateTime, nullable=False),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("current", sa.Boolean, nullable=False, server_default=sa.false()),
    # The need at issue time before hysteresis; fed back to the next plans so a drop in
    # demand waits out the scale-in delay across cycles, not only within one plan.
    sa.Column("need_now", sa.Integer, nullable=True),
    # The last cycle that planned the same commands again: a re-plan that changes nothing
    # is not written as a new plan, only confirmed here (the plan's age for fail warm).
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    # The endpoint id while the plan is current, else NULL: its unique index lets the database
    # enforce one current plan per endpoint on all three stores (NULLs do not collide; MariaDB
    # has no partial indexes, hence a generated column rather than a WHERE on the index).
    sa.Column("current_endpoint", sa.Integer, sa.Computed(CURRENT_ENDPOINT, persisted=True)),
    sa.Index("ix_plans_endpoint_current", "endpoint_id", "current"),
    sa.Index("uq_plans_current_endpoint", "current_endpoint", unique=True),
    sa.Index("ix_plans_endpoint_issued", "endpoint_id", "issued_at"),
)

plan_needs = sa.Table(
    # The need at each cycle before hysteresis (one row per endpoint per cycle), fed back to
    # the next plans so a drop in demand waits out the scale-in delay across cycles. Kept
    # apart from plans because a cycle whose plan is unchanged writes no plan.
    "plan_needs", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("at", UTCDateTime, primary_key=True),
    sa.Column("need", sa.Integer, nullable=False),
)

plan_commands = sa.Table(
    "plan_commands", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),  # from this time on
    sa.Column("warm_workers", sa.Integer, nullable=False),
    sa.Column("idle_timeout_s", sa.Float, nullable=True),
    sa.Column("reason", JSONText, nullable=False),
    # pending -> applied | failed | superseded | dropped
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("applied_at", UTCDateTime, nullable=True),
    sa.Index("ix_plan_commands_endpoint_at", "endpoint_id", "at"),
    sa.Index("ix_plan_commands_plan", "plan_id"),
)

actions = sa.Table(
    "actions", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("verb", sa.String(32), nullable=False),  # apply, hold, release, schedule
    sa.Column("requested", JSONText, nullable=False),  # what was asked
    sa.Column("reason", JSONText, nullable=True),
    sa.Column("result", sa.String(16), nullable=False),  # ok, unchanged, error, started
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("retryable", sa.Boolean, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    sa.Column("command_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    sa.Index("ix_actions_endpoint_ts", "endpoint_id", "ts"),
)

holds = sa.Table(
    "holds", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("workers", sa.Integer, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
)

model_choices = sa.Table(
    "model_choices", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("chosen_at", UTCDateTime, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("step_s", sa.Integer, nullable=False),
    sa.Column("scores", JSONText, nullable=False),
    sa.Index("ix_model_choices_endpoint_chosen", "endpoint_id", "chosen_at"),
)

forecast_accuracy = sa.Table(
    "forecast_accuracy", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("scored_at", UTCDateTime, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("steps", sa.Integer, nullable=False),
    sa.Column("mase", sa.Float, nullable=True),
    sa.Column("pinball", sa.Float, nullable=True),
    sa.Column("coverage_80", sa.Float, nullable=True),
    sa.Column("coverage_95", sa.Float, nullable=True),
    sa.UniqueConstraint("endpoint_id", "issued_at", name="uq_forecast_accuracy_endpoint_issued"),
)

tuned_policies = sa.Table(
    # Knobs the auto-tuner moved (quantile, cold-start value, floor), kept across restarts.
    "tuned_policies", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("knobs", JSONText, nullable=False),
)

readiness = sa.Table(
    # Measured times from a scale-out to ready capacity: the endpoint's real cold starts.
    "readiness", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("target", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("ready", sa.Boolean, nullable=False),  # False: gave up after `seconds`
    sa.Index("ix_readiness_endpoint_started", "endpoint_id", "started_at"),
)

leader = sa.Table(
    # Leader lease for databases without advisory locks (SQLite refuses a second daemon).
    "leader", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

source_sync = sa.Table(
    # Per endpoint fed by a metrics source (`prewarm sync`): minutes before `watermark` are
    # synced; the last attempt and its error (fail warm: plans keep running on what is stored).
    "source_sync", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("watermark", UTCDateTime, nullable=True),  # end (exclusive) of the minutes synced
    sa.Column("first_minute", UTCDateTime, nullable=True),  # earliest minute the source answered
    sa.Column("synced_at", UTCDateTime, nullable=True),  # last sync that succeeded
    sa.Column("attempted_at", UTCDateTime, nullable=False),
    sa.Column("error", sa.Text, nullable=True),  # last attempt's error, None when it succeeded
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),  # in a row
)

static_guards = sa.Table(
    # The static guard (prewarm.static_guard): last week's best static setting per endpoint,
    # judged at most weekly off the planning path; `setting` None: the plan runs alone. A failed
    # attempt keeps the last setting (fail warm) and records its error.
    "static_guards", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("mode", sa.String(16), nullable=False),  # [planner] static_guard it was judged under
    sa.Column("judged_at", UTCDateTime, nullable=True),  # last judgement that succeeded
    sa.Column("span_s", sa.Float, nullable=True),  # history it saw (under a week: judged again daily)
    sa.Column("setting", JSONText, nullable=True),  # floor, keepalive_s, cold_rate, worker_hours
    sa.Column("attempted_at", UTCDateTime, nullable=False),
    sa.Column("error", sa.Text, nullable=True),  # last attempt's error, None when it succeeded
    # [planner] smoothing_choices: the one the plan alone did best with on that week (None: none chosen)
    sa.Column("smoothing_s", sa.Float, nullable=True),
    # What it decided on (backtest.judgement.Evidence): the verdict, the best static setting at
    # the target, how the plan alone did on that week (None: judged before it was stored)
    sa.Column("evidence", JSONText, nullable=True),
)

static_guard_judgements = sa.Table(
    # Every static-guard judgement that succeeded, in time order (the last is also in
    # static_guards), so that `prewarm explain --at` and `prewarm report` show the one in force
    # at any time. Pruned with [store] retention; each endpoint's judgement in force at the cut
    # is kept.
    "static_guard_judgements", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("judged_at", UTCDateTime, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("span_s", sa.Float, nullable=True),
    sa.Column("setting", JSONText, nullable=True),  # None: the plan alone
    sa.Column("smoothing_s", sa.Float, nullable=True),
    sa.Column("evidence", JSONText, nullable=True),
    sa.Index("ix_static_guard_judgements_endpoint_judged", "endpoint_id", "judged_at"),
)

source_missing = sa.Table(
    # Minutes a source could not answer (no value), after the first it did: missing data,
    # not zero traffic. Removed when a later sync gets a value for them (late data).
    "source_missing", metadata,
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ts", UTCDateTime, primary_key=True),
)
