"""`prewarm` command line. Parses and calls; the work lives in the modules below.

Subcommands load lazily (their modules import pandas, statsforecast or boto3), so
`prewarm --help` answers fast. Exit codes: 0 ok, 1 runtime failure, 2 bad input or config.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

from ..errors import PrewarmError
from ..redact import redact
from .output import echo

# name -> "module:attribute". A new command adds one line here.
LAZY_COMMANDS: dict[str, str] = {
    "init": "prewarm.cli.setup_cmds:init",
    "db": "prewarm.cli.setup_cmds:db",
    "ingest": "prewarm.cli.ingest_cmd:ingest",
    "forecast": "prewarm.cli.forecast_cmd:forecast",
    "plan": "prewarm.cli.plan_cmd:plan",
    "once": "prewarm.cli.run_cmds:once",
    "run": "prewarm.cli.run_cmds:run",
    "providers": "prewarm.cli.providers_cmd:providers",
    "sources": "prewarm.cli.sources_cmd:sources",
    "sync": "prewarm.cli.sources_cmd:sync",
    "backtest": "prewarm.cli.backtest_cmd:backtest",
    "demo": "prewarm.cli.demo_cmd:demo",
    "status": "prewarm.cli.status_cmds:status",
    "explain": "prewarm.cli.status_cmds:explain",
    "hold": "prewarm.cli.status_cmds:hold",
    "release": "prewarm.cli.status_cmds:release",
    "config": "prewarm.cli.config_cmd:config",
    "report": "prewarm.cli.report_cmd:report",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str):
        if name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module (each may pull in pandas).
        from .help_text import SHORT_HELP
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class Obj:
    """What the group passes to commands: options, and the settings loaded on first use."""

    def __init__(self, config_path: str | None, db_url: str | None) -> None:
        self.config_path = config_path
        self.db_url = db_url
        self._settings = None

    @property
    def settings(self):
        if self._settings is None:
            from .. import config
            self._settings = config.load(self.config_path, db_url=self.db_url)
        return self._settings


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="PREWARM_CONFIG", type=click.Path(dir_okay=False),
              help="Config file (default ./prewarm.toml; env PREWARM_CONFIG).")
@click.option("--db", "db_url", envvar="PREWARM_DB", help="Store URL, overrides [store] url (env PREWARM_DB).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log level; logs go to stderr.")
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="json for journald and log collectors.")
@click.version_option(package_name="prewarm")
@click.pass_context
def cli(ctx: click.Context, config_path, db_url, log_level, log_format) -> None:
    """prewarm: predictive pre-warming for serverless and GPU inference endpoints.

    Exit codes: 0 ok, 1 runtime failure, 2 bad input or configuration.
    """
    from ..logs import setup_logging
    setup_logging(log_level, log_format)
    ctx.obj = Obj(config_path, db_url)


def main(argv: list[str] | None = None) -> None:
    try:
        # Not standalone: click returns the code a command exits with (`ctx.exit(1)`)
        # instead of calling sys.exit, and the errors below are mapped here.
        code = cli.main(args=argv, prog_name="prewarm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.message = redact(exc.message)
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except PrewarmError as exc:
        echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug or an unexpected runtime fault: exit 1, with the cause
        logging.getLogger("prewarm").debug("unhandled", exc_info=True)
        echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    if exit_code(code):  # 0 returns, so main() can be called in-process
        sys.exit(exit_code(code))


def exit_code(returned) -> int:
    """What `cli.main` returned: an int is the code a command exited with (`ctx.exit(n)`);
    anything else (a command's None) is success."""
    return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0
