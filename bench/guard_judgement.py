"""What one static-guard judgement costs (prewarm.static_guard.judge, as the daemon's `guard` job
and `prewarm once` make it), with and without the choice of smoothing:

    .venv/bin/python bench/guard_judgement.py [--repeat 3]

The endpoint is the one of tests/test_static_guard.py (three days of sparse traffic, a request
every 20 minutes; one worker serves one request for a minute and takes a minute to start),
ingested into a throwaway SQLite store. For each `[planner] static_guard` mode (always, auto) and
smoothing_choices (the default, and [] for none) it prints the seconds of each judgement (the
first, which pays for imports, is not timed) and what it decided. Seconds depend on the load of
the machine: note it beside the numbers.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_static_guard as scenario  # noqa: E402  (tests/test_static_guard.py: the endpoint and its traffic)

from prewarm import config  # noqa: E402
from prewarm import static_guard as sg  # noqa: E402
from prewarm.runtime import Runtime  # noqa: E402
from prewarm.store import Store  # noqa: E402


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = Store(f"sqlite:///{work / 'store.db'}")
        scenario.ingest(store, work)
        print("| static_guard | smoothing_choices | seconds per judgement | decided |\n|---|---|---|---|")
        for choices in ("default", "[]"):
            for mode in ("always", "auto"):
                text = scenario.CONFIG.format(url=store.url, mode=mode)
                if choices != "default":
                    text = text.replace(f'static_guard = "{mode}"\n', f'static_guard = "{mode}"\nsmoothing_choices = []\n')
                path = work / "prewarm.toml"
                path.write_text(text)
                rt = Runtime(config.load(path, env={}), store=store)
                ep = rt.settings.endpoints[0]
                sg.judge(rt, ep, scenario.NOW, None)
                secs = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    judged, _span = sg.judge(rt, ep, scenario.NOW, None)
                    secs.append(time.perf_counter() - t0)
                print(f"| {mode} | {choices} | {', '.join(f'{s:.2f}' for s in secs)} | "
                      f"{sg.describe(judged.static, judged.smoothing_s)} |", flush=True)
                rt.close()
        store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
