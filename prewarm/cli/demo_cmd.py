"""`prewarm demo`."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--dir", "directory", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo's config, database and worker logs go.")
@click.option("--hours", default=24.0, show_default=True, help="Simulated hours to replay.")
def demo(directory: str, hours: float) -> None:
    """Run the embedded default end to end: generated traffic, SQLite, real local workers."""
    from ..demo import run_demo
    from .output import echo
    run_demo(Path(directory), echo=echo, hours=hours)
