"""The docs cannot drift from the code (after datasette's documentation tests)."""
from __future__ import annotations

import re

import pytest

from prewarm import config
from prewarm.cli import docgen
from prewarm.cli.main import LAZY_COMMANDS

from .conftest import REPO

README = (REPO / "README.md").read_text()


def test_cli_reference_is_current():
    assert (REPO / "docs" / "cli.md").read_text() == docgen.render(), \
        "run: python -m prewarm.cli.docgen cli > docs/cli.md"


def test_configuration_reference_is_current():
    assert (REPO / "docs" / "configuration.md").read_text() == docgen.render_config(), \
        "run: python -m prewarm.cli.docgen config > docs/configuration.md"


@pytest.mark.parametrize("command", sorted(LAZY_COMMANDS))
def test_readme_mentions_every_command(command):
    assert re.search(rf"`prewarm {command}\b", README), f"README does not mention `prewarm {command}`"


def test_readme_gives_the_two_commands_and_exit_codes():
    assert "make demo" in README and "make test" in README
    assert "0 ok" in README and "1 runtime" in README and "2 bad input" in README


SECTIONS = [config.StoreSettings, config.MetricsSettings, config.DaemonSettings, config.ForecastSettings,
            config.PlannerSettings, config.CapacitySettings]


@pytest.mark.parametrize("model", SECTIONS, ids=lambda m: m.__name__)
def test_every_documented_duration_alias_works(model):
    """configuration.md says `foo` or `foo_s` takes a duration: make sure each one does."""
    for name, field in model.model_fields.items():
        if not name.endswith("_s"):
            continue
        parsed = model.model_validate({name[:-2]: "2m"})
        assert getattr(parsed, name) == 120, f"{model.__name__}.{name[:-2]} does not take a duration"


def test_readme_worked_example_is_a_valid_config(tmp_path):
    block = README.split("## A worked example", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    path = tmp_path / "prewarm.toml"
    path.write_text(block)
    settings = config.load(path, env={"PGPASSWORD": "x"})
    assert [e.name for e in settings.endpoints] == ["sdxl", "chat"]


def test_starter_config_written_by_init_is_valid(tmp_path):
    from prewarm.cli.setup_cmds import STARTER
    path = tmp_path / "prewarm.toml"
    path.write_text(STARTER)
    assert config.load(path, env={}).endpoints[0].name == "chat"


def test_every_installed_provider_has_a_page():
    from prewarm.providers import registry
    pages = {p.stem for p in (REPO / "docs" / "providers").glob("*.md")}
    ours = {kind for kind, ep in registry.available().items() if ep.value.startswith("prewarm.providers.")}
    missing = sorted(ours - pages)
    assert not missing, f"docs/providers/ has no page for {missing}"


def _quick_start_commands() -> list[list[str]]:
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    out = []
    for line in block.strip().splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "prewarm":
            out.append(words[1:])
    return out


def test_readme_quick_start_runs_as_written(tmp_path):
    """Every `prewarm` line of the quick start, in order, in an empty directory (the daemon
    `run` aside): each exits 0, and the forecast and plan show the starter endpoint."""
    import os
    import subprocess
    import sys

    commands = _quick_start_commands()
    assert [c[0] for c in commands][:3] == ["init", "config", "ingest"] and ["run"] in commands
    exe = os.path.join(os.path.dirname(sys.executable), "prewarm")
    outputs = {}
    for args in commands:
        if args == ["run"]:
            continue
        done = subprocess.run([exe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PREWARM_CONFIG": ""})
        assert done.returncode == 0, f"prewarm {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        outputs[args[0]] = done.stdout
    assert outputs["forecast"].startswith("chat: select") and "from (UTC)" in outputs["forecast"]
    assert len(outputs["forecast"].splitlines()) < 40  # a 6-hour forecast fits on a screen
    assert outputs["plan"].startswith("chat: ")
    assert "warm" in outputs["explain"] and "None" not in outputs["explain"]


def test_readme_shell_completion_line_works():
    import os
    import subprocess
    import sys

    line = README.split("Shell completion", 1)[1].split("```sh", 1)[1].split("```", 1)[0].strip()
    assert line == 'eval "$(_PREWARM_COMPLETE=bash_source prewarm)"'
    exe = os.path.join(os.path.dirname(sys.executable), "prewarm")
    out = subprocess.run([exe], env={**os.environ, "_PREWARM_COMPLETE": "bash_source"}, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "_prewarm_completion" in out.stdout
