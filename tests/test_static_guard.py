"""The static guard in the product (prewarm.static_guard): `prewarm once` and the daemon judge
last week's best static setting off the planning path, store it, and plan no lower than it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from prewarm import config
from prewarm import static_guard as sg
from prewarm.cycle import run_once
from prewarm.ingest import ingest_file
from prewarm.metrics import Metrics
from prewarm.runtime import Runtime

START = datetime(2026, 11, 23, tzinfo=timezone.utc)
DAYS = 3
NOW = START + timedelta(days=DAYS)
# Sparse traffic (a request every 20 minutes, a minute's service, a minute's cold start, one
# request per worker): the best static setting at 2% cold holds two workers (F=2 on this seed:
# one leaves ~5% of requests cold behind a busy one), more than the forecast-driven plan alone,
# which drops to one worker 40 minutes in.
CONFIG = """
[store]
url = "{url}"
[planner]
static_guard = "{mode}"
[forecast]
model = "seasonal-naive"
history = "3d"
horizon = "2h"
[[endpoints]]
name = "sparse"
[endpoints.capacity]
concurrency = 1
service_time = "60s"
cold_start = "60s"
max_workers = 6
[endpoints.provider]
kind = "dry-run"
"""


def make_rt(tmp_path, store, mode: str) -> Runtime:
    path = tmp_path / "prewarm.toml"
    path.write_text(CONFIG.format(url=store.url, mode=mode))
    return Runtime(config.load(path, env={}), store=store, metrics=Metrics(CollectorRegistry()))


def ingest(store, tmp_path) -> None:
    counts = np.random.default_rng(1).poisson(0.05, DAYS * 1440)
    lines = ["ts,endpoint,requests"] + [
        f"{(START + timedelta(minutes=i)).strftime('%Y-%m-%dT%H:%M:%SZ')},sparse,{c}" for i, c in enumerate(counts)]
    path = tmp_path / "sparse.csv"
    path.write_text("\n".join(lines) + "\n")
    ingest_file(store, path)


@pytest.fixture
def counted(monkeypatch):
    """The real judgement, counted (and made to fail on demand)."""
    calls: list[datetime] = []
    fail: list[Exception] = []
    real = sg.judge

    def judge(rt, ep, now, previous):
        calls.append(now)
        if fail:
            raise fail[0]
        return real(rt, ep, now, previous)

    monkeypatch.setattr(sg, "judge", judge)
    return calls, fail


def status(tmp_path) -> dict:
    """`prewarm status --json`'s entry for the endpoint (the text lines checked by the caller)."""
    import json

    from click.testing import CliRunner

    from prewarm.cli.main import cli

    runner = CliRunner()
    done = runner.invoke(cli, ["--config", str(tmp_path / "prewarm.toml"), "status", "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    (entry,) = json.loads(done.output)["endpoints"]
    text = runner.invoke(cli, ["--config", str(tmp_path / "prewarm.toml"), "status"], catch_exceptions=False).output
    assert f"sparse: {entry['static_guard']['summary']}" in text
    return entry


def commands(store, name="sparse"):
    return store.current_plan(name)


def test_the_guard_sets_a_floor_the_stored_plan_holds_and_is_judged_once(tmp_path, store, counted, capsys):
    from prewarm.cli.status_cmds import _print_explanation, explanation

    calls, _ = counted
    ingest(store, tmp_path)
    rt = make_rt(tmp_path, store, "always")
    outcomes, _ = run_once(rt, NOW)
    assert outcomes["sparse"].error is None
    row = store.static_guards(["sparse"])["sparse"]
    static = sg.stored_static(row)
    assert static is not None and static.floor >= 2 and row["judged_at"] == NOW and row["error"] is None
    plan = commands(store)
    assert plan and min(c["warm_workers"] for c in plan) >= static.floor
    guarded = [c for c in plan if c["reason"]["why"].startswith("static floor")]
    assert guarded and guarded[0]["reason"]["static_judged_at"] == NOW.isoformat()
    assert guarded[0]["reason"]["static_floor"] == static.floor

    # The cycle exports it: held at the floor
    sample = rt.metrics.registry.get_sample_value
    assert sample("prewarm_static_guard_guarded", {"endpoint": "sparse"}) == 1
    assert sample("prewarm_static_guard_floor_workers", {"endpoint": "sparse"}) == static.floor
    # What it decided on is stored with it: "always" holds the best static setting at the target
    # (the plan alone replayed only to choose the smoothing)
    evidence = row["evidence"]
    assert evidence["verdict"] == "always" and evidence["target"] == 0.02 and evidence["alone_requests"] > 0
    assert sg.StaticSetting(**evidence["best"]) == static and evidence["span_s"] > 2 * 86400

    doc = explanation(store, "sparse", guarded[0]["at"] + timedelta(seconds=1))
    assert doc["static"] == {"floor": static.floor, "keepalive_s": static.keepalive_s,
                             "judged_at": NOW.isoformat()}
    assert doc["static_guard"]["evidence"] == evidence and doc["static_guard"]["judged_at"] == NOW
    _print_explanation(doc)
    out = capsys.readouterr().out
    assert f"static floor (the static guard, judged on the trailing week): {static.text()}, judged at" in out
    assert "judged at" in out
    assert f"static guard (always), judged at {NOW:%Y-%m-%d %H:%M}" in out
    assert f"the best static setting at the 2% target: floor {static.floor}" in out
    # explained at a time before the judgement: it was not in force then
    assert explanation(store, "sparse", NOW - timedelta(minutes=1))["static_guard"] is None

    # Stored: later cycles and a restarted runtime plan from it without judging again; a young
    # endpoint (under a week of history) is judged again a season later.
    run_once(rt, NOW + timedelta(hours=1))
    rt.close()
    rt = make_rt(tmp_path, store, "always")
    run_once(rt, NOW + timedelta(hours=23))
    assert calls == [NOW]
    assert min(c["warm_workers"] for c in commands(store)) >= static.floor
    run_once(rt, NOW + timedelta(days=1))
    assert calls == [NOW, NOW + timedelta(days=1)]
    rt.close()
    # evidence this version cannot read (another version's verdict): explain still answers
    later = NOW + timedelta(days=2)
    store.save_static_guard("sparse", mode="always", attempted_at=later, setting=row["setting"],
                            evidence={"verdict": "from a later version", "target": 0.02})
    summary = explanation(store, "sparse", later + timedelta(minutes=1))["static_guard"]["summary"]
    assert summary.startswith("evidence not readable here") and "from a later version" in summary
    # Every judgement is kept: explained between two, the earlier one was in force, with its evidence
    between = explanation(store, "sparse", NOW + timedelta(days=1, hours=1))["static_guard"]
    assert between["judged_at"] == NOW + timedelta(days=1) and between["summary"].startswith("guarded every week")
    assert [j["judged_at"] for j in store.static_guard_judgements("sparse", NOW, later)] == [
        NOW, NOW + timedelta(days=1), later]
    shown = status(tmp_path)["static_guard"]
    assert shown["judged_at"] == later.isoformat().replace("+00:00", "Z") and shown["failed_at"] is None
    assert shown["summary"] == (f"static guard (always), judged at {later:%Y-%m-%d %H:%M:%S} UTC: the plan is held "
                                f"at or above {static.text()}")


def test_a_failing_judgement_keeps_the_previous_floor(tmp_path, store, counted):
    calls, fail = counted
    ingest(store, tmp_path)
    rt = make_rt(tmp_path, store, "always")
    run_once(rt, NOW)
    before = sg.stored_static(store.static_guards(["sparse"])["sparse"])
    assert before is not None and before.floor >= 2

    fail.append(RuntimeError("replay exploded"))
    later = NOW + timedelta(days=1)
    outcomes, _ = run_once(rt, later)
    assert outcomes["sparse"].error is None  # planning goes on, from the kept setting
    row = store.static_guards(["sparse"])["sparse"]
    assert sg.stored_static(row) == before and row["judged_at"] == NOW and "replay exploded" in row["error"]
    assert row["evidence"]["verdict"] == "always"  # and what it was judged on, kept with it
    assert min(c["warm_workers"] for c in commands(store)) >= before.floor
    assert rt.metrics.registry.get_sample_value("prewarm_errors_total",
                                                {"stage": "guard", "endpoint": "sparse"}) == 1
    # `prewarm status` says what is in force and that the last attempt failed
    shown = status(tmp_path)
    assert shown["static_guard"]["failed_at"] == later.isoformat().replace("+00:00", "Z")
    assert shown["static_guard"]["summary"] == (
        f"static guard (always), judged at {NOW:%Y-%m-%d %H:%M:%S} UTC: the plan is held at or above "
        f"{before.text()}; the last attempt, at {later:%Y-%m-%d %H:%M:%S} UTC, failed: replay exploded "
        "(the judgement before it stays)")
    # Retried after an hour, not every cycle; a success clears the error.
    run_once(rt, later + timedelta(minutes=30))
    assert calls == [NOW, later]
    fail.clear()
    run_once(rt, later + sg.RETRY)
    assert calls == [NOW, later, later + sg.RETRY]
    assert store.static_guards(["sparse"])["sparse"]["error"] is None
    rt.close()


def test_off_plans_alone_and_judges_nothing(tmp_path, store, counted):
    calls, _ = counted
    ingest(store, tmp_path)
    rt = make_rt(tmp_path, store, "off")
    run_once(rt, NOW)
    assert calls == [] and store.static_guards(["sparse"]) == {}
    assert rt.metrics.registry.get_sample_value("prewarm_static_guard_guarded", {"endpoint": "sparse"}) is None
    plan = commands(store)
    assert all("static_floor" not in c["reason"] for c in plan)
    # The plan alone goes below the floor the guard would hold (test above: at least 2).
    assert min(c["warm_workers"] for c in plan) < 2
    rt.close()


def test_when_a_judgement_is_due():
    week, day = sg.WINDOW.total_seconds(), sg.SEASON.total_seconds()
    row = {"mode": "auto", "judged_at": NOW, "span_s": week, "error": None, "attempted_at": NOW}
    assert sg.is_due(None, "auto", NOW) and not sg.is_due(None, "off", NOW)
    assert not sg.is_due(row, "auto", NOW + timedelta(days=6, hours=23))
    assert sg.is_due(row, "auto", NOW + timedelta(days=7))
    assert sg.is_due(row, "always", NOW + timedelta(hours=1))  # the mode changed
    young = {**row, "span_s": 3 * day}
    assert not sg.is_due(young, "auto", NOW + timedelta(hours=23)) and sg.is_due(young, "auto", NOW + timedelta(days=1))
    failed = {**row, "error": "boom", "attempted_at": NOW + timedelta(days=7)}
    assert not sg.is_due(failed, "auto", NOW + timedelta(days=7, minutes=59))
    assert sg.is_due(failed, "auto", NOW + timedelta(days=7, hours=1))
    # With smoothing choices: due until a judgement chose one of them (none yet: judged before
    # they were configured, e.g. by an older prewarm), not while the stored one is still listed.
    choices = (3600.0, 7200.0)
    assert sg.is_due(row, "auto", NOW + timedelta(hours=1), choices)
    chosen = {**row, "smoothing_s": 7200.0}
    assert not sg.is_due(chosen, "auto", NOW + timedelta(hours=1), choices)
    assert sg.is_due(chosen, "auto", NOW + timedelta(hours=1), (3600.0, 10800.0))
    assert not sg.is_due(chosen, "auto", NOW + timedelta(hours=1))  # no choices: as before
    assert sg.stored_smoothing(chosen, choices) == 7200.0 and sg.stored_smoothing(chosen, (3600.0,)) is None
    assert sg.stored_smoothing(row, choices) is None and sg.stored_smoothing(None, choices) is None


def test_the_judgement_chooses_a_smoothing_and_the_plans_use_it(tmp_path, store, counted, monkeypatch):
    """[planner] smoothing_choices: the judgement replays the plan alone at each on the trailing
    history, stores the one that did best, and every plan until the next judgement smooths with
    it; a stored choice no longer listed is not used, and the endpoint is judged again."""
    from prewarm import plan_step

    calls, _ = counted
    used: list[float] = []
    real = plan_step.plan_endpoint

    def plan_endpoint(name, demand, capacity, policy, *a, **k):
        used.append(policy.smoothing_s)
        return real(name, demand, capacity, policy, *a, **k)

    monkeypatch.setattr(plan_step, "plan_endpoint", plan_endpoint)
    ingest(store, tmp_path)
    path = tmp_path / "prewarm.toml"

    def runtime(choices: str) -> Runtime:
        path.write_text(CONFIG.format(url=store.url, mode="auto").replace(
            'static_guard = "auto"\n', f'static_guard = "auto"\nsmoothing = "1h"\nsmoothing_choices = {choices}\n'))
        return Runtime(config.load(path, env={}), store=store, metrics=Metrics(CollectorRegistry()))

    rt = runtime('["0s", "30m", "3h"]')
    run_once(rt, NOW)
    row = store.static_guards(["sparse"])["sparse"]
    chosen = row["smoothing_s"]
    assert row["judged_at"] == NOW and chosen in (0.0, 1800.0, 10800.0)
    assert used == [chosen]
    # "auto": the plan alone was replayed, and the verdict agrees with what was stored
    evidence = row["evidence"]
    assert evidence["alone_requests"] > 0 and evidence["verdict"] in ("held", "above the target",
                                                                      "costlier than static")
    assert (row["setting"] is None) == (evidence["verdict"] == "held")
    guarded = rt.metrics.registry.get_sample_value("prewarm_static_guard_guarded", {"endpoint": "sparse"})
    floor = rt.metrics.registry.get_sample_value("prewarm_static_guard_floor_workers", {"endpoint": "sparse"})
    assert guarded == (0 if row["setting"] is None else 1)
    assert floor == (0 if row["setting"] is None else row["setting"]["floor"])
    # every command says what it was smoothed over, and `prewarm explain` reads it back
    from prewarm.cli.status_cmds import explanation
    plan = commands(store)
    assert plan and all(c["reason"]["smoothing_s"] == chosen for c in plan)
    assert explanation(store, "sparse", plan[0]["at"] + timedelta(seconds=1))["smoothing_s"] == chosen
    run_once(rt, NOW + timedelta(hours=1))  # stored: not judged again, planned with it
    assert calls == [NOW] and used == [chosen, chosen]
    rt.close()
    # The choices change: the stored one is not among them, so the plan smooths with
    # `smoothing` (1h) until the judgement, which is due at once, chooses again.
    others = [v for v in ("0s", "30m", "3h") if config.parse_duration(v) != chosen]
    rt = runtime(f'["{others[0]}", "{others[1]}"]')
    counting = sg.judge
    monkeypatch.setattr(sg, "judge", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("replay exploded")))
    run_once(rt, NOW + timedelta(hours=2))  # the judgement fails: fail warm, at `smoothing`
    assert used[-1] == 3600.0 and store.static_guards(["sparse"])["sparse"]["smoothing_s"] == chosen
    monkeypatch.setattr(sg, "judge", counting)
    run_once(rt, NOW + timedelta(hours=3))  # retried after sg.RETRY: chosen among the new ones
    again = store.static_guards(["sparse"])["sparse"]["smoothing_s"]
    assert calls == [NOW, NOW + timedelta(hours=3)]
    assert again in {config.parse_duration(v) for v in others} and used[-1] == again
    rt.close()


def test_a_count_only_provider_plans_with_the_count_only_policy(tmp_path, store):
    """policy.for_provider on the policy the endpoint plans with: `local` cannot set the idle
    timeout, so its plan asks for none (the busy-hours keep-alive would not happen)."""
    from prewarm.cycle import plan_cycle

    ingest(store, tmp_path)
    path = tmp_path / "prewarm.toml"
    for kind, extra in (("dry-run", ""), ("local", f'state_dir = "{tmp_path / "local"}"\n')):
        path.write_text(CONFIG.format(url=store.url, mode="off").replace('kind = "dry-run"\n',
                                                                          f'kind = "{kind}"\n{extra}'))
        rt = Runtime(config.load(path, env={}), store=store)
        plan = plan_cycle(rt, NOW, save=False)["sparse"].plan
        for provider in rt.providers.values():  # the store is the fixture's
            provider.close()
        rules = {c.reason["idle_timeout_rule"] for c in plan.commands}
        if kind == "dry-run":
            assert rules == {"forecast"} and any(c.idle_timeout_s for c in plan.commands)
        else:
            assert rules == {"fixed"} and all(c.idle_timeout_s is None for c in plan.commands)


def test_the_daemon_judges_in_a_job_of_its_own_and_plans_from_it(tmp_path, store, counted):
    from prewarm.daemon import Daemon
    from prewarm.daemon_sim import SimulatedScheduler

    calls, _ = counted
    ingest(store, tmp_path)
    rt = make_rt(tmp_path, store, "always")
    sim = SimulatedScheduler(NOW)
    daemon = Daemon(rt.settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store)
    daemon._lead()
    sim.run_until(NOW + timedelta(minutes=3))
    daemon._step_down()
    assert not sim.errors
    assert calls == [NOW]  # judged once, at first sight, by the guard job
    assert [at for at, job in sim.ran if job == "guard"][:1] == [NOW]
    static = sg.stored_static(store.static_guards(["sparse"])["sparse"])
    assert static is not None and static.floor >= 2
    plan = commands(store)
    assert min(c["warm_workers"] for c in plan) >= static.floor
    assert any(c["reason"]["why"].startswith("static floor") for c in plan)


def test_no_static_floor_above_max_workers(tmp_path, store):
    """The guard sweeps only floors the endpoint can hold: with max_workers 1 no static setting
    meets the target here (F=2 does), so the plan runs alone rather than pinned at the cap."""
    ingest(store, tmp_path)
    rt = make_rt(tmp_path, store, "always")
    rt.settings = rt.settings.model_copy(update={"endpoints": tuple(
        ep.model_copy(update={"capacity": ep.capacity.model_copy(update={"max_workers": 1})})
        for ep in rt.settings.endpoints)})
    run_once(rt, NOW)
    row = store.static_guards(["sparse"])["sparse"]
    assert row["judged_at"] == NOW and row["setting"] is None
    rt.close()
