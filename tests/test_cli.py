"""The command line as a whole: every command documented, the error boundary, the version."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lstm_cli import __version__
from lstm_cli.cli import app

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)
ROOT = Path(__file__).resolve().parent.parent
# the README is rewritten from docs/: a command documented in a docs page counts
README = "\n".join(page.read_text() for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_the_commands_are_the_documented_eight():
    assert COMMANDS == ["gradients", "inspect", "report", "run", "runs", "scenarios", "sweep", "train"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    examples = result.stdout.split("Examples:", 1)
    assert len(examples) == 2 and f"lstm-demo {command} " in examples[1]  # an example in the help
    assert f"`lstm-demo {command}" in README  # and in the README's tour (or a docs page)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"lstm-demo {__version__}"


@pytest.mark.parametrize("args", [["nope"], ["gradients", "--no-such-option"], ["train", "--steps"]])
def test_usage_errors_are_one_line_with_exit_2(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in result.stderr
