"""The one table layer: every table the tool prints for people is laid out here.

The contract, the same for every command:

- **Width.** A valid ``COLUMNS`` (a whole number of at least ``MIN_WIDTH``) is the width; else a
  terminal's own width; a pipe or a file has no width limit, so it gets every column and every
  digit, one line per row. ``COLUMNS=0``, a negative number or text is not a width and falls back
  the same way (the terminal's width, or no limit).
- **Narrow.** When the table is wider than the width, whole detail columns are hidden in the
  order their ``hide`` declares (1 first, then 2, ...), and a note under the table names them.
  Then text that may break (``fold``: names, paths, sentences) breaks between words, and a word
  too long for its column after ``-``, ``/``, ``,``, ``:``, ``=`` or ``_``. A number is never cut and never replaced by an ellipsis: if the table
  still does not fit, its lines are longer than the width and the terminal wraps them.
- **Look.** One style: no outer border, a header, a rule under it, columns two spaces apart.
  No line ends with a space.

Cells are strings or rich ``Text`` (for colour); a table is printed through a rich Console.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Sequence

MIN_WIDTH = 20  # a COLUMNS below this is not a usable width (0, negative, nonsense): fall back
DEFAULT_WIDTH = 80  # for sentences when nothing says how wide the output is
GAP = "  "  # between two columns
_WORD = re.compile(r"(?<= )(?=\S)")  # text of a fold column breaks between words,
_BREAK = re.compile(r"(?<=[-/,:=_])")  # and a word too long for the column after one of these


@dataclass(frozen=True)
class Column:
    """One column: its header (``\\n`` for more lines), alignment, when it hides, whether it folds.

    ``hide`` 0: always shown; 1, 2, ...: hidden on a narrow terminal, 1 first. ``group``: a label
    (``\\n`` for more lines) shown above the first visible column of a run of columns with the same
    group (a model's columns in ``gradients``). ``width``: the least width (a bar's)."""

    header: str
    justify: str = "right"
    hide: int = 0
    fold: bool = False
    group: str | None = None
    width: int = 0


def requested_width(stream=None) -> int | None:
    """The width to lay tables out in: a valid COLUMNS, else a terminal's width, else None (no limit)."""
    text = os.environ.get("COLUMNS", "").strip()
    if text.isdigit() and int(text) >= MIN_WIDTH:
        return int(text)
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            columns = os.get_terminal_size(stream.fileno()).columns
            return columns if columns >= MIN_WIDTH else DEFAULT_WIDTH
    except (AttributeError, OSError, ValueError):
        pass
    return None


def text_width(stream=None) -> int:
    """The width sentences wrap at: the table width, or ``DEFAULT_WIDTH`` where there is no limit."""
    return requested_width(stream) or DEFAULT_WIDTH


def _text(cell):
    from rich.text import Text

    return cell.copy() if isinstance(cell, Text) else Text(str(cell))


def _pieces(plain: str, width: int) -> list[str]:
    """``plain`` cut into the pieces a line may end after: words (with their space), and a word
    longer than ``width`` also after a ``-``, ``/``, ``,``, ``:``, ``=`` or ``_``."""
    pieces = []
    for word in _WORD.split(plain):
        pieces += _BREAK.split(word) if len(word.rstrip()) > width else [word]
    return [piece for piece in pieces if piece]


def _fold(text, width: int) -> list:
    """``text`` (a rich Text) in lines of at most ``width`` cells, broken only between pieces
    (``_pieces``); a piece longer than ``width`` stays whole. No line ends with a space."""
    lines, start, length, cut = [], 0, 0, 0
    for piece in _pieces(text.plain, width):
        if length and length + len(piece.rstrip()) > width:
            lines.append(text[start:cut])
            start, length = cut, 0
        cut += len(piece)
        length += len(piece)
    lines.append(text[start:cut])
    for line in lines:
        line.rstrip()
    return lines


