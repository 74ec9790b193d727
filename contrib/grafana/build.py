"""Builds contrib/grafana/prewarm.json, the prewarm Grafana dashboard, with Grafana's
foundation SDK (grafana-foundation-sdk, a test extra):

    python contrib/grafana/build.py > contrib/grafana/prewarm.json

tests/daemon/test_dashboard.py fails when the file differs from what this prints, and runs
every query below against a real Prometheus scraping a real daemon. Variables: `datasource`
(any Prometheus data source) and `endpoint` (label_values of the planned-workers gauge).
"""
from __future__ import annotations

import json
import sys

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, SortOrder, TooltipDisplayMode
from grafana_foundation_sdk.models.dashboard import (DataSourceRef, DynamicConfigValue, VariableRefresh,
                                                     VariableSort)

UID = "prewarm-endpoint"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
EP = 'endpoint="$endpoint"'


def q(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DS)


def series(title: str, description: str, queries: list[prometheus.Dataquery], *, unit: str = "short",
           width: int = 12, height: int = 8, decimals: int | None = None) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DS).unit(unit)
             .span(width).height(height).line_width(1).fill_opacity(0)
             .legend(common.VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST)
                     .placement(LegendPlacement.BOTTOM))
             .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)))
    if decimals is not None:
        panel = panel.decimals(decimals)
    for ref, query in zip("ABCDEFGH", queries):
        panel = panel.with_target(query.ref_id(ref))
    return panel


def single(title: str, description: str, query: prometheus.Dataquery, unit: str) -> stat.Panel:
    return (stat.Panel().title(title).description(description).datasource(DS).unit(unit)
            .span(6).height(4).with_target(query.ref_id("A")))


