"""Finding the bundled scenarios (by name) and their one-line descriptions."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from lstm_cli.config import did_you_mean
from lstm_cli.scenario.yamlio import Loader, ScenarioError


# ---- bundled scenarios ----

def bundled_dir() -> Path | None:
    """The bundled ``scenarios/`` directory: next to the package (a source checkout or an
    editable install) or installed as data files with a wheel (``<prefix>/share/lstm-demo/``);
    None when there is neither."""
    import sys

    here = Path(__file__).resolve().parent.parent  # the lstm_cli package
    for candidate in (here / "scenarios", here.parent / "scenarios",
                      Path(sys.prefix) / "share" / "lstm-demo" / "scenarios"):
        if candidate.is_dir():
            return candidate
    return None


def bundled() -> list[tuple[str, Path, str]]:
    """(name, path, one-line description) of every bundled scenario, by name."""
    folder = bundled_dir()
    if folder is None:
        return []
    out = []
    for path in sorted(folder.glob("*.yaml")):
        out.append((path.stem, path, describe(path)))
    return out


def describe(path: Path) -> str:
    """A scenario's ``description:`` line, read without validating the whole file."""
    from lstm_cli.files import read_regular

    try:
        node = yaml.compose(read_regular(path).decode("utf-8"), Loader=Loader)
    except (OSError, ValueError, yaml.YAMLError):
        return "(unreadable)"
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == "description" \
                    and isinstance(vnode, yaml.ScalarNode):
                return " ".join(str(vnode.value).split())
    return ""


def resolve_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else the bundled scenario of that name."""
    path = Path(name_or_path)
    try:
        if path.exists():
            return path
    except OSError as err:  # a name over 255 bytes, a path through a file: bad input, not a failed run
        shown = str(name_or_path) if len(str(name_or_path)) <= 80 else str(name_or_path)[:77] + "..."
        raise ScenarioError([f"{shown}: {err.strerror or err} ({len(os.fsencode(str(name_or_path)))} bytes; "
                             f"a file name has at most 255)"]) from None
    folder = bundled_dir()
    if folder is not None and path.suffix == "" and len(path.parts) == 1:
        candidate = folder / f"{path.name}.yaml"
        if candidate.exists():
            return candidate
    names = [n for n, _, _ in bundled()]
    hint = did_you_mean(path.stem, names) if names else ""
    raise ScenarioError([f"{name_or_path}: no such scenario file or bundled scenario{hint}"
                         + (f"; bundled: {', '.join(names)}" if names else "")])
