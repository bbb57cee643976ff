"""The training heatmap below 256 colours: one glyph per decade, and a legend saying which
(render/train.py GlyphScale). xterm's 16 colours would show 0 and 1e-12 both as black."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lstm_cli.render import train as view


def _render(evaluations: list[dict]) -> str:
    result = {"status": "completed", "success": False, "task": "remember", "gap": 8, "model": "rnn", "seed": 0,
              "metric": "accuracy", "accuracy": 0.25, "criterion": "accuracy >= 0.99", "chance": 0.25,
              "steps": 10, "max_steps": 10, "evaluated_at": 10, "wall_time": 0.1, "run_dir": "runs/x"}
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=True)
    assert console.color_system == "standard"  # 16 colours: what TERM=xterm gets
    view.render_result(result, evaluations, console=console)
    return buffer.getvalue()


@pytest.fixture
def xterm(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    for name in ("COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def _heatmap_rows(text: str) -> dict[int, str]:
    """{steps back: the cells of its heatmap row} from rendered output (ANSI codes dropped)."""
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = plain.splitlines()
    start = next(i for i, line in enumerate(lines) if "steps back (rows) x training step" in line)
    rows = {}
    for line in lines[start + 1:]:
        match = re.match(r"^\s*(\d+) (.*)$", line)
        if not match:
            if rows:
                break
            continue
        rows[int(match.group(1))] = match.group(2)
    return rows


def test_distinct_decades_get_distinct_glyphs_under_xterm(xterm):
    # row k holds 10^-k in both columns: ten decades, 1 down to 1e-9
    rel = [10.0 ** -k for k in range(10)]
    text = _render([{"step": 0, "dh_rel": rel}, {"step": 10, "dh_rel": rel}])
    rows = _heatmap_rows(text)
    assert sorted(rows) == list(range(10))
    glyphs = {k: cells[0] for k, cells in rows.items()}
    assert all(cells == glyphs[k] * 2 for k, cells in rows.items())  # both columns alike
    assert len(set(glyphs.values())) == 10, glyphs  # one glyph per decade
    assert glyphs[0] == "@" and glyphs[9] == " "  # the top decade is "@", nine decades below it " "
    assert "█" not in "".join(rows.values())  # no colour blocks that 16 colours cannot tell apart
    # the legend names the glyph of every decade shown
    for k in range(1, 9):
        label = f"{10.0 ** -k:g}" if k < 3 else f"1e-{k}"
        assert f"{glyphs[k]}{label}" in text, (k, glyphs[k], label)
    assert '" " below 1e-8' in text


def test_zero_tiny_inf_and_nan_are_told_apart(xterm):
    rel = [1.0, 0.0, 1e-12, 1e-3, 0.01, float("inf"), float("nan")]
    text = _render([{"step": 0, "dh_rel": rel}, {"step": 10, "dh_rel": rel}])
    glyphs = {k: cells[0] for k, cells in _heatmap_rows(text).items()}
    assert glyphs[1] == "_" and glyphs[2] == " "  # 0 and 1e-12 differ (xterm colours: both black)
    assert glyphs[3] != glyphs[4]  # 1e-3 and 0.01 differ (xterm colours: one magenta)
    assert glyphs[5] == "!" and glyphs[6] == "?"
    assert '"_" 0, "!" inf, "?" nan' in text


def test_the_scale_follows_the_highest_decade():
    # an exploding gradient: 1e6 at the top, so "@" is 1e6..1e7 and " " everything below 1e-2
    scale = view.GlyphScale([1.0, 3e6, 5e-3])
    assert scale.top == 6
    assert scale.glyph(3e6) == "@" and scale.glyph(1.0) == "-" and scale.glyph(0.05) == "."
    assert scale.glyph(5e-3) == " "
    assert view.GlyphScale([0.5, 1e-30]).top == 0  # never below the answer step's decade


def test_256_colours_keep_the_colour_blocks(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("COLORTERM", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=True)
    assert console.color_system == "256"
    rel = [10.0 ** -k for k in range(4)]
    hm = view.heatmap({}, [{"step": 0, "dh_rel": rel}, {"step": 5, "dh_rel": rel}],
                      colour=console.color_system in view.COLOUR_SYSTEMS)
    console.print(hm)
    rows = _heatmap_rows(buffer.getvalue())
    assert rows and all(cells == "██" for cells in rows.values())