def build() -> dashboard.Dashboard:
    forecast = (series(
        "Forecast band vs actual requests",
        "The forecast for the next step (mean and the 80% band) against the largest per-minute "
        "count of the last five ingested minutes: what the planner saw.",
        [q(f'prewarm_forecast_requests_per_minute{{{EP}, band="lo-80"}}', "forecast lo-80"),
         q(f'prewarm_forecast_requests_per_minute{{{EP}, band="hi-80"}}', "forecast hi-80"),
         q(f'prewarm_forecast_requests_per_minute{{{EP}, band="mean"}}', "forecast mean"),
         q(f'prewarm_observed_requests_per_minute{{{EP}}}', "actual (max of the last 5 min)")],
        unit="reqpm", width=24)
        .override_by_name("forecast hi-80", [DynamicConfigValue("custom.fillBelowTo", "forecast lo-80"),
                                             DynamicConfigValue("custom.fillOpacity", 25),
                                             DynamicConfigValue("custom.lineWidth", 0)])
        .override_by_name("forecast lo-80", [DynamicConfigValue("custom.lineWidth", 0)])
        .override_by_name("actual (max of the last 5 min)", [DynamicConfigValue("custom.lineWidth", 2)]))
    workers = series(
        "Warm target vs provider",
        "Planned: what the plan wants now (hold included). Desired: the target the provider holds. "
        "Ready: warm workers the provider reports ready.",
        [q(f'prewarm_planned_warm_workers{{{EP}}}', "planned"),
         q(f'prewarm_provider_desired_workers{{{EP}}}', "provider desired"),
         q(f'prewarm_actual_warm_workers{{{EP}}}', "provider ready")], decimals=0)
    cold = (series(
        "Cold-start rate vs target",
        "Share of requests over 2 s (rolling hour, from ingested counts) against the configured "
        "target_cold_rate; the alert PrewarmColdStartRateAboveTarget fires above 1.5x the target.",
        [q(f'prewarm_observed_cold_start_rate{{{EP}}}', "observed"),
         q(f'prewarm_target_cold_start_rate{{{EP}}}', "target"),
         q(f'1.5 * prewarm_target_cold_start_rate{{{EP}}}', "alert above")], unit="percentunit")
        .override_by_name("alert above", [DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})]))
    ages = series(
        "Forecast and plan age",
        "Age of the forecast the last plan was made from, and of the plan in force. A forecast "
        "older than two refresh intervals while plans stay fresh: refreshes are failing.",
        [q(f'prewarm_forecast_age_seconds{{{EP}}}', "forecast"),
         q(f'prewarm_plan_age_seconds{{{EP}}}', "plan")], unit="s")
    accuracy = series(
        "Forecast accuracy",
        "Scores of the last scored forecast: coverage of the 80% and 95% bands (should be near 0.8 "
        "and 0.95) and MASE (below 1: better than last day's same minute).",
        [q(f'prewarm_forecast_accuracy{{{EP}, score=~"coverage_80|coverage_95"}}', "{{score}}"),
         q(f'prewarm_forecast_accuracy{{{EP}, score="mase"}}', "mase")])
    lag = series(
        "Source lag and errors",
        "How far the endpoint's history source is behind (seconds), and its read errors by source.",
        [q(f'prewarm_source_lag_seconds{{{EP}}}', "lag"),
         q(f'sum by (source) (increase(prewarm_source_errors_total{{{EP}}}[$__rate_interval]))',
           "errors {{source}}")], unit="s")
    guard = series(
        "Static guard",
        "1 while the plan is held at or above last week's best static setting (the static guard's "
        "judgement found the plan alone worse on that week), 0 while it runs alone; and the "
        "always-on floor held. Why: prewarm explain $endpoint.",
        [q(f'prewarm_static_guard_guarded{{{EP}}}', "guarded"),
         q(f'prewarm_static_guard_floor_workers{{{EP}}}', "floor held")], decimals=0)
    actions = series(
        "Provider actions (all endpoints)",
        "Provider calls that apply a target, by result. `unchanged`: the provider already held it.",
        [q('sum by (provider, result) (increase(prewarm_actions_total[$__rate_interval]))',
           "{{provider}} {{result}}")], decimals=0)
    failures = series(
        "Failures by stage",
        "prewarm_errors_total for the endpoint, by stage (store, history, forecast, plan, provider, "
        "apply, accuracy). Every fault fails warm: capacity is never lowered by one.",
        [q(f'sum by (stage) (increase(prewarm_errors_total{{{EP}}}[$__rate_interval]))', "{{stage}}")],
        decimals=0)
    latency = series(
        "Provider latency p90",
        "90th percentile of provider call latency, by verb (read, apply).",
        [q('histogram_quantile(0.9, sum by (le, verb) (rate(prewarm_provider_latency_seconds_bucket'
           '[$__rate_interval])))', "{{verb}}")], unit="s")
    cycle = series(
        "Cycle duration p90 and refreshes in flight",
        "A forecast+plan cycle's duration, and endpoints handed to refresh processes not yet taken up.",
        [q('histogram_quantile(0.9, sum by (le) (rate(prewarm_cycle_duration_seconds_bucket[$__rate_interval])))',
           "cycle p90 (s)"),
         q('sum(prewarm_refresh_in_flight)', "refreshes in flight")])

    return (dashboard.Dashboard("prewarm").uid(UID).tags(["prewarm"]).refresh("1m").time("now-6h", "now")
            .timezone("browser")
            .description("prewarm: forecast, plan and provider state per endpoint, and the daemon's health.")
            .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
            .with_variable(dashboard.QueryVariable("endpoint").label("Endpoint").datasource(DS)
                           .query("label_values(prewarm_planned_warm_workers, endpoint)")
                           .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))
            .with_row(dashboard.Row("Daemon"))
            .with_panel(single("Leader", "1 when a daemon leads (max over the daemons scraped).",
                               q("max(prewarm_leader)", "leader"), "none"))
            .with_panel(single("Since the last successful cycle",
                               "Time since a cycle planned every endpoint (alert: PrewarmCyclesFailing).",
                               q("time() - max(prewarm_last_successful_cycle_timestamp_seconds)", "age"), "s"))
            .with_panel(single("Warm target now", "Warm workers the plan wants now for $endpoint.",
                               q(f'prewarm_planned_warm_workers{{{EP}}}', "planned"), "none"))
            .with_panel(single("Cold-start rate (rolling hour)", "Share of $endpoint's requests that waited over 2 s.",
                               q(f'prewarm_observed_cold_start_rate{{{EP}}}', "cold"), "percentunit"))
            .with_row(dashboard.Row("$endpoint"))
            .with_panel(forecast).with_panel(workers).with_panel(cold)
            .with_panel(ages).with_panel(accuracy)
            .with_panel(lag).with_panel(failures)
            .with_panel(guard)
            .with_row(dashboard.Row("Provider and cycles"))
            .with_panel(actions).with_panel(latency).with_panel(cycle))


def render() -> str:
    board = build().build()
    for number, panel in enumerate(board.panels, start=1):  # Grafana wants unique panel ids
        panel.id_val = number
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
