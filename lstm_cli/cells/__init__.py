"""The recurrent cells, one module per kind, and the registry that names them.

Each module defines one ``Cell`` (``cells/base.py``) that carries everything
the rest of the tool asks of its kind: its gates and parameter shapes, its
init, the fast forward and backward and their plain reference, its torch
mapping, the exact split of each step back into named causes with the words
that explain it, its direct path, and its memory per sequence step. Nothing
outside this package dispatches on a kind's name: it looks the cell up here.

Adding a kind is one module and one line in ``REGISTRY`` (docs/contributing.md).
This file imports no numpy, so the command line can list the kinds without it;
a cell's module is imported the first time it is asked for.
"""

from __future__ import annotations

import importlib

# kind name -> its module in this package, in the order the tool lists them
REGISTRY: dict[str, str] = {
    "rnn": "rnn",
    "lstm": "lstm",
    "gru": "gru",
    "indrnn": "indrnn",
}
NAMES = tuple(REGISTRY)


def get(kind: str):
    """The ``Cell`` of ``kind`` (a name of ``REGISTRY``); KeyError for any other name."""
    return importlib.import_module(f"{__name__}.{REGISTRY[kind]}").CELL


def every() -> list:
    """Every registered cell, in the registry's order."""
    return [get(kind) for kind in NAMES]


def taking(setting: str) -> tuple[str, ...]:
    """The kinds that take model setting ``setting`` (e.g. "activation": the kinds with a choice of it)."""
    return tuple(kind for kind in NAMES if setting in get(kind).settings)
