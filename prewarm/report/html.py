"""The report as one self-contained HTML page: inline CSS, inline SVG charts, and a little
inline JavaScript for the hover readout (the page reads fine without it). Nothing is
fetched: no fonts, scripts or images from the network."""
from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone

import numpy as np

from ..planner.model import StaticSetting
from ..redact import redact
from ..static_guard import holds
from .data import LAST_ACTIONS, EndpointReport

W, PAD_L, PAD_R, PAD_T, PAD_B = 1100, 58, 16, 10, 26
COLORS = {"actual": "#1f5fa8", "band": "#f28e2b", "mean": "#b85c00", "planned": "#7b3fa0",
          "held": "#2a9d4b", "cold": "#d62728"}
BAND_OPACITY = 0.4

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:1160px;margin:0 auto;padding:18px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:0 0 8px}h3{font-size:14px;margin:14px 0 4px}
.sub{color:#5b6475}.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:16px 18px;margin:16px 0}
.badge{display:inline-block;background:#fff3cd;color:#7a5a00;border-radius:4px;padding:1px 7px;font-size:12px;margin-left:8px}
.tiles{display:grid;grid-template-columns:repeat(5,1fr);gap:10px;margin:8px 0 4px}
.tile{background:#f7f8fa;border-radius:6px;padding:8px 10px}.tile b{display:block;font-size:18px}
.tile small{display:block;color:#5b6475;font-size:12px}.good{color:#1e7b34}.bad{color:#b42318}
.legend{display:flex;gap:16px;flex-wrap:wrap;font-size:12px;color:#3b4352;margin:4px 0 2px 58px}
.legend i{display:inline-block;width:18px;height:10px;margin-right:5px;vertical-align:-1px;border-radius:2px}
.chart{position:relative}.chart svg{display:block;width:100%;height:auto}
.axis text{font-size:11px;fill:#5b6475}.axis line{stroke:#e3e6eb}.frame{fill:none;stroke:#c9ced6}
.tip{position:absolute;pointer-events:none;background:#1d2330e8;color:#fff;font-size:12px;padding:5px 8px;
border-radius:4px;white-space:nowrap;display:none}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2}
th{color:#5b6475;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.err{color:#b42318}#js-errors{color:#b42318}
"""

SCRIPT = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message));
  var box = document.getElementById('js-errors');
  if (box) { box.textContent = 'script error: ' + window.__reportErrors.join('; '); }
});
document.querySelectorAll('.chart').forEach(function (chart) {
  var svg = chart.querySelector('svg'), tip = chart.querySelector('.tip');
  var data = JSON.parse(chart.querySelector('script[type="application/json"]').textContent);
  var cursor = svg.querySelector('.cursor');
  svg.addEventListener('mousemove', function (ev) {
    var box = svg.getBoundingClientRect(), scale = data.w / box.width;
    var x = (ev.clientX - box.left) * scale;
    var i = Math.floor((x - data.x0) / (data.x1 - data.x0) * data.n);
    if (i < 0 || i >= data.n) { tip.style.display = 'none'; cursor.setAttribute('visibility', 'hidden'); return; }
    var cx = data.x0 + (i + 0.5) * (data.x1 - data.x0) / data.n;
    cursor.setAttribute('x1', cx); cursor.setAttribute('x2', cx); cursor.setAttribute('visibility', 'visible');
    var when = new Date((data.t0 + i * data.step) * 1000).toISOString().slice(0, 16).replace('T', ' ');
    var lines = [when + ' UTC'];
    data.series.forEach(function (s) {
      var v = s.v[i];
      if (v !== null) { lines.push(s.name + ': ' + (s.int ? Math.round(v) : v.toFixed(v < 10 ? 2 : 1))); }
    });
    tip.textContent = '';
    lines.forEach(function (l, k) { if (k) { tip.appendChild(document.createElement('br')); } tip.appendChild(document.createTextNode(l)); });
    tip.style.display = 'block';
    var left = (cx / scale) + 12;
    if (left + tip.offsetWidth > box.width) { left = cx / scale - tip.offsetWidth - 12; }
    tip.style.left = left + 'px'; tip.style.top = '8px';
  });
  svg.addEventListener('mouseleave', function () { tip.style.display = 'none'; cursor.setAttribute('visibility', 'hidden'); });
});
document.documentElement.setAttribute('data-rendered', 'ok');
"""


def _esc(text) -> str:
    """Text for the page: secrets masked (prewarm.redact: a provider's or a judgement's error
    can carry a URL with its password, or a token), then HTML-escaped."""
    return html.escape(redact(str(text)), quote=True)


def _nice_step(span: float, ticks: int, integer: bool) -> float:
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return max(1.0, step) if integer else step


def _fmt(v: float) -> str:
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:.2g}" if abs(v) < 1 else f"{v:.1f}"


TIME_STEPS = (3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


class Chart:
    """A time chart over [t0, t1) (epoch seconds), drawn as SVG."""

    def __init__(self, t0: float, t1: float, height: int, y_max: float, integer: bool = False) -> None:
        self.t0, self.t1, self.h, self.integer = t0, max(t1, t0 + 60), height, integer
        self.step = _nice_step(max(y_max, 1.0 if integer else 1e-9), 4, integer)
        self.y_top = max(self.step, math.ceil(max(y_max, 0) / self.step) * self.step)
        if self.y_top <= max(y_max, 0):
            self.y_top += self.step
        self.parts: list[str] = []

    def x(self, t: float) -> float:
        return PAD_L + (t - self.t0) / (self.t1 - self.t0) * (W - PAD_L - PAD_R)

    def y(self, v: float) -> float:
        return PAD_T + (1 - min(max(v, 0.0), self.y_top) / self.y_top) * (self.h - PAD_T - PAD_B)

    def band(self, ts, lo, hi, color: str) -> None:
        for seg in _segments(ts, lo, hi):
            top = " ".join(f"{self.x(t):.1f},{self.y(h):.1f}" for t, _, h in seg)
            bottom = " ".join(f"{self.x(t):.1f},{self.y(lw):.1f}" for t, lw, _ in reversed(seg))
            self.parts.append(f'<polygon points="{top} {bottom}" fill="{color}" fill-opacity="{BAND_OPACITY}" stroke="none"/>')

    def line(self, ts, ys, color: str, width: float = 1.2, dash: str = "") -> None:
        for seg in _segments(ts, ys):
            pts = " ".join(f"{self.x(t):.1f},{self.y(v):.1f}" for t, v in seg)
            extra = f' stroke-dasharray="{dash}"' if dash else ""
            self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"'
                              f' stroke-linejoin="round"{extra}/>')

    def steps(self, points: list[tuple[float, float]], color: str, width: float = 1.8, dash: str = "",
              opacity: float = 1.0) -> None:
        if not points:
            return
        d = []
        for k, (t, v) in enumerate(points):
            t_next = points[k + 1][0] if k + 1 < len(points) else self.t1
            d.append(f"{'M' if k == 0 else 'L'}{self.x(t):.1f},{self.y(v):.1f} H{self.x(t_next):.1f}")
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<path d="{" ".join(d)}" fill="none" stroke="{color}" stroke-width="{width}" '
                          f'stroke-opacity="{opacity}"{extra}/>')

    def bars(self, ts, ys, width_s: float, color: str) -> None:
        w = max(1.0, self.x(self.t0 + width_s) - self.x(self.t0))
        for t, v in zip(ts, ys):
            if v > 0:
                y = self.y(v)
                self.parts.append(f'<rect x="{self.x(t):.1f}" y="{y:.1f}" width="{w:.1f}" '
                                  f'height="{self.y(0) - y:.1f}" fill="{color}"/>')

    def render(self, y_label: str, data: dict) -> str:
        axis = []
        v = 0.0
        while v <= self.y_top + 1e-9:
            y = self.y(v)
            axis.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>'
                        f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
            v += self.step
        span = self.t1 - self.t0
        tstep = next((s for s in TIME_STEPS if span / s <= 9), TIME_STEPS[-1])
        t = math.ceil(self.t0 / tstep) * tstep
        while t < self.t1:
            when = datetime.fromtimestamp(t, tz=timezone.utc)
            label = when.strftime("%a %d %b" if tstep >= 86400 or (when.hour == 0 and when.minute == 0)
                                  else "%H:%M")
            x = self.x(t)
            axis.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T}" y2="{self.h - PAD_B}"/>'
                        f'<text x="{x:.1f}" y="{self.h - 8}" text-anchor="middle">{label}</text>')
            t += tstep
        axis.append(f'<text transform="translate(13,{(self.h - PAD_B + PAD_T) / 2:.0f}) rotate(-90)" '
                    f'text-anchor="middle">{_esc(y_label)}</text>')
        data = {**data, "w": W, "x0": PAD_L, "x1": W - PAD_R}
        return (f'<div class="chart"><svg viewBox="0 0 {W} {self.h}" role="img" aria-label="{_esc(y_label)}">'
                f'<g class="axis">{"".join(axis)}</g>{"".join(self.parts)}'
                f'<rect class="frame" x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
                f'height="{self.h - PAD_T - PAD_B}"/>'
                f'<line class="cursor" x1="0" x2="0" y1="{PAD_T}" y2="{self.h - PAD_B}" stroke="#1d2330" '
                f'stroke-width="1" visibility="hidden"/></svg><div class="tip"></div>'
                f'<script type="application/json">{_json(data)}</script></div>')


def _json(data) -> str:
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _segments(ts, *cols):
    """Runs of (t, values...) without NaN: a gap in the data is a gap in the line."""
    seg = []
    for row in zip(ts, *cols):
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in row[1:]):
            if seg:
                yield seg
            seg = []
        else:
            seg.append(row)
    if seg:
        yield seg


def _legend(items: list[tuple[str, str, str]]) -> str:
    """(label, color, style) with style 'fill', 'line' or 'dash'."""
    out = []
    for label, color, style in items:
        css = {"fill": f"background:{color};opacity:.45", "line": f"border-top:3px solid {color};height:0",
               "dash": f"border-top:3px dashed {color};height:0"}[style]
        out.append(f'<span><i style="{css}"></i>{_esc(label)}</span>')
    return f'<div class="legend">{"".join(out)}</div>'


def _values_at(points: list[tuple[float, float]], ts: np.ndarray) -> list[float | None]:
    if not points:
        return [None] * len(ts)
    times = np.array([p[0] for p in points])
    idx = np.searchsorted(times, ts, side="right") - 1
    return [None if i < 0 else float(points[i][1]) for i in idx]


def _round(values) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 3) for v in values]


