"""statsforecast's distributed backend (fugue on Dask) gives the local result."""
import pandas as pd
import pytest

from prewarm.forecasters import registry
from prewarm.forecasting import dask_client

from .conftest import at_step

pytest.importorskip("distributed")  # the `dask` extra (also in `test`); ~11 s on 2 cores


def test_dask_local_cluster_matches_local(alibaba):
    history = at_step(alibaba[alibaba["ds"] < "2024-11-28"], 900)
    local = registry.create("tsb").forecast(history, horizon=8, step_s=900)
    with dask_client(n_workers=2):
        remote = registry.create("tsb", backend="dask").forecast(history, horizon=8, step_s=900)
    key = ["unique_id", "ds"]
    pd.testing.assert_frame_equal(local.sort_values(key, ignore_index=True),
                                  remote.sort_values(key, ignore_index=True), check_dtype=False)
