"""prewarm.units: the duration forms the config, the CLI and the benchmarks share."""
from __future__ import annotations

import pytest

from prewarm.units import format_duration, parse_duration_list, parse_durations


def test_a_duration_list_from_the_command_line():
    # comma-separated durations (spaces allowed), ascending; "none" in any case is the empty list
    assert parse_duration_list("3h, 1h,2h") == (3600.0, 7200.0, 10800.0)
    assert parse_duration_list("90") == (90.0,)
    assert parse_duration_list("none") == parse_duration_list(" None ") == ()
    assert parse_durations(["30m", "1h"]) == (1800.0, 3600.0)
    for bad, says in (("1h,soon", "soon"), ("1h,60m", "listed twice"), ("", "got ''"), ("1h,,2h", "got ''")):
        with pytest.raises(ValueError, match=says):
            parse_duration_list(bad)
    assert [format_duration(v) for v in parse_duration_list("90s,90m,1d")] == ["90s", "90m", "1d"]