def traffic_chart(r: EndpointReport) -> str:
    s = r.series
    t0, t1 = r.start.timestamp(), r.end.timestamp()
    ts = t0 + np.arange(len(s.requests)) * s.step_s
    mid = ts + s.step_s / 2
    top = np.nanmax(np.concatenate([s.requests, s.f_hi, [0.0]]))
    c = Chart(t0, t1, 270, float(top))
    # The band over the traffic, not under it: dense per-minute traffic would hide it.
    c.line(mid, s.requests, COLORS["actual"], 1.0)
    c.band(mid, s.f_lo, s.f_hi, COLORS["band"])
    c.line(mid, s.f_mean, COLORS["mean"], 1.6)
    per = s.step_s // 60
    label = "requests / min" + (f" ({per}-min mean)" if per > 1 else "")
    data = {"t0": t0, "step": s.step_s, "n": len(ts), "series": [
        {"name": "actual", "v": _round(s.requests)}, {"name": "forecast mean", "v": _round(s.f_mean)},
        {"name": "forecast lo-80", "v": _round(s.f_lo)}, {"name": "forecast hi-80", "v": _round(s.f_hi)}]}
    return _legend([("actual requests", COLORS["actual"], "line"), ("forecast 80% band", COLORS["band"], "fill"),
                    ("forecast mean", COLORS["mean"], "line")]) + c.render(label, data)


