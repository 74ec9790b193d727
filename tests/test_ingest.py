"""Ingest: all or nothing, idempotent, bad rows named by line; on every shared trace."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from prewarm.errors import InputError
from prewarm.ingest import ingest_file
from prewarm.units import zone

from .conftest import TRACES


def csv_file(tmp_path, text, name="counts.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_three_time_stamp_shapes_and_idempotence(store, tmp_path):
    f = csv_file(tmp_path, "ts,endpoint,requests,cold_starts,p50_ms\n"
                           "2024-11-20T12:00:00Z,chat,3,1,250\n"
                           "2024-11-20T08:01:00-04:00,chat,4,,\n"
                           "2024-11-20 12:02:00,chat,5,0,100.5\n")
    r = ingest_file(store, f)
    assert (r.inserted, r.unchanged) == (3, 0)
    hist = store.history("chat", datetime(2024, 11, 20, tzinfo=timezone.utc), datetime(2024, 11, 21, tzinfo=timezone.utc))
    assert [(h[0].minute, h[1], h[2]) for h in hist] == [(0, 3, 1), (1, 4, None), (2, 5, 0)]
    again = ingest_file(store, f)
    assert (again.inserted, again.unchanged) == (0, 3)


def test_naive_times_read_in_the_configured_zone(store, tmp_path):
    f = csv_file(tmp_path, "ts,endpoint,requests\n2024-07-01 09:00,web,1\n")
    ingest_file(store, f, default_tz=zone("America/New_York"))
    assert store.last_count_time("web") == datetime(2024, 7, 1, 13, 0, tzinfo=timezone.utc)


def test_bad_rows_refused_with_line_numbers_and_nothing_written(store, tmp_path):
    f = csv_file(tmp_path, "ts,endpoint,requests\n"
                           "2024-11-20T12:00:00Z,chat,3\n"
                           "yesterday,chat,1\n"
                           "2024-11-20T12:01:00Z,chat,-2\n"
                           "2024-11-20T12:02:00Z,chat,many\n"
                           "2024-11-20T12:03:00Z,chat,2\n"
                           "2024-11-20T12:03:00Z,chat,7\n"
                           "2024-11-20T12:04:30Z,chat,1\n"
                           "2024-11-20T12:05:00Z,chat,inf\n"
                           "2024-11-20T12:06:00Z,chat,nan\n")
    with pytest.raises(InputError) as err:
        ingest_file(store, f)
    msg = str(err.value)
    for expected in ("line 3: not an ISO-8601 time stamp: 'yesterday'", "line 4: requests '-2' is negative",
                     "line 5: requests 'many' is not a number", "line 7: duplicate of line 6",
                     "line 8: time stamp", "line 9: requests 'inf' is not a finite number",
                     "line 10: requests 'nan' is not a finite number", "7 bad row(s), nothing written"):
        assert expected in msg, msg
    assert store.last_count_time("chat") is None
    r = ingest_file(store, f, skip_bad=True)
    assert r.inserted == 2 and len(r.bad) == 7  # lines 2 and 6 are good


def test_conflict_with_stored_value_is_refused(store, tmp_path):
    ingest_file(store, csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,chat,3\n"))
    with pytest.raises(InputError, match="stored with requests=3, the file says 4"):
        ingest_file(store, csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,chat,4\n"
                                              "2024-11-20T12:01:00Z,chat,1\n", "b.csv"))
    assert store.last_count_time("chat") == datetime(2024, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_endpoint_option_filters_or_names(store, tmp_path):
    two = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,a,1\n2024-11-20T12:00:00Z,b,2\n")
    r = ingest_file(store, two, endpoint="b")
    assert r.endpoints == {"b": 1}
    nameless = csv_file(tmp_path, "ts,requests\n2024-11-20T12:00:00Z,5\n", "n.csv")
    with pytest.raises(InputError, match="--endpoint"):
        ingest_file(store, nameless)
    assert ingest_file(store, nameless, endpoint="solo").endpoints == {"solo": 1}


def test_per_request_log_is_counted_per_minute_with_zero_minutes(store, tmp_path):
    f = csv_file(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                           "2023-11-16 18:17:03.9799600,1,1\n2023-11-16 18:17:59.1,1,1\n2023-11-16 18:19:00.5,1,1\n")
    r = ingest_file(store, f, endpoint="code")
    assert r.format == "requests" and r.inserted == 3
    hist = store.history("code", datetime(2023, 11, 16, tzinfo=timezone.utc), datetime(2023, 11, 17, tzinfo=timezone.utc))
    assert [h[1] for h in hist] == [2, 0, 1]


def test_every_shared_trace(tmp_path):
    """Each file in ../shared/traces is ingested, or refused with a reason (SQLite: fast)."""
    from prewarm.store import Store

    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    nasa = ingest_file(store, TRACES / "nasa_http_1995" / "per_minute.csv")
    assert nasa.inserted == 39693 and nasa.endpoints == {"nasa-ksc-www": 39693}
    # The -04:00 offset lands in UTC.
    assert store.history("nasa-ksc-www", datetime(1995, 7, 1, 4, tzinfo=timezone.utc),
                         datetime(1995, 7, 1, 4, 1, tzinfo=timezone.utc))[0][1] == 42
    ali = ingest_file(store, TRACES / "alibaba_genai_2026" / "per_minute.csv")
    assert set(ali.endpoints) == {"M0002", "M0001", "M0004", "M0010", "M0003", "__all__"}
    assert ingest_file(store, TRACES / "alibaba_genai_2026" / "per_minute.csv").unchanged == ali.inserted
    az = ingest_file(store, TRACES / "azure_llm_2023" / "per_minute.csv")
    assert set(az.endpoints) == {"code", "conv"}
    # The per-request Alibaba log has 13 requests without a model: refused, then skipped.
    with pytest.raises(InputError, match="13 bad row"):
        ingest_file(store, TRACES / "alibaba_genai_2026" / "requests.csv")
    req = ingest_file(store, TRACES / "alibaba_genai_2026" / "requests.csv", skip_bad=True)
    assert len(req.bad) == 13 and req.inserted > 0
    code = ingest_file(store, TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv", endpoint="code-req")
    assert sum(h[1] for h in store.history("code-req", datetime(2023, 1, 1, tzinfo=timezone.utc),
                                          datetime(2024, 1, 1, tzinfo=timezone.utc))) == 8819
    assert code.format == "requests"
    with pytest.raises(InputError, match="expected ts,endpoint,requests"):
        ingest_file(store, TRACES / "alibaba_genai_2026" / "cold_start_latency.csv")
