"""`backtest --frontier --plot`: the timeline PNG (the forecast band drawn over dense traffic,
integer worker ticks, legends above the axes, the evaluation window only) and the frontier PNG
(worker-hours against cold-start rate: every static setting, their envelope as a curve, the
predictive point). One run of the command; its figures are caught on their way to disk."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from PIL import Image

from prewarm.backtest import report
from prewarm.cli.main import main
from prewarm.demo import generate

START = datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def plotted(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    trace = d / "traffic.csv"
    generate(trace, START, days=2)
    figures = []
    save = report._save

    def keep(fig, path):
        fig.canvas.draw()
        fig.legends_above = [legend_is_above(fig, ax) for ax in fig.axes]  # while the canvas can render
        figures.append((str(path), fig))
        save(fig, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(report, "_save", keep)
    # The CLI sets up the `prewarm` logger; conftest restores it per test, not per module.
    logger = logging.getLogger("prewarm")
    mp.setattr(logger, "handlers", logger.handlers[:])
    mp.setattr(logger, "level", logger.level)
    mp.setattr(logger, "propagate", logger.propagate)
    try:
        main(["backtest", str(trace), "--from", "2026-11-24T00:00Z", "--cold-start", "10m", "--service-time", "20s",
              "--worker-concurrency", "4", "--frontier", "--plot", str(d / "bt.png"), "--json"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        mp.undo()
    return d, dict(figures)


def legend_is_above(fig, ax) -> bool:
    renderer = fig.canvas.get_renderer()
    return ax.get_legend().get_window_extent(renderer).y0 >= ax.get_window_extent(renderer).y1 - 1


def test_both_pngs_are_written(plotted):
    d, figures = plotted
    assert set(figures) == {str(d / "bt.png"), str(d / "bt-frontier.png")}
    assert Image.open(d / "bt.png").size == (1200, 650)
    assert Image.open(d / "bt-frontier.png").size == (900, 600)


def test_the_timeline_keeps_the_band_visible_over_dense_traffic(plotted):
    d, figures = plotted
    fig = figures[str(d / "bt.png")]
    traffic_ax, workers_ax = fig.axes
    lines = {line.get_label(): line for line in traffic_ax.get_lines()}
    band = next(c for c in traffic_ax.collections if c.get_label() == "forecast 80% band")
    assert band.get_zorder() > lines["requests per minute"].get_zorder()
    assert lines["forecast mean"].get_zorder() > lines["requests per minute"].get_zorder()
    # The band has width somewhere: lo-80 below hi-80.
    paths = band.get_paths()
    assert paths and max(p.vertices[:, 1].max() - p.vertices[:, 1].min() for p in paths) > 0
    assert all(float(t).is_integer() for t in workers_ax.get_yticks())
    assert fig.legends_above == [True, True]
    lo, hi = workers_ax.get_xlim()  # the window only, not the warm-up day
    import matplotlib.dates as mdates
    assert mdates.num2date(lo) == datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert datetime(2026, 11, 24, 23, tzinfo=timezone.utc) < mdates.num2date(hi) <= datetime(2026, 11, 25, tzinfo=timezone.utc)


def test_the_frontier_puts_the_predictive_point_against_the_static_curve(plotted):
    d, figures = plotted
    fig = figures[str(d / "bt-frontier.png")]
    (ax,) = fig.axes
    curve = next(line for line in ax.get_lines() if line.get_label().startswith("static envelope"))
    hours, cold = curve.get_xdata(), curve.get_ydata()
    assert len(hours) >= 3 and list(hours) == sorted(hours)
    assert all(a >= b for a, b in zip(cold, cold[1:])), "the envelope: more worker-hours, fewer cold starts"
    swept = next(c for c in ax.collections if c.get_label().startswith("static settings swept"))
    star = next(c for c in ax.collections if c.get_label().startswith("predictive:"))
    assert len(swept.get_offsets()) >= len(hours)
    (x, y), = star.get_offsets()
    assert min(hours) * 0.3 < x < max(hours) * 3 and y >= 0
    assert ax.get_xlabel() == "worker-hours" and ax.get_ylabel() == "cold-start rate (%)"
    assert fig.legends_above == [True]