def workers_chart(r: EndpointReport) -> str:
    s = r.series
    t0, t1 = r.start.timestamp(), r.end.timestamp()
    planned = [(t.timestamp(), n) for t, n in r.planned]
    held = [(t.timestamp(), n) for t, n in r.held]
    top = max([n for _, n in planned + held] + [1])
    c = Chart(t0, t1, 170, float(top), integer=True)
    c.steps(planned, COLORS["planned"], 5, opacity=0.45)  # wide and light: the held line shows on top
    c.steps(held, COLORS["held"], 1.6, "6 3")
    ts = t0 + np.arange(len(s.requests)) * s.step_s
    data = {"t0": t0, "step": s.step_s, "n": len(ts), "series": [
        {"name": "planned", "v": _values_at(planned, ts), "int": True},
        {"name": "provider held", "v": _values_at(held, ts), "int": True}]}
    return _legend([("warm target planned", COLORS["planned"], "line"),
                    ("target the provider accepted", COLORS["held"], "dash")]) + c.render("warm workers", data)


def cold_chart(r: EndpointReport) -> str:
    s = r.series
    if s.cold is None:
        return '<p class="sub">The ingested counts report no cold starts (column <code>cold_starts</code>).</p>'
    t0, t1 = r.start.timestamp(), r.end.timestamp()
    ts = t0 + np.arange(len(s.cold)) * s.step_s
    c = Chart(t0, t1, 120, float(max(s.cold.max(), 1)), integer=True)
    c.bars(ts, s.cold, s.step_s, COLORS["cold"])
    per = s.step_s // 60
    data = {"t0": t0, "step": s.step_s, "n": len(ts), "series": [{"name": "cold starts", "v": _round(s.cold), "int": True}]}
    return _legend([(f"cold starts per {per} min" if per > 1 else "cold starts per minute", COLORS["cold"], "fill")]) \
        + c.render("cold starts", data)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _money(x: float) -> str:
    return f"{x:,.2f}"


