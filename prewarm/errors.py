"""Errors the CLI maps to exit codes (documented in the README): 1 runtime, 2 bad input."""
from __future__ import annotations


class PrewarmError(Exception):
    exit_code = 1


class ConfigError(PrewarmError):
    """A config file or setting is wrong. Message names the file, the key and what was expected."""

    exit_code = 2


class InputError(PrewarmError):
    """Bad user input: a CSV row, a flag, an endpoint name."""

    exit_code = 2


class StoreError(PrewarmError):
    """The database cannot be reached or refused a statement."""
