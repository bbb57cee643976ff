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


@pytest.mark.parametrize("argv, built", [
    (["gradients", "--gap", "3"], ["gradients"]),
    (["--verbose", "train", "--help"], ["train_command"]),
    (["run", "sweep"], ["run_command"]),  # the first word names the command, not an argument
])
def test_a_process_builds_only_the_command_it_runs(monkeypatch, argv, built):
    from lstm_cli import __main__ as entry
    from lstm_cli.cli import app

    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    monkeypatch.delenv("_LSTM_DEMO_COMPLETE", raising=False)
    entry._only_the_named_command(app, argv)
    assert [c.callback.__name__ for c in app.registered_commands] == built


@pytest.mark.parametrize("argv", [["--help"], [], ["gradient"], ["--version"]])
def test_with_no_command_named_the_help_is_the_same_without_the_options(monkeypatch, argv):
    """No command named: each command is built as its name and help only, and the top-level help
    (and a misspelt command's suggestions) are word for word those of the whole app."""
    from lstm_cli import __main__ as entry
    from lstm_cli.cli import app

    whole = [runner.invoke(app, args, env={"COLUMNS": "100"}) for args in (["--help"], ["gradient"])]
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    monkeypatch.delenv("_LSTM_DEMO_COMPLETE", raising=False)
    entry._only_the_named_command(app, argv)
    assert [c.name for c in app.registered_commands] == [
        "gradients", "scenarios", "run", "sweep", "train", "runs", "inspect", "report"]
    assert all(c.callback.__name__ == "<lambda>" for c in app.registered_commands)
    for args, expected in zip((["--help"], ["gradient"]), whole):
        result = runner.invoke(app, args, env={"COLUMNS": "100"})
        assert (result.exit_code, result.stdout, result.stderr) == (expected.exit_code, expected.stdout, expected.stderr)
    assert "Did you mean 'gradients'" in whole[1].stderr and "gradients" in whole[0].stdout


def test_shell_completion_sees_every_command(monkeypatch):
    from lstm_cli import __main__ as entry
    from lstm_cli.cli import app

    every = list(app.registered_commands)
    monkeypatch.setattr(app, "registered_commands", list(every))
    monkeypatch.setenv("_LSTM_DEMO_COMPLETE", "complete_bash")
    entry._only_the_named_command(app, ["gradients"])
    assert app.registered_commands == every