def tiles(r: EndpointReport) -> str:
    rate = r.cold_rate
    ok = rate is not None and rate <= r.target_cold_rate
    cost = r.held_worker_hours * r.price_per_worker_hour
    best = r.static.advice.best if r.static.advice is not None else None
    coverage = _mean(a.get("coverage_80") for a in r.accuracy)
    items = [
        (f"{r.requests:,}", f"requests in {r.hours:,.0f} h with counts"),
        (f'<span class="{"good" if ok else "bad" if rate is not None else ""}">{_pct(rate)}</span>',
         f"cold-start rate (target {_pct(r.target_cold_rate)})"),
        (f"{r.held_worker_hours:,.1f} h", f"held warm by prewarm, cost {_money(cost)}") if r.held
        else ("n/a", "prewarm applied no target in the window"),
        (f"{best.worker_hours:,.1f} h", f"best static setting meeting the target, cost {_money(best.cost)}")
        if best else ("none", "no static setting swept meets the target") if r.static.advice is not None
        else ("n/a", "static settings not replayed"),
        (_pct(coverage), f"80% band coverage ({len(r.accuracy)} scored forecasts)"),
    ]
    out = "".join(f'<div class="tile"><b>{v}</b><small>{_esc(label)}</small></div>' for v, label in items)
    return f'<div class="tiles">{out}</div>'


