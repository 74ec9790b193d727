"""Break-even advisor: the cheapest of persistent, hybrid and on-demand at the target."""
from __future__ import annotations

import json

import pytest

from prewarm.backtest.advisor import Prices, advise_from_points
from prewarm.backtest.frontier import Point

from .test_backtest import ALIBABA, cli

WEEK_H = 168.0
POINTS = [
    Point(0, 30, 0.40, 20.0), Point(0, 3600, 0.03, 150.0), Point(0, 14400, 0.015, 230.0),
    Point(1, 30, 0.05, 170.0), Point(1, 3600, 0.012, 240.0), Point(2, 30, 0.004, 336.5),
]


def test_advice_follows_prices_and_target():
    same = advise_from_points(POINTS, WEEK_H, Prices(1.0, 1.0), 0.02)
    assert same.best.kind == "on-demand" and (same.best.floor, same.best.keepalive_s) == (0, 14400)
    assert same.options["hybrid"].cost == pytest.approx(240.0)
    assert same.options["persistent"].cold_rate == 0.004
    # Serverless seconds at 3x a reserved worker: the always-on floor pays for itself.
    dear = advise_from_points(POINTS, WEEK_H, Prices(on_demand_per_hour=3.0, persistent_per_hour=1.0), 0.02)
    assert dear.best.kind == "persistent"
    assert dear.options["hybrid"].cost == pytest.approx(168.0 + 72.0 * 3.0)
    assert dear.options["on-demand"].cost == pytest.approx(690.0)
    # A stricter target leaves only the persistent pool; an impossible one, none.
    assert advise_from_points(POINTS, WEEK_H, Prices(), 0.005).best.kind == "persistent"
    none = advise_from_points(POINTS, WEEK_H, Prices(), 0.001)
    assert none.best is None and set(none.as_dict()["options"].values()) == {None}
    with pytest.raises(ValueError):
        advise_from_points(POINTS, WEEK_H, Prices(), 0.0)


def test_cli_advise_json():
    r = cli("backtest", str(ALIBABA / "requests.csv"), "--endpoint", "M0004", "--from", "2024-11-28T00:00:00Z",
            "--to", "2024-11-30T00:00:00Z", "--advise", "--json", "--price", "2", "--persistent-price", "1",
            "--cold-start", "30s")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    advice = data["advice"]["M0004"]
    assert data["prices"] == {"on_demand_per_hour": 2.0, "persistent_per_hour": 1.0}
    assert advice["advice"] in ("persistent", "hybrid", "on-demand")
    met = {k: o for k, o in advice["options"].items() if o}
    assert met and advice["options"][advice["advice"]]["cost"] == min(o["cost"] for o in met.values())
    assert all(o["cold_rate"] <= 0.02 for o in met.values())


# -- the best static setting of the trailing week, online -------------------------------------
def _week_cfg():
    from prewarm.backtest.runner import BacktestConfig
    from prewarm.backtest.simulator import ColdStart, WorkerModel

    return BacktestConfig(start_s=0.0, end_s=1.0, worker=WorkerModel(1, 60.0), cold_start=ColdStart(fixed_s=30.0),
                          service_time_s=20.0)


