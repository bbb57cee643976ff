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
    return any((path / name).exists() for name in RECORD_FILES)


def _subdirectories(listing: Listing, path: Path, root: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as err:
        listing.problems.append(f"{_shown(path, root)}: cannot read the directory: {err.strerror or err}")
        return []
    return [Path(entry.path) for entry in entries if not entry.name.startswith(".") and entry.is_dir()]


def _walk(listing: Listing, path: Path, root: Path, depth: int) -> None:
    for child in _subdirectories(listing, path, root):
        name = _shown(child, root)
        if _is_run(child):
            _add_run(listing, child, name)
        elif depth < MAX_DEPTH and ((child / SWEEP_FILE).exists() or _holds_runs(child)):
            _walk(listing, child, root, depth + 1)
        else:
            listing.problems.append(f"{name}: not a run record (no {', '.join(RECORD_FILES)}) "
                                    f"and no run records inside")


def _holds_runs(path: Path) -> bool:
    try:
        return any(entry.is_dir() and _is_run(Path(entry.path)) for entry in os.scandir(path))
    except OSError:
        return False


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path != root else path.name


def _add_run(listing: Listing, run_dir: Path, name: str) -> None:
    result, problem = _read(run_dir / "result.json", json.loads)
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
    made = (config or {}).get("provenance") or {}
    source = result if result is not None else config
    model = source.get("model")
    if isinstance(model, dict):  # config.yaml holds the model's fields
        from lstm_cli.models import ModelSpec

        try:
            model = ModelSpec(**model).label()
        except (TypeError, ValueError, LstmDemoError):  # fields of another version: the kind at least
            model = model.get("kind")
    metric = (result or {}).get("metric")
    listing.rows.append({
        "name": name, "status": _status(result, made), "task": source.get("task"), "gap": source.get("gap"),
        "model": model, "seed": source.get("seed"), "metric": metric,
        "value": (result or {}).get(metric) if metric else None, "success": (result or {}).get("success"),
        "steps": (result or {}).get("steps"), "wall_time": (result or {}).get("wall_time"),
        "made": made.get("start_time"),
    })


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _read(path: Path, parse) -> tuple[dict | None, str | None]:
    """(the file's mapping, None), (None, None) when it does not exist, (None, problem) when unreadable."""
    if not path.exists():
        return None, None
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot read {path.name}: {getattr(err, 'strerror', None) or err}"
    except Exception as err:  # noqa: BLE001 - any parser's complaint: the file is not what a record holds
        return None, f"{path.name} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: " \
                     f"{' '.join(str(err).split())[:120]}"
    if not isinstance(data, dict):
        return None, f"{path.name} does not hold a record (a {type(data).__name__}, not a mapping)"
    return data, None


def _status(result: dict | None, made: dict) -> str:
    if result is None:
        return "no result"
    status = str(result.get("status"))
    if status == "running" and made.get("hostname") == socket.gethostname() and not _alive(made.get("pid")):
        return "abandoned"
    return status


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host (True when it cannot be told)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True