class Layout:
    """The lines of a table at a width (None: no limit), and the columns hidden to fit."""

    def __init__(self, columns: Sequence[Column], rows: Sequence[Sequence], width: int | None):
        self.columns = list(columns)
        self.rows = [[_text(cell) for cell in row] for row in rows]
        levels = sorted({c.hide for c in self.columns if c.hide})
        self.level = 0
        for level in [0, *levels]:
            self.level = level
            if width is None or self._natural_width(self._shown(level)) <= width:
                break
        self.shown = self._shown(self.level)
        self.hidden = [c for i, c in enumerate(self.columns) if i not in self.shown]
        self.widths = self._fit(self._widths(self.shown), width)

    def _shown(self, level: int) -> list[int]:
        return [i for i, c in enumerate(self.columns) if not (c.hide and c.hide <= level)]

    def _cell_width(self, i: int, first_of_group: bool = False) -> int:
        column = self.columns[i]
        lines = column.header.split("\n") + (column.group.split("\n") if first_of_group and column.group else [])
        return max([*(len(line) for line in lines), column.width, *(row[i].cell_len for row in self.rows)])

    def _widths(self, shown: list[int]) -> list[int]:
        """Each shown column's natural width; a group's label counts in its first shown column."""
        groups = [self.columns[i].group for i in shown]
        return [self._cell_width(i, n == 0 or groups[n] != groups[n - 1]) for n, i in enumerate(shown)]

    def _natural_width(self, shown: list[int]) -> int:
        return sum(self._widths(shown)) + len(GAP) * (len(shown) - 1)

    def _fit(self, widths: list[int], width: int | None) -> list[int]:
        """Narrow the fold columns (widest first) until the table fits or none can narrow more."""
        if width is None:
            return widths
        folds = [n for n, i in enumerate(self.shown) if self.columns[i].fold]
        excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
        while excess > 0 and folds:
            n = max(folds, key=lambda k: widths[k])
            floor = max(8, max((len(line) for line in self.columns[self.shown[n]].header.split("\n")), default=0))
            if widths[n] <= floor:
                folds.remove(n)
                continue
            step = min(excess, widths[n] - floor)
            widths[n] -= step
            excess -= step
        # what a fold column really takes once broken (a piece never breaks inside)
        for n, i in enumerate(self.shown):
            if self.columns[i].fold:
                widths[n] = max([len(line) for line in self.columns[i].header.split("\n")]
                                + [line.cell_len for row in self.rows for line in _fold(row[i], widths[n])])
        return widths

    def lines(self, unicode: bool = True) -> list:
        from rich.text import Text

        header = self._header_lines()
        out = []
        if header:
            out += header
            out.append(Text(("─" if unicode else "-") * (sum(self.widths) + len(GAP) * (len(self.widths) - 1))))
        for row in self.rows:
            cells = []
            for n, i in enumerate(self.shown):
                cell = row[i]
                cells.append(_fold(cell, self.widths[n]) if self.columns[i].fold else [cell])
            for k in range(max(len(c) for c in cells) if cells else 0):
                out.append(self._join([c[k] if k < len(c) else Text("") for c in cells]))
        return out

    def _header_lines(self) -> list:
        from rich.text import Text

        stacks, previous = [], object()
        for i in self.shown:
            column = self.columns[i]
            above = column.group.split("\n") if column.group is not None and column.group != previous else []
            previous = column.group
            stacks.append(above + (column.header.split("\n") if column.header else []))
        depth = max((len(s) for s in stacks), default=0)
        if not any(any(line for line in s) for s in stacks):
            return []
        return [self._join([Text(([""] * (depth - len(s)) + s)[k]) for s in stacks]) for k in range(depth)]

    def _join(self, cells: list):
        from rich.text import Text

        line = Text()
        for n, (i, cell) in enumerate(zip(self.shown, cells)):
            pad = " " * max(0, self.widths[n] - cell.cell_len)
            if n:
                line.append(GAP)
            if self.columns[i].justify == "right":
                line.append(pad)
                line.append_text(cell)
            else:
                line.append_text(cell)
                line.append(pad)
        line.rstrip()
        return line


def say(console, text, style: str = "") -> None:
    """A sentence on ``console``, wrapped at its width with no space left at a line's end."""
    from rich.text import Text

    text = text if isinstance(text, Text) else Text(str(text), style=style)
    for line in text.wrap(console, console.width):
        line.rstrip()
        console.print(line, soft_wrap=True)


def _one_line(header: str) -> str:
    """A header of several lines on one: a line broken after a break character joins without a space."""
    return " ".join(re.sub(r"(?<=[-/,:=_])\n", "", header).split())


def hidden_note(columns: Sequence[Column]) -> str:
    names = ", ".join(dict.fromkeys(_one_line(f"{c.group or ''}\n{c.header}") for c in columns))
    return f"(narrow terminal: {names} hidden; widen it, or use --format json or csv for every column)"


def render(columns: Sequence[Column], rows: Sequence[Sequence], console=None, title=None,
           notes: Sequence = (), width: int | None = -1) -> Layout:
    """Print ``title``, the table, a note naming the hidden columns (if any) and ``notes`` on
    ``console`` (stdout's by default). ``width`` -1: ``requested_width()`` on stdout, the console's
    own width elsewhere; None: no limit. Returns the layout."""
    from rich.text import Text

    from lstm_cli.render import console as make_console, unicode_ok

    out = console or make_console()
    if width == -1:  # stdout: COLUMNS, the terminal or no limit; a console writing elsewhere: its width
        width = requested_width() if out.file is sys.stdout else out.width
    layout = Layout(columns, rows, width)
    if title is not None:
        title = title if isinstance(title, Text) else Text(title, style="bold")
        out.print(title, soft_wrap=True) if width is None else say(out, title)
    for line in layout.lines(unicode_ok(out.file)):
        out.print(line, soft_wrap=True, no_wrap=True, crop=False)
    if layout.hidden:
        say(out, hidden_note(layout.hidden), "dim")
    for note in notes:  # sentences: wrapped at the console's width (``text_width``)
        say(out, note, "dim")
    return layout