def _traffic(days: int, seed: int = 2):
    """A daily cycle: busy afternoons (a request a minute), sparse nights."""
    import numpy as np

    from prewarm.backtest.traces import Trace

    rng = np.random.default_rng(seed)
    minutes = np.arange(days * 1440)
    rate = np.where((minutes % 1440) // 60 >= 12, 1.0, 0.02)
    counts = rng.poisson(rate)
    arrivals = np.sort(np.repeat(minutes * 60.0, counts) + rng.random(int(counts.sum())) * 60)
    return Trace("e", arrivals, None)


def test_trailing_static_is_the_cheapest_setting_meeting_the_target_on_the_past_only():
    # The bisection over keep-alives (and the floors' early stop) finds what the full sweep of
    # every (F, K) finds, on the trailing week only: traffic after `now` changes nothing.
    from dataclasses import replace

    import numpy as np

    from prewarm.backtest import frontier as fr
    from prewarm.backtest.advisor import trailing_static
    from prewarm.backtest.traces import Trace

    trace, cfg = _traffic(9), _week_cfg()
    now = 8 * 86400.0
    got = trailing_static(trace, now, cfg, 0.02, ingest_delay_s=60.0)
    week = replace(cfg, start_s=now - 60 - 7 * 86400, end_s=now - 60, warmup_s=0.0)
    points = fr.sweep(trace.between(week.start_s, week.end_s), week, max_floor=4)
    best = min((p for p in points if p.cold_rate <= 0.02), key=lambda p: p.worker_hours)
    assert (got.floor, got.keepalive_s or 60.0) == (best.floor, best.keepalive_s)
    assert got.cold_rate <= 0.02 and got.worker_hours == pytest.approx(best.worker_hours)
    # Rows after now (minus the ingest delay) removed, or a flood added there: the same answer.
    cut = trace.between(-np.inf, now - 60)
    flood = Trace("e", np.sort(np.concatenate([cut.arrivals, now + np.arange(5000) * 3.0])), None)
    assert trailing_static(cut, now, cfg, 0.02) == got == trailing_static(flood, now, cfg, 0.02)
    # Under a day of history: no judgement.
    assert trailing_static(trace, 0.5 * 86400, cfg, 0.02) is None


def test_the_guard_keeps_the_plan_at_or_above_the_static_setting_and_auto_lifts_it_when_the_plan_held():
    # "always": every command at least the static floor, every idle timeout at least its
    # keep-alive. "auto": the plan alone is replayed on the trailing week and runs alone where
    # it held there (here: a regular daily cycle it forecasts well).
    from dataclasses import replace

    from prewarm.backtest.predictive import PredictiveSettings
    from prewarm.backtest.runner import run

    trace = _traffic(10)
    # at the policy's own smoothing (no choice of it: the next test), so the guard only adds
    cfg = replace(_week_cfg(), start_s=8 * 86400.0, end_s=9 * 86400.0,
                  predictive=PredictiveSettings(guard="always", history_s=7 * 86400.0, smoothing_choices_s=()))
    always = run(trace, "predictive", cfg)
    # (day 7: just under a week of history, so judged again a season later, at day 8)
    assert [t for t, _ in always.guards] == [7 * 86400.0, 8 * 86400.0]
    for k, (t, static) in enumerate(always.guards):
        assert static is not None and static.cold_rate <= 0.02
        until = always.guards[k + 1][0] if k + 1 < len(always.guards) else float("inf")
        mine = [c for c in always.schedule if t <= c.t < until]
        assert all(c.warm_workers >= static.floor for c in mine)
        if static.keepalive_s is not None:
            assert all(c.idle_timeout_s >= static.keepalive_s for c in mine)
    off = run(trace, "predictive", replace(cfg, predictive=replace(cfg.predictive, guard="off")))
    assert off.guards == [] and always.worker_hours >= off.worker_hours
    auto = run(trace, "predictive", replace(cfg, predictive=replace(cfg.predictive, guard="auto")))
    assert [t for t, _ in auto.guards] == [t for t, _ in always.guards]
    assert all(a is None or a == b for (_, a), (_, b) in zip(auto.guards, always.guards))


def test_each_judgement_plans_with_the_smoothing_whose_plan_alone_did_best_on_the_trailing_week():
    # [planner] smoothing_choices: every judgement replays the plan alone on the trailing week
    # at each smoothing; the policy plans with the one that did best there until the next
    # judgement (the tuner's knobs kept). Its choice uses the history before the judgement only.
    from dataclasses import replace

    import numpy as np

    from prewarm.backtest import advisor
    from prewarm.backtest.executable import FULL
    from prewarm.backtest.frontier import KEEPALIVES_S
    from prewarm.backtest.predictive import PredictiveSettings
    from prewarm.backtest.runner import capacity_for, choose_smoothing, predictive_policy, run

    choices = (0.0, 10800.0)
    trace = _traffic(10)
    # judged daily on the last three days (a week is the daemon's: the same code, more replay)
    cfg = replace(_week_cfg(), start_s=8 * 86400.0, end_s=9 * 86400.0,
                  predictive=PredictiveSettings(guard="auto", history_s=7 * 86400.0, smoothing_choices_s=choices,
                                                guard_window_s=3 * 86400.0, guard_every_s=86400.0))
    r = run(trace, "predictive", cfg)
    assert [t for t, _ in r.smoothings] == [t for t, _ in r.guards] == [7 * 86400.0, 8 * 86400.0]
    own = predictive_policy(capacity_for(trace, cfg), cfg)
    for t, chosen in r.smoothings[-1:]:
        # the same choice from the plan alone replayed on the week before t at each smoothing
        sweep = advisor.TrailingSweep(trace, t, replace(cfg, provider=FULL), ingest_delay_s=cfg.ingest_delay_s,
                                      window_s=3 * 86400.0, keepalives=KEEPALIVES_S)
        week = replace(cfg, start_s=sweep.start, end_s=sweep.end, predictive=replace(cfg.predictive, guard="off"))
        past = trace.between(-np.inf, sweep.end)
        tried = {v: run(past, "predictive", replace(week, policy=replace(own, smoothing_s=v))) for v in choices}
        assert chosen == choose_smoothing(tried, sweep, 0.02, own.smoothing_s)
    # the tuner's policies after the last judgement carry its smoothing
    last_t, last = r.smoothings[-1]
    assert last != own.smoothing_s  # (here 3 h won: the policy's own 2 h is not among the choices)
    after = [p for t, p in r.tunings if t > last_t]
    assert after and all(p.smoothing_s == last for p in after)
    # traffic after the second judgement changes neither choice
    cut = run(trace.between(-np.inf, 8 * 86400.0 - 60), "predictive", cfg)
    assert cut.smoothings == r.smoothings
    # without choices the policy keeps its own smoothing and nothing is recorded
    fixed = run(trace, "predictive", replace(cfg, predictive=replace(cfg.predictive, smoothing_choices_s=())))
    assert fixed.smoothings == [] and all(p.smoothing_s == own.smoothing_s for _, p in fixed.tunings)


def test_choose_smoothing_prefers_what_held_then_fewest_hours_against_static():
    from types import SimpleNamespace

    from prewarm.backtest.runner import choose_smoothing

    def result(cold, hours, n=1000):
        return SimpleNamespace(requests=n, cold_requests=int(round(cold * n)), cold_rate=cold, worker_hours=hours)

    # the cheapest static setting at each cold rate: 100 worker-hours at <= 1%, 50 above
    static = {0.01: 100.0, 0.02: 50.0, 1.0: 50.0}

    class Sweep:
        def cheapest(self, cold, *_a, **_k):
            ok = [c for c in static if c <= cold + 1e-12]
            return SimpleNamespace(worker_hours=static[max(ok)]) if ok else None

    sweep = Sweep()
    # 7200: 80 wh at 1% (0.80 of static); 3600: 45 wh at 2% (0.90); 0: cheapest but 6% cold (not held)
    tried = {0.0: result(0.06, 10.0), 3600.0: result(0.02, 45.0), 7200.0: result(0.01, 80.0)}
    assert choose_smoothing(tried, sweep, 0.02, 3600.0) == 7200.0
    # a tie goes to the policy's own
    tried[3600.0] = result(0.02, 40.0)  # 0.80 too
    assert choose_smoothing(tried, sweep, 0.02, 3600.0) == 3600.0
    assert choose_smoothing(tried, sweep, 0.02, 7200.0) == 7200.0
    # none held: the best of all by the same measure; below every static cold rate counts 0
    worse = {0.0: result(0.08, 10.0), 3600.0: result(0.10, 45.0)}
    assert choose_smoothing(worse, sweep, 0.02, 3600.0) == 0.0
    assert choose_smoothing({1.0: result(0.0, 500.0), 2.0: result(0.01, 60.0)}, sweep, 0.02, 2.0) == 1.0


def test_plan_verdict_names_the_test_the_plan_alone_failed():
    from types import SimpleNamespace

    from prewarm.backtest.judgement import ABOVE_TARGET, COSTLIER, HELD
    from prewarm.backtest.runner import plan_held, plan_verdict

    def result(cold, hours, n=1000):
        return SimpleNamespace(requests=n, cold_requests=int(round(cold * n)), cold_rate=cold, worker_hours=hours)

    class Sweep:  # the cheapest static setting: 100 worker-hours at <= 1% cold, 50 at <= 3%
        def cheapest(self, cold, *_a, **_k):
            return SimpleNamespace(worker_hours=100.0 if cold < 0.03 else 50.0) if cold >= 0.01 else None

    cases = [(result(0.01, 80.0), HELD), (result(0.005, 500.0), HELD),  # no static setting that low
             (result(0.06, 10.0), ABOVE_TARGET),  # z = (0.06 - 0.02) / 0.0044 = 9
             (result(0.024, 10.0), HELD),  # z = 0.9: not significantly above
             (result(0.021, 120.0), COSTLIER), (result(0.0, 0.0, n=0), HELD)]
    for r, verdict in cases:
        assert plan_verdict(r, Sweep(), 0.02) == verdict
        assert plan_held(r, Sweep(), 0.02) == (verdict == HELD)


def _bursts(size: int, per_day: int, days: int = 4):
    """`size` simultaneous requests (half a second apart) at random times, `per_day` a day."""
    import numpy as np

    from prewarm.backtest.traces import Trace

    starts = np.sort(np.random.default_rng(1).random(days * per_day) * days * 86400.0)
    return Trace("b", np.sort(np.concatenate([starts + 0.5 * k for k in range(size)])), None)


@pytest.mark.parametrize("shape, verdict", [("daily", "held"), ("bursts of 3", "costlier than static"),
                                            ("bursts of 5", "above the target")])
def test_the_evidence_is_what_the_judgement_decided_on_and_reads_as_one_line(shape, verdict):
    # Each judgement carries its evidence: the verdict (held, or the test the plan alone
    # failed), the best static setting at the target and the plan alone's replay of the week,
    # the same numbers recomputed here; and a line for the operator that names them.
    from dataclasses import replace

    import numpy as np

    from prewarm.backtest import advisor
    from prewarm.backtest.executable import FULL
    from prewarm.backtest.frontier import KEEPALIVES_S
    from prewarm.backtest.judgement import ALWAYS, HELD, VERDICTS, YOUNG, Evidence
    from prewarm.backtest.predictive import PredictiveSettings
    from prewarm.backtest.runner import plan_verdict, run, static_guard

    trace = {"daily": lambda: _traffic(5), "bursts of 3": lambda: _bursts(3, 48),
             "bursts of 5": lambda: _bursts(5, 12)}[shape]()
    cfg = replace(_week_cfg(), predictive=PredictiveSettings(guard="auto", history_s=3 * 86400.0,
                                                             smoothing_choices_s=(), guard_window_s=3 * 86400.0))
    now = 4 * 86400.0
    judged = static_guard(trace, cfg)(now, None)
    ev = judged.evidence
    sweep = advisor.TrailingSweep(trace, now, replace(cfg, provider=FULL), ingest_delay_s=cfg.ingest_delay_s,
                                  window_s=3 * 86400.0, keepalives=KEEPALIVES_S)
    week = replace(cfg, start_s=sweep.start, end_s=sweep.end, predictive=replace(cfg.predictive, guard="off"))
    alone = run(trace.between(-np.inf, sweep.end), "predictive", week)
    assert ev.verdict == verdict == plan_verdict(alone, sweep, 0.02) and ev.target == 0.02
    assert (judged.static is None) == (verdict == HELD)
    assert (ev.alone_requests, ev.alone_cold) == (alone.requests, alone.cold_requests)
    assert ev.alone_worker_hours == pytest.approx(alone.worker_hours) and ev.span_s == pytest.approx(sweep.span_s)
    best = sweep.setting(sweep.cheapest(0.02))
    assert ev.best == best and (judged.static is None or judged.static == best)
    static = sweep.cheapest(alone.cold_rate)
    assert ev.static_hours_at_alone == (static.worker_hours if static is not None else None)
    line = ev.text()
    assert f"{alone.cold_requests} of {alone.requests} requests" in line and f"floor {best.floor}" in line
    assert line.startswith("the plan alone held" if verdict == HELD else "guarded")
    assert (verdict == "above the target") == ("above the 2% target" in line)
    assert Evidence.from_dict(ev.as_dict()) == ev  # as stored
    # "always": the best static setting, the plan alone not replayed (no smoothing choices)
    always = static_guard(trace, replace(cfg, predictive=replace(cfg.predictive, guard="always")))(now, None)
    assert always.evidence == Evidence(ALWAYS, 0.02, ev.span_s, best) and always.static == best
    assert "always" in always.evidence.text()
    # under a season of history: the plan alone, and it says so
    young = static_guard(trace, cfg)(0.5 * 86400.0, None)
    assert young.static is None and young.evidence.verdict == YOUNG and "too little history" in young.evidence.text()
    # as stored by a later version, with a key this one does not know: read, the key left out
    assert Evidence.from_dict({**ev.as_dict(), "new": 1, "best": {**ev.as_dict()["best"], "new": 2}}) == ev
    with pytest.raises(ValueError, match="unknown verdict"):
        Evidence("fine", 0.02)
    assert len(set(VERDICTS)) == 6


def test_a_count_only_provider_replays_the_platform_idle_timeout():
    # aws-lambda cannot set the idle timeout: every command reaches the simulator with None
    # (the platform's 60 s); modal caps it at an hour; the policy is the count-only one.
    from dataclasses import replace

    from prewarm.backtest.baselines import Cmd
    from prewarm.backtest.executable import provider_capabilities
    from prewarm.backtest.runner import capacity_for, predictive_policy, run
    from prewarm.errors import InputError

    lam, modal = provider_capabilities("aws-lambda"), provider_capabilities("modal")
    assert lam.count_only and not modal.count_only and modal.idle_timeout_max_s == 3600
    assert lam.command(Cmd(0.0, 2, 7200.0)) == Cmd(0.0, 2, None)
    assert modal.command(Cmd(0.0, 2, 7200.0)).idle_timeout_s == 3600
    assert lam.keepalives((30, 600, 3600), 60.0) == (60.0,)
    with pytest.raises(InputError, match="unknown provider"):
        provider_capabilities("nope")
    trace = _traffic(3)
    cfg = replace(_week_cfg(), start_s=2 * 86400.0, end_s=2.5 * 86400.0, provider=lam)
    assert predictive_policy(capacity_for(trace, cfg), cfg).idle_timeout_rule == "fixed"
    r = run(trace, "predictive", cfg)
    assert r.schedule and all(c.idle_timeout_s is None for c in r.schedule)
    # A young endpoint (under a week of history) is judged every season, not weekly: at the
    # replay's start (day 1: under a day of history, no judgement) and again at day 2.
    assert [t for t, _ in r.guards] == [86400.0, 2 * 86400.0] and r.guards[0][1] is None
    full = run(trace, "predictive", replace(cfg, provider=provider_capabilities("dry-run")))
    assert any(c.idle_timeout_s is not None for c in full.schedule)


def test_cli_provider_kind_is_count_only_and_says_so():
    r = cli("backtest", str(ALIBABA / "requests.csv"), "--endpoint", "M0004", "--from", "2024-11-29T00:00:00Z",
            "--to", "2024-11-29T12:00:00Z", "--provider-kind", "aws-lambda", "--json", "--static-guard", "off")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["provider"] == {"kind": "aws-lambda", "idle_timeout": False, "idle_timeout_max_s": None}
    bad = cli("backtest", str(ALIBABA / "requests.csv"), "--provider-kind", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_the_lift_is_the_least_floor_then_keepalive_under_the_plan_that_held(monkeypatch):
    # runner.cheapest_lift bisects the floor at the best static setting's keep-alive K*, then the
    # keep-alive at that floor, replaying the plan under each (F, K); it keeps the lift only if
    # the plan under it held as the plan alone must (at most the target, no cheaper static
    # setting at its cold rate), else the best static setting itself. Replays stand in here as a
    # table of what the plan under (F, K) had on the week, so every branch is pinned exactly.
    from prewarm.backtest import runner
    from prewarm.backtest.frontier import Point
    from prewarm.backtest.replay import Result

    class Sweep:
        keepalives = (30.0, 300.0, 1800.0, 3600.0, 7200.0)
        platform = 60.0

        def __init__(self, static_hours):
            self.static_hours = static_hours

        def cheapest(self, cold_rate, *a, **k):
            return Point(3, 3600.0, cold_rate, self.static_hours)

        def setting(self, p):
            from prewarm.planner.model import StaticSetting
            keep = None if p.keepalive_s <= self.platform else p.keepalive_s
            return StaticSetting(p.floor, keep, p.cold_rate, p.worker_hours)

    def table(floor, keep):  # cold starts fall with F and K; hours rise with both
        cold = 0.05 if floor == 0 else (0.03 if keep < 1800 else 0.015) if floor == 1 else 0.005
        return cold, 100.0 + 40 * floor + keep / 600

    tried = []

    def fake_replay(past, spec, cfg, progress, guard):
        st = guard(0.0, None).static
        tried.append((st.floor, st.keepalive_s))
        cold, hours = table(st.floor, st.keepalive_s or 60.0)
        return Result(endpoint="e", policy=spec, requests=10_000, cold_requests=round(cold * 10_000),
                      worker_hours=hours, idle_worker_hours=0.0, cost=hours, latency_p50_s=0.0,
                      latency_p99_s=0.0, commands=0, worker_starts=0)

    monkeypatch.setattr(runner, "replay", fake_replay)
    best = Point(3, 3600.0, 0.01, 400.0)
    # F = 1 meets 2% from K = 1800 s: the lift is (1, 1800 s), cheaper than a static setting
    # with its cold rate (400 worker-hours).
    lift = runner.cheapest_lift(None, None, Sweep(400.0), best, 0.02)
    assert (lift.floor, lift.keepalive_s) == (1, 1800.0) and lift.cold_rate == pytest.approx(0.015)
    assert (3, 3600.0) not in tried  # the best static setting itself is not replayed
    assert len(tried) <= 5  # bisections: 2 floors + 2-3 keep-alives at most
    # The same lift costs more than a static setting at its cold rate: the best static setting.
    tried.clear()
    assert runner.cheapest_lift(None, None, Sweep(120.0), best, 0.02) == Sweep(0).setting(best)
