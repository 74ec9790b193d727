"""Ingest: all or nothing, idempotent, bad rows named by line; on every shared trace."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prewarm.errors import InputError
from prewarm.ingest import ingest_file
from prewarm.units import zone

from .conftest import TRACES

T0 = datetime(2024, 11, 20, 12, 0, tzinfo=timezone.utc)


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


def test_values_the_stores_refuse_are_bad_rows_on_every_store(store, tmp_path):
    """What a database would refuse (or misread) is a bad row with its line, the same on
    SQLite, PostgreSQL and MariaDB, and not a raw SQL error: a name over 128 characters, a
    control character in it, a count over 2^31 - 1, 1e300 as a count or a latency, a year-1
    or year-9999 time stamp (with or without an offset)."""
    f = csv_file(tmp_path, "ts,endpoint,requests,cold_starts,p50_ms\n"
                           "2024-11-20T12:00:00Z,ok,1,,\n"
                           f"2024-11-20T12:00:00Z,{'x' * 129},1,,\n"
                           "2024-11-20T12:00:00Z,nul\x00name,1,,\n"
                           "2024-11-20T12:01:00Z,ok,2147483648,,\n"
                           "2024-11-20T12:02:00Z,ok,1e300,,\n"
                           "2024-11-20T12:03:00Z,ok,1,1e300,\n"
                           "2024-11-20T12:04:00Z,ok,1,,1e300\n"
                           "0001-01-01T00:00:00Z,ok,1,,\n"
                           "0001-01-01T00:00:00+01:00,ok,1,,\n"
                           "9999-12-31T23:59:00,ok,1,,\n"
                           "9999-12-31T23:59:00-01:00,ok,1,,\n"
                           f"2024-11-20T12:05:00Z,{'y' * 128},2147483647,0,86400000\n")
    with pytest.raises(InputError) as err:
        ingest_file(store, f)
    msg = str(err.value)
    for expected in ("line 3: endpoint 'xxxxxxxxxxxxxxxxxxxx'... is 129 characters, at most 128",
                     "line 4: endpoint 'nul\\x00name' contains the control character '\\x00'",
                     "line 5: requests '2147483648' is over 2147483647", "line 6: requests '1e300' is over",
                     "line 7: cold_starts '1e300' is over", "line 8: p50_ms '1e300' is over 86400000 ms",
                     "line 9: time stamp '0001-01-01T00:00:00Z' is outside 1900-2199",
                     "line 10: time stamp '0001-01-01T00:00:00+01:00' is outside",
                     "line 11: time stamp '9999-12-31T23:59:00' is outside",
                     "line 12: time stamp '9999-12-31T23:59:00-01:00' is outside", "10 bad row(s), nothing written"):
        assert expected in msg, msg
    r = ingest_file(store, f, skip_bad=True)
    assert r.inserted == 2 and r.bad_count == 10
    assert store.history("y" * 128, T0, T0 + timedelta(hours=1))[0][1:] == (2147483647, 0)



def test_a_refused_file_writes_nothing_not_even_its_endpoints(store, tmp_path):
    f = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,brand-new,1\n2024-11-20T12:01:00Z,brand-new,x\n")
    with pytest.raises(InputError, match="1 bad row"):
        ingest_file(store, f)
    from prewarm.store import Store

    fresh = Store(store.url)  # no cached ids
    try:
        assert fresh.endpoint_id("brand-new", create=False) is None
    finally:
        fresh.close()


def test_files_of_one_ingest_are_one_transaction(store, tmp_path):
    """`ingest a.csv b.csv` with b bad: a is not written either, and the refusal says so."""
    from prewarm.ingest import ingest_files

    a = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,a,1\n", "a.csv")
    b = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,b,-1\n", "b.csv")
    with pytest.raises(InputError) as err:
        ingest_files(store, [a, b])
    assert "b.csv: 1 bad row(s)" in str(err.value) and f"nothing of {a} was written either" in str(err.value)
    assert store.last_count_time("a") is None
    reports = ingest_files(store, [a, csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,b,2\n", "c.csv")])
    assert [r.endpoints for r in reports] == [{"a": 1}, {"b": 1}]


def test_names_differing_in_case_are_different_endpoints(store, tmp_path):
    f = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,chat,1\n2024-11-20T12:00:00Z,Chat,2\n"
                           "2024-11-20T12:00:00Z,CHAT,3\n")
    assert ingest_file(store, f).endpoints == {"chat": 1, "Chat": 1, "CHAT": 1}
    assert [store.history(n, T0, T0 + timedelta(minutes=1))[0][1] for n in ("chat", "Chat", "CHAT")] == [1, 2, 3]


def test_ingest_streams_in_chunks(store, tmp_path, monkeypatch):
    """The file is read and written a chunk at a time (the first rows are written before
    the rest is read), and the checks hold across chunks: a duplicate of a row three chunks
    back is named with its line, and a bad row at the end takes back what was written."""
    import prewarm.ingest as ingest

    monkeypatch.setattr(ingest, "CHUNK_ROWS", 100)
    lines_read, at_insert = [0], []
    real_insert = store.insert_counts
    monkeypatch.setattr(store, "insert_counts", lambda c, eid, rows: (at_insert.append(lines_read[0]),
                                                                      real_insert(c, eid, rows))[1])

    def progress(n):
        lines_read[0] += n

    body = "".join(f"{(T0 + timedelta(minutes=i)):%Y-%m-%dT%H:%MZ},s,{i % 7}\n" for i in range(20_000))
    f = csv_file(tmp_path, "ts,endpoint,requests\n" + body)
    r = ingest_file(store, f, progress=progress)
    assert r.inserted == 20_000 and len(at_insert) == 200
    assert at_insert[0] < 5000 and at_insert[-1] >= 15_000  # written as it was read
    # Again with conflicting duplicates of line 2 chunks later and a new endpoint: refused whole.
    g = csv_file(tmp_path, "ts,endpoint,requests\n" + "".join(
        f"{(T0 + timedelta(minutes=i)):%Y-%m-%dT%H:%MZ},later,1\n" for i in range(350))
        + f"{T0:%Y-%m-%dT%H:%MZ},later,5\n" + "\n" * 200 + f"{T0:%Y-%m-%dT%H:%MZ},later,6\n", "g.csv")
    with pytest.raises(InputError) as err:
        ingest_file(store, g)
    for line in (352, 553):
        assert f"line {line}: duplicate of line 2 (later at 2024-11-20T12:00Z) with a different value" in str(err.value)
    assert store.last_count_time("later") is None
    r = ingest_file(store, g, skip_bad=True)
    assert r.inserted == 350 and r.bad_count == 2


NY = "America/New_York"


def test_naive_times_across_the_spring_forward_gap(store, tmp_path):
    """02:00-02:59 does not exist in New York on 2024-03-10: refused with the line, not
    folded onto 03:xx (which dropped a row without a word)."""
    f = csv_file(tmp_path, "ts,endpoint,requests\n2024-03-10 01:59,web,1\n2024-03-10 02:30,web,2\n"
                           "2024-03-10 03:30,web,3\n")
    with pytest.raises(InputError, match=r"line 3: local time 2024-03-10 02:30 does not exist in America/New_York"):
        ingest_file(store, f, default_tz=zone(NY))
    r = ingest_file(store, f, default_tz=zone(NY), skip_bad=True)
    assert r.inserted == 2
    assert [h[0].hour for h in store.history("web", datetime(2024, 3, 10, tzinfo=timezone.utc),
                                             datetime(2024, 3, 11, tzinfo=timezone.utc))] == [6, 7]


def test_naive_times_across_the_fall_back_hour(store, tmp_path):
    """01:00-01:59 happens twice in New York on 2024-11-03. A file in time order (two
    endpoints interleaved) is read as it happened: the first pass as EDT, the pass after the
    time goes back as EST; 123 rows, 123 distinct minutes, no "duplicates"."""
    local = ([f"2024-11-03 00:{m:02d}" for m in (58, 59)] + [f"2024-11-03 01:{m:02d}" for m in range(60)] * 2
             + ["2024-11-03 02:00"])
    body = "".join(f"{ts},{ep},{i}\n" for i, ts in enumerate(local) for ep in ("a", "b"))
    r = ingest_file(store, csv_file(tmp_path, "ts,endpoint,requests\n" + body), default_tz=zone(NY))
    assert r.inserted == 246 and r.bad_count == 0
    hist = store.history("a", datetime(2024, 11, 3, tzinfo=timezone.utc), datetime(2024, 11, 4, tzinfo=timezone.utc))
    start = datetime(2024, 11, 3, 4, 58, tzinfo=timezone.utc)
    assert [(h[0], h[1]) for h in hist] == [(start + timedelta(minutes=i), i) for i in range(123)]
    # A request log: seconds of jitter are not a step back; 01:00:05 after 01:59 is.
    log = csv_file(tmp_path, "TIMESTAMP,x\n2024-11-03 01:59:30,1\n2024-11-03 01:59:10,1\n2024-11-03 01:00:05,1\n",
                   "log.csv")
    ingest_file(store, log, endpoint="log", default_tz=zone(NY))
    assert [(h[0].strftime("%H:%M"), h[1]) for h in store.history(
        "log", datetime(2024, 11, 3, tzinfo=timezone.utc), datetime(2024, 11, 4, tzinfo=timezone.utc))] \
        == [("05:59", 2), ("06:00", 1)]
    # One pass through the repeated hour: its first occurrence (EDT, UTC-4).
    ingest_file(store, csv_file(tmp_path, "ts,endpoint,requests\n2024-11-03 01:30,once,1\n", "b.csv"), default_tz=zone(NY))
    assert store.last_count_time("once") == datetime(2024, 11, 3, 5, 30, tzinfo=timezone.utc)


def test_refusals_exit_2_through_the_command(tmp_path):
    from .test_cli import run

    db = f"sqlite:///{tmp_path / 'p.db'}"
    a = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,a,1\n", "a.csv")
    b = csv_file(tmp_path, "ts,endpoint,requests\n2024-11-20T12:00:00Z,b,1e300\n", "b.csv")
    err = run("--db", db, "ingest", str(a), str(b), cwd=tmp_path, check=2).stderr
    assert "line 2: requests '1e300' is over 2147483647" in err and "nothing of" in err
    out = run("--db", db, "ingest", str(a), cwd=tmp_path, check=0).stdout
    assert "a.csv: 1 rows (counts), 1 new" in out


def test_a_file_that_stops_being_utf8_midway_writes_nothing(store, tmp_path, monkeypatch):
    """Read as a stream, a bad byte is met after rows were written: they are taken back."""
    import prewarm.ingest as ingest

    monkeypatch.setattr(ingest, "CHUNK_ROWS", 100)
    p = tmp_path / "latin.csv"
    p.write_bytes(b"ts,endpoint,requests\n" + b"".join(
        f"{(T0 + timedelta(minutes=i)):%Y-%m-%dT%H:%MZ},caf\xc3\xa9,1\n".encode() for i in range(20_000))
        + b"2024-11-20T12:00:00Z,caf\xe9,1\n")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        ingest_file(store, p)
    assert store.last_count_time("café") is None