def comparison_table(r: EndpointReport) -> str:
    st = r.static
    rows = [("prewarm (targets the provider accepted)", _pct(r.cold_rate) + " observed",
             f"{r.held_worker_hours:,.1f}", _money(r.held_worker_hours * r.price_per_worker_hour), "") if r.held
            else ("prewarm", _pct(r.cold_rate) + " observed", "n/a", "n/a", "no target applied in the window")]
    if st.advice is not None:
        for kind, o in st.advice.options.items():
            rows.append((f"best static, {kind}" + (" (the advice)" if st.advice.best is o and o else ""),
                         _pct(o.cold_rate) + " replayed" if o else "none meets the target",
                         f"{o.worker_hours:,.1f}" if o else "", _money(o.cost) if o else "",
                         StaticSetting(o.floor, o.keepalive_s).text() if o else ""))
    if st.hours_at_observed is not None:
        rows.append(("static envelope at prewarm's cold-start rate", _pct(r.cold_rate),
                     f"{st.hours_at_observed:,.1f}", _money(st.hours_at_observed * r.price_per_worker_hour),
                     "the fewest worker-hours of any static setting as cold"))
    body = "".join(f"<tr><td>{_esc(a)}</td><td class=n>{_esc(b)}</td><td class=n>{_esc(c)}</td>"
                   f"<td class=n>{_esc(d)}</td><td>{_esc(e)}</td></tr>" for a, b, c, d, e in rows)
    note = (f"Over {r.start:%Y-%m-%d %H:%M} to {r.data_end:%Y-%m-%d %H:%M} UTC, the span with counts. "
            "Static settings are replayed on the stored counts of the same days (the advisor's sweep, "
            f"{st.points} settings of floor and keep-alive), with this endpoint's capacity and price "
            f"({_money(r.price_per_worker_hour)} per worker-hour). prewarm's worker-hours are the targets the "
            "provider accepted; workers a platform started on demand beyond them are not in the store.")
    if st.note:
        note = st.note
    return (f"<h3>Worker-hours and cost against static settings</h3><table><tr><th>setting</th>"
            f"<th>cold-start rate</th><th>worker-hours</th><th>cost</th><th></th></tr>{body}</table>"
            f'<p class="sub">{_esc(note)}</p>')


def guard_section(r: EndpointReport) -> str:
    """The static guard's judgements in force over the window: what each held the plan to,
    and why; a last attempt that failed."""
    g = r.guard
    head = "<h3>Static guard</h3>"
    if g is None:
        return (f'{head}<p class="sub">Off for this endpoint ([planner] static_guard = "off"): the plan '
                "runs alone, never held at last week's best static setting.</p>")
    if g.judgements:
        items = []
        for j in g.judgements:
            since = "from the window's start" if j.judged_at <= r.start else "from then"
            items.append(f"<li>Judged at {j.judged_at:%Y-%m-%d %H:%M} UTC ({_esc(j.mode)}), in force {_esc(since)}: "
                         f"{_esc(holds(j.setting))}." + (f" Why: {_esc(j.summary)}." if j.summary else "") + "</li>")
        body = (f'<p>[planner] static_guard = "{_esc(g.mode)}". The judgements in force over the window, '
                f"oldest first:</p><ul>{''.join(items)}</ul>")
    elif g.last_judged_at is None:
        body = "<p>Not judged yet (the daemon's guard job, or prewarm once, judges it): the plan runs alone.</p>"
    else:
        body = (f"<p>No judgement kept was in force during the window (the last was made at "
                f"{g.last_judged_at:%Y-%m-%d %H:%M} UTC; older ones go with [store] retention).</p>")
    failed = ""
    if g.failed_at is not None:
        failed = (f'<p class="sub err">The last attempt, at {g.failed_at:%Y-%m-%d %H:%M} UTC, failed: '
                  f"{_esc(g.error)}. The judgement before it stays in force (fail warm).</p>")
    return f"{head}{body}{failed}"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def accuracy_table(r: EndpointReport) -> str:
    if not r.accuracy:
        return ("<h3>Forecast accuracy</h3><p class=\"sub\">No forecast of this window has been scored yet "
                "(snapshots are scored once their horizon has passed).</p>")
    keys = ("mase", "pinball", "coverage_80", "coverage_95")
    mean = {k: _mean(a.get(k) for a in r.accuracy) for k in keys}
    fmt = {"mase": lambda v: f"{v:.2f}", "pinball": lambda v: f"{v:.2f}",
           "coverage_80": _pct, "coverage_95": _pct}
    cells = "".join(f"<td class=n>{'n/a' if mean[k] is None else fmt[k](mean[k])}</td>" for k in keys)
    return (f"<h3>Forecast accuracy</h3><table><tr><th>scored forecasts</th><th>MASE</th><th>pinball</th>"
            f"<th>80% band coverage</th><th>95% band coverage</th></tr><tr><td>{len(r.accuracy)}</td>{cells}</tr>"
            "</table><p class=\"sub\">Means over the forecasts issued in the window. MASE below 1 beats "
            "last day's same minute; the bands should cover about 80% and 95% of minutes.</p>")


