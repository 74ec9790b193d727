"""Import statsforecast without the parts a forecast does not use (process start matters:
the daemon, `prewarm forecast` and every CLI call that forecasts pay it).

Measured with `python -X importtime` (statsforecast 2.1.1), importing statsforecast and
its models costs ~2 s, of which `dask.dataframe` is ~0.5 s (0.25 s of CPU): with the
`dask` extra installed, `utilsforecast.compat` imports it only to name it in type hints.
It is hidden while `utilsforecast.compat` is imported (the import fails the way it does
when dask is not installed, which compat handles), and only then: the Dask backend
(`backend = "dask"`) imports dask normally afterwards. (Making `statsmodels.api` lazy
was tried too: no measurable gain, statsforecast's models import most of statsmodels
through other paths.)
"""
from __future__ import annotations

import importlib.abc
import sys

_done = False


class _HideDaskDataFrame(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "dask.dataframe":
            raise ModuleNotFoundError("hidden while utilsforecast.compat is imported", name=fullname)
        return None


def prime() -> None:
    """Call before the first statsforecast import (idempotent, cheap after the first)."""
    global _done
    if _done:
        return
    _done = True
    if "utilsforecast.compat" not in sys.modules and "dask.dataframe" not in sys.modules:
        finder = _HideDaskDataFrame()
        sys.meta_path.insert(0, finder)
        try:
            import utilsforecast.compat  # noqa: F401
        finally:
            sys.meta_path.remove(finder)
