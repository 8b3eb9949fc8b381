"""The README's two commands: CI runs exactly the test command, and both stay quiet in a venv."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = re.search(
    r"## The two commands\n(.*?)\n## ", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL
)


def _commands() -> list[str]:
    assert SECTION is not None
    block = re.search(r"```sh\n(.*?)```", SECTION.group(1), re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    main_job, tests = _commands()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()

    assert script[-1] == tests
    assert main_job.endswith("juniper-cascor-protocol demo")


def test_both_commands_ignore_an_active_venv_quietly_and_only_tests_ask_for_dev() -> None:
    main_job, tests = _commands()

    for command in (main_job, tests):
        assert "uv run --no-active " in command
    assert "--group dev" in tests
    assert "--group" not in main_job


def test_the_default_group_is_the_tool_alone() -> None:
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert workspace["tool"]["uv"]["default-groups"] == ["cli"]
    assert workspace["dependency-groups"]["cli"] == ["juniper-cascor-protocol-cli"]