def _why(action: dict) -> str:
    """The plan's reason in a line: why, and the demand and need it was sized on."""
    reason = action.get("reason") or {}
    why = str(reason.get("why") or "")
    if reason.get("planned_rpm") is not None and reason.get("need") is not None:
        need_at = str(reason.get("need_at") or "")[11:16]
        why += (f": {reason['planned_rpm']:.1f} req/min ({reason.get('quantile', 'mean')}) needs "
                f"{reason['need']}" + (f" by {need_at}" if need_at else ""))
        if reason.get("lead_s"):
            why += f", started {reason['lead_s'] / 60:.0f} min ahead"
    elif reason.get("by"):
        why += f" ({reason['by']})"
    return why


def actions_table(r: EndpointReport) -> str:
    shown = [a for a in r.actions if a["result"] != "unchanged"][:LAST_ACTIONS]
    quiet = sum(1 for a in r.actions if a["result"] == "unchanged")
    note = (f'<p class="sub">{quiet:,} passes in the window found the provider already at its target '
            "(result unchanged); they are not listed.</p>") if quiet else ""
    if not shown:
        return f'<h3>Last actions</h3><p class="sub">No change or failure in the window.</p>{note}'
    rows = []
    for a in shown:
        req = a.get("requested") or {}
        change = f"{req.get('previous', '?')} → {req.get('target', '?')}"
        result = a["result"] + (f": {a['error']}" if a.get("error") else "")
        rows.append(f"<tr><td>{a['ts']:%Y-%m-%d %H:%M:%S}</td><td>{_esc(a['verb'])}</td><td class=n>{_esc(change)}"
                    f"</td><td class=\"{'err' if a['result'] == 'error' else ''}\">{_esc(result)}</td>"
                    f"<td>{_esc(_why(a))}</td></tr>")
    return (f"<h3>Last changes and failures (newest first, UTC)</h3><table><tr><th>time</th><th>verb</th>"
            f"<th>workers</th><th>result</th><th>why</th></tr>{''.join(rows)}</table>{note}")


def section(r: EndpointReport) -> str:
    badge = "" if r.configured else '<span class="badge">not configured: capacity and planner defaults</span>'
    return (f'<section class="card" id="ep-{_esc(r.name)}"><h2>{_esc(r.name)}{badge}</h2>'
            f'<div class="sub">{r.start:%Y-%m-%d %H:%M} to {r.end:%Y-%m-%d %H:%M} UTC</div>'
            f"{tiles(r)}<h3>Forecast band against actual traffic</h3>{traffic_chart(r)}"
            f"<h3>Warm target and what the provider held</h3>{workers_chart(r)}"
            f"<h3>Cold starts</h3>{cold_chart(r)}{comparison_table(r)}{guard_section(r)}{accuracy_table(r)}"
            f"{actions_table(r)}"
            "</section>")


def render(reports: list[EndpointReport], generated_at: datetime, window: str) -> str:
    names = ", ".join(r.name for r in reports)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>prewarm report: {_esc(names)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>prewarm report</h1><div class=\"sub\">{_esc(window)}; generated {generated_at:%Y-%m-%d %H:%M} UTC"
            f" from the store; times in UTC</div><div id=\"js-errors\"></div>"
            + "".join(section(r) for r in reports)
            + f"</main><script>{SCRIPT}</script></body></html>\n")
