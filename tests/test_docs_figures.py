"""docs/figures.md: the commands that made the committed figures still run (at reduced size), and
the figures are small valid PNGs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "figures.md"
# what makes each full-size command quick enough for the suite; later options win over earlier ones
REDUCED = {
    "train": ["--steps", "20", "--eval-every", "10", "--eval-size", "16"],
    "sweep": ["--set", "seed=0", "--set", "gap=5,10", "--set", "train.steps=20", "--set", "train.eval_size=16",
              "--jobs", "1"],
    "run": ["--set", "train.steps=20", "--set", "train.eval_size=16"],
}


def figure_blocks() -> list[list[list[str]]]:
    """The ``lstm-demo ...`` lines of each of the page's ``sh`` blocks, as argument lists: a block's
    lines without --plot make what its --plot line draws (inspect needs a trained run)."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)
    return [[shlex.split(line)[1:] for line in block.splitlines() if line.startswith("lstm-demo ")] for block in blocks]


def figure_commands() -> list[list[str]]:
    """The commands that draw a figure (--plot)."""
    return [args for block in figure_blocks() for args in block if "--plot" in args]


def test_the_page_names_a_command_for_every_committed_figure():
    commands = figure_commands()
    plotted = {args[args.index("--plot") + 1] for args in commands}
    committed = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.png")}
    assert plotted == committed and len(commands) == len(plotted) >= 3
    for png in committed:
        assert f"]({Path(png).name})" in PAGE.read_text(), f"{png} is not shown on the page"


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "docs").glob("*.png")))
def test_committed_figures_are_small_pngs(name):
    data = (ROOT / "docs" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 150_000


@pytest.mark.parametrize("block", [b for b in figure_blocks() if any("--plot" in args for args in b)],
                         ids=lambda block: " ".join(next(a for a in block if "--plot" in a)[:3]))
def test_the_commands_still_run(block, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)  # records go to ./runs here
    (tmp_path / "docs").mkdir()
    for args in block:
        result = CliRunner().invoke(app, [*args, *REDUCED.get(args[0], [])])
        assert result.exit_code == 0, result.stderr
        if "--plot" in args:
            target = args[args.index("--plot") + 1]
            assert (tmp_path / target).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"lstm-demo: plot written to {target}" in result.stderr
