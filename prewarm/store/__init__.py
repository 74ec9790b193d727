"""SQL store: schema, migrations and queries."""
from .store import CountRow, Store, make_engine

__all__ = ["CountRow", "Store", "make_engine"]
