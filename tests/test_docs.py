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
