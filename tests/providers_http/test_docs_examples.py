"""Each provider page's TOML example is a valid `[[endpoints]]` entry for that provider."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from prewarm.providers import registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers"


@pytest.mark.parametrize("kind", ["runpod", "hf-endpoints", "modal", "replicate", "baseten", "kubernetes"])
def test_config_example_validates(kind):
    text = (DOCS / f"{kind}.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    endpoint = tomllib.loads(block)["endpoints"][0]
    config = registry.validate_config(kind, endpoint["provider"])
    assert config.kind == kind
