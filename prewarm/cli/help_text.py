"""One-line help per command, shown by `prewarm --help` without importing the commands."""
SHORT_HELP = {
    "init": "Write a commented starter config and create the embedded database.",
    "db": "Database schema: upgrade, current revision.",
    "ingest": "Load request counts from a CSV (ts,endpoint,requests[,cold_starts,p50_ms,p99_ms]).",
    "forecast": "Show the demand forecast for an endpoint (changes nothing).",
    "plan": "Show the capacity plan for one or all endpoints (changes nothing).",
    "once": "Run one cycle: read history, forecast, plan, apply what is due; then exit (cron).",
    "run": "Run the daemon, with Prometheus metrics and /healthz.",
    "demo": "Run the embedded default end to end: generated traffic, SQLite, real local workers.",
    "providers": "List installed providers, their config keys and capabilities.",
    "sources": "List installed metrics sources and their config keys.",
    "sync": "Read new minutes from each endpoint's metrics source into the store, once (cron).",
    "status": "Per endpoint: the target now, the next change, the provider's state.",
    "explain": "Why an endpoint's target is what it is (forecast, quantile, lead, floor, caps, traffic).",
    "hold": "Hold at least N warm workers on an endpoint, applied at once, for a while (--for).",
    "release": "Remove an endpoint's hold.",
    "backtest": "Replay a trace against a policy; cold starts, worker-hours, static frontier.",
}
