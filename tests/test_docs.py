"""The README keeps up with the code: every command, option-bearing section and config key."""

from __future__ import annotations

from pathlib import Path

from listener.cli import cli
from listener.config import REFERENCE, config_reference

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_command_is_documented():
    for name in cli.commands:
        assert f"`listener {name}" in README, f"command {name} missing from the README"


def test_every_config_key_is_documented():
    for section, keys in REFERENCE.items():
        for key in keys:
            assert f"`{key}`" in README, f"{section}.{key} missing from the README"


def test_configuration_reference_is_in_step_with_the_code():
    reference = config_reference()
    tables = reference.split("\n### ", 1)[1]  # everything after the heading and intro
    assert tables in README, "regenerate the README's configuration reference from listener.config.config_reference()"


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help and command.help.strip(), f"listener {name} has no --help text"
