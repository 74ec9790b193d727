"""Writes the CLI and configuration references from the code, so they cannot drift.

    python -m prewarm.cli.docgen cli > docs/cli.md
    python -m prewarm.cli.docgen config > docs/configuration.md

tests/test_docs.py fails when either file differs from what this prints.
"""
from __future__ import annotations

import click

from .main import LAZY_COMMANDS, cli


def _walk(cmd: click.Command, path: list[str], ctx: click.Context):
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            yield from _walk(sub, path + [name], click.Context(sub, info_name=name, parent=ctx))


def render() -> str:
    # make_context applies the group's context settings (-h as well as --help), as a real run does.
    root = cli.make_context("prewarm", [], resilient_parsing=True, terminal_width=100, max_content_width=100)
    out = ["# CLI reference", "",
           "Generated from the commands' own help by `python -m prewarm.cli.docgen > docs/cli.md`.",
           "Exit codes: 0 ok, 1 runtime failure, 2 bad input or configuration.", ""]
    for path, cmd, ctx in _walk(cli, [], root):
        title = " ".join(["prewarm", *path])
        out += [f"## `{title}`", "", "```", cmd.get_help(ctx).replace("Usage: docgen", "Usage: prewarm").rstrip(), "```", ""]
    return "\n".join(out)


def command_names() -> list[str]:
    return sorted(LAZY_COMMANDS)


SECTION_INTRO = {
    "store": "Where prewarm keeps history, forecasts, plans and the audit log.",
    "metrics": "The Prometheus endpoint of `prewarm run`.",
    "daemon": "Cycle timing, time zone of naive time stamps, leader election.",
    "forecast": "Forecasting defaults; an endpoint's `forecast = {...}` table overrides any of them.",
    "planner": "Planner defaults; an endpoint's `planner = {...}` table overrides any of them.",
}


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("Optional", "optional").replace("NoneType", "none")


def _rows(model) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        shown = name
        if name.endswith("_s"):
            shown = f"{name[:-2]}` or `{name}"
        default = "required" if field.is_required() else (
            "" if field.default_factory is not None else repr(field.default))
        desc = field.description or ""
        if name.endswith("_s"):
            desc += " (a duration: `30s`, `5m`, `6h`, `2d`, or seconds)"
        rows.append(f"| `{shown}` | {_type_name(field.annotation)} | {default} | {desc} |")
    return rows


def render_config() -> str:
    from ..config import CapacitySettings, EndpointSettings, HistorySource, Settings

    out = ["# Configuration reference", "",
           "Generated from the pydantic models by `python -m prewarm.cli.docgen config > docs/configuration.md`.",
           "One TOML file, `prewarm.toml` (or `--config PATH`, or `PREWARM_CONFIG`). Unknown keys are refused.",
           "`PREWARM_<SECTION>__<KEY>` environment variables override file values (for example",
           "`PREWARM_STORE__URL`, `PREWARM_METRICS__ADDRESS`, `PREWARM_PLANNER__SPECULATIVE=false`);",
           "`${VAR}` inside any string is replaced from the environment, so secrets need not sit in the file.",
           "What a variable whose name looks secret (`PASSWORD`, `TOKEN`, `KEY`, `SECRET`, ...) expanded to, and",
           "the password of every URL, are shown as `***` in output, error messages and logs.",
           "A bad file is refused with the file, the key and what was expected, exit code 2.",
           "Values are not converted between kinds: a boolean is `true`/`false` (not `\"off\"`), a count",
           "an integer, a duration a string with a unit or a number of seconds (not `true`).",
           "Forecaster (`model`) and provider (`kind`) names are checked at load against the installed",
           "plugins (entry points); the error lists the installed names.", ""]
    for section, field in Settings.model_fields.items():
        if section in ("endpoints", "source", "config_file"):
            continue
        out += [f"## `[{section}]`", "", SECTION_INTRO.get(section, ""), "",
                "| key | type | default | meaning |", "|---|---|---|---|", *_rows(field.annotation), ""]
    out += ["## `[[endpoints]]`", "", "One table per endpoint.", "",
            "| key | type | default | meaning |", "|---|---|---|---|", *_rows(EndpointSettings), "",
            "### `[endpoints.capacity]`", "", "How the endpoint turns requests into workers.", "",
            "| key | type | default | meaning |", "|---|---|---|---|", *_rows(CapacitySettings), "",
            "### `[endpoints.history]`", "",
            "History from your own table instead of ingested counts: a query returning `ts, requests`,",
            "with `:start` and `:end` (and optionally `:endpoint`) bound by the driver, never formatted in.", "",
            "| key | type | default | meaning |", "|---|---|---|---|", *_rows(HistorySource), "",
            "### `[endpoints.provider]`", "",
            "`kind` names the provider; the other keys are that provider's own, validated by its schema",
            "(see `prewarm providers list` and docs/providers/).", "",
            "### `[endpoints.source]` (and `[source]`)", "",
            "Where `prewarm sync` (and the daemon, every cycle) reads the endpoint's per-minute traffic into",
            "the store. The top-level `[source]` table holds what endpoints share (kind, URL, credentials);",
            "an endpoint is synced when it has its own `[endpoints.source]` table (at least its query),",
            "overlaid on `[source]`. `kind` names the source; the other keys are that source's own,",
            "validated by its schema (see `prewarm sources list` and docs/sources/). An endpoint has either",
            "a source or `[endpoints.history]`, not both.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    import sys
    which = sys.argv[1] if len(sys.argv) > 1 else "cli"
    sys.stdout.write(render_config() if which == "config" else render())
