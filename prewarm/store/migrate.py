"""Schema migrations, shipped inside the package (prewarm.migrations) so they work from a
plain `pip install` and not only from a checkout."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa


def alembic_config(connection: sa.Connection | None = None, url: str | None = None):
    from alembic.config import Config

    import prewarm.migrations as pkg

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(pkg.__file__).parent))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
