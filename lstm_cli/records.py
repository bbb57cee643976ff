"""The run records under a directory, one row each: what ``lstm-demo runs`` lists.

A directory is a *run* when it holds a file of a record (result.json,
config.yaml, metrics.jsonl), and a *group* when it holds runs (a sweep's
``runs/<scenario>/``, with or without its sweep.json); groups are searched
``MAX_DEPTH`` levels deep. Anything else is reported as a problem, one line
each, as is a record whose result.json or config.yaml cannot be read: a
listing never stops at a foreign or broken directory.

Each row: ``name`` (the path below the listed directory), ``status``, ``task``,
``gap``, ``model``, ``seed``, ``metric`` and its ``value``, ``success``,
``steps``, ``wall_time`` (seconds) and ``made`` (the run's start time, UTC,
from the provenance in config.yaml; None for a record made before it was kept).

``status`` is result.json's ("running", "completed", "diverged",
"interrupted", "failed"), with two more: "no result" (config.yaml but no
result.json: stopped before it was written) and "abandoned" (result.json says
running, but the process that wrote it, on this host by its provenance, no
longer exists: killed, crashed or rebooted).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_cli.errors import BadInput, LstmDemoError

RECORD_FILES = ("result.json", "config.yaml", "metrics.jsonl")
SWEEP_FILE = "sweep.json"
MAX_RECORD_BYTES = 64 << 20  # result.json holds a few lists of one number per time step
MAX_DEPTH = 3  # runs/<scenario>/<key>/ is two levels; one more for an --out inside runs/
FIELDS = ["name", "status", "task", "gap", "model", "seed", "metric", "value", "success", "steps",
          "wall_time", "made"]


@dataclass
class Listing:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per directory that is not a readable run


def list_records(directory: Path) -> Listing:
    """Every run record under ``directory`` (or ``directory`` itself when it is one), by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such directory (train and sweep keep their records in runs/ "
                       f"or --out)")
    listing = Listing()
    if _is_run(directory):
        _add_run(listing, directory, directory.name)
    else:
        _walk(listing, directory, directory, 1)
    listing.rows.sort(key=lambda row: row["name"])
    return listing


def _is_run(path: Path) -> bool:
    """Whether ``path`` holds a file of a record (OSError when it cannot be told: mode 000, a loop)."""
    return any(os.path.lexists(path / name) for name in RECORD_FILES)


def _subdirectories(listing: Listing, path: Path, root: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as err:
        listing.problems.append(f"{_shown(path, root)}: cannot read the directory: {err.strerror or err}")
        return []
    found = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                found.append(Path(entry.path))
        except OSError as err:  # a symbolic link loop, a link into a directory we may not enter
            listing.problems.append(f"{_shown(Path(entry.path), root)}: {err.strerror or err}")
    return found


def _walk(listing: Listing, path: Path, root: Path, depth: int) -> None:
    for child in _subdirectories(listing, path, root):
        name = _shown(child, root)
        try:
            if _is_run(child):
                _add_run(listing, child, name)
            elif depth < MAX_DEPTH and (os.path.lexists(child / SWEEP_FILE) or _holds_runs(child)):
                _walk(listing, child, root, depth + 1)
            else:
                listing.problems.append(f"{name}: not a run record (no {', '.join(RECORD_FILES)}) "
                                        f"and no run records inside")
        except OSError as err:  # one entry that cannot be read (mode 000, a loop): the listing goes on
            listing.problems.append(f"{name}: cannot read it: {err.strerror or err}")


def _holds_runs(path: Path) -> bool:
    try:
        return any(entry.is_dir() and _is_run(Path(entry.path)) for entry in os.scandir(path))
    except OSError:
        return False


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path != root else path.name


def _add_run(listing: Listing, run_dir: Path, name: str) -> None:
    result, problem = _read(run_dir / "result.json", _json)
    if problem:
        listing.problems.append(f"{name}: {problem}")
        return
    config, problem = _read(run_dir / "config.yaml", _yaml)
    if problem and result is None:
        listing.problems.append(f"{name}: {problem}")
        return
    if result is None and config is None:
        listing.problems.append(f"{name}: neither result.json nor config.yaml (only metrics.jsonl)")
        return
    made = _mapping((config or {}).get("provenance"))  # a foreign record may hold anything here
    source = result if result is not None else config
    result = result or {}
    metric = result.get("metric")
    metric = metric if isinstance(metric, str) and metric else None
    listing.rows.append({
        "name": name, "status": _status(result if source is result else None, made),
        "task": _plain(source.get("task")), "gap": _plain(source.get("gap")),
        "model": _model(source.get("model")), "seed": _plain(source.get("seed")), "metric": metric,
        "value": _plain(result.get(metric)) if metric else None, "success": _plain(result.get("success")),
        "steps": _plain(result.get("steps")), "wall_time": _plain(result.get("wall_time")),
        "made": _plain(made.get("start_time")),
    })


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    """A field as JSON can hold it: numbers, strings, booleans, None, and lists and mappings of
    them kept as they are; anything else YAML can make (a date, a set) as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return str(value)
    return value


def _model(model: Any) -> Any:
    """result.json names the model by its label; config.yaml holds its fields."""
    if not isinstance(model, dict):
        return _plain(model)
    from lstm_cli.models import ModelSpec

    try:
        return ModelSpec(**model).label()
    except (TypeError, ValueError, OverflowError, LstmDemoError):  # fields of another version: the kind at least
        return _plain(model.get("kind"))


def _json(data: bytes) -> Any:
    return json.loads(data)


# What a row takes from config.yaml: of provenance only these three (it holds the whole argv too).
LISTED = {"provenance": ("start_time", "hostname", "pid"), "task": None, "gap": None, "model": None, "seed": None}


def _yaml(data: bytes) -> Any:
    """The parts of config.yaml that a row needs (``LISTED``), built from libyaml's node tree: the
    other values of a config are never constructed in Python, which was most of the listing's time."""
    import yaml

    from lstm_cli.files import MAX_DEPTH, nesting_depth, yaml_loader

    text = data.decode("utf-8")
    # flow brackets can nest a million deep in 1 MiB (libyaml's composer recurses); block nesting
    # needs n^2 bytes for n levels, so a small file with few brackets cannot be deep
    may_be_deep = text.count("[") + text.count("{") > MAX_DEPTH or len(text) > 1 << 16
    if may_be_deep and nesting_depth(text, fast=True) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    loader = yaml_loader()(text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            return loader.construct_document(node) if node is not None else None
        found = {}
        for key, value in node.value:
            if not (isinstance(key, yaml.ScalarNode) and key.value in LISTED):
                continue
            inner = LISTED[key.value]
            if inner is not None and isinstance(value, yaml.MappingNode):
                value = yaml.MappingNode(value.tag, [(k, v) for k, v in value.value
                                                     if isinstance(k, yaml.ScalarNode) and k.value in inner])
            found[key.value] = loader.construct_object(value, deep=True)
        return found
    finally:
        loader.dispose()


def _read(path: Path, parse) -> tuple[dict | None, str | None]:
    """(the file's mapping, None), (None, None) when it does not exist, (None, problem) when unreadable
    (a FIFO or device is refused at once, a file over the size limit by its size)."""
    from lstm_cli.files import file_problem, read_regular

    try:
        data = read_regular(path, MAX_RECORD_BYTES)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, file_problem(Path(path.name), err)
    try:
        data = parse(data)
    except UnicodeDecodeError as err:
        return None, f"cannot read {path.name}: {err}"
    except Exception as err:  # noqa: BLE001 - any parser's complaint: the file is not what a record holds
        return None, f"{path.name} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: " \
                     f"{' '.join(str(err).split())[:120]}"
    if not isinstance(data, dict):
        return None, f"{path.name} does not hold a record (a {type(data).__name__}, not a mapping)"
    return data, None


def _status(result: dict | None, made: dict) -> str:
    if result is None:
        return "no result"
    status = str(_plain(result.get("status")))
    if status == "running" and made.get("hostname") == socket.gethostname() and not _alive(made.get("pid")):
        return "abandoned"
    return status


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host (True when it cannot be told)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return True
    if pid >= 1 << 31:  # no process has it (os.kill would raise OverflowError)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True
