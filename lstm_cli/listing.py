"""Filter, sort, show and compare run records: what ``lstm-demo runs`` does with the rows of
``records.list_records`` and with the files of one record.

- ``natural_key``: names sort with their numbers as numbers (gap=10 < gap=20 < gap=100,
  seed0-run2 < seed0-run10), as ``records`` lists them.
- ``select``: ``KEY=VALUE`` filters, all of which must hold; KEY is a field of the listing
  (``records.FIELDS``) or a setting of config.yaml (``setting_keys``: model.forget_bias, lr);
  a number matches as a number (gap=50 matches 50.0), ``success`` takes yes/no, and a VALUE
  with ``*``, ``?`` or ``[`` is a shell pattern (name=exploding/*).
- ``sort_rows``: by one field (``-KEY``: descending), naturally, missing values last.
- ``show``: one record in four sections: settings (config.yaml), outcome (result.json),
  provenance (where, when and with what it was made) and the gradient summary.
- ``compare``: the same sections for several records side by side, settings only where
  they differ.
"""

from __future__ import annotations

import fnmatch
import math
import re
from pathlib import Path
from typing import Any

from lstm_cli import records, rundir, runs
from lstm_cli.errors import BadInput

SECTIONS = ("outcome", "settings", "gradient", "provenance")  # what happened first
# config.yaml's keys that are not settings: the record's own name and what describes where it was made
NOT_SETTINGS = ("name", "version", "numpy_version", "provenance", "sequence_length", "criterion", "chance")
OUTCOME = ("status", "success", "metric", "value", "criterion", "chance", "steps", "max_steps", "evaluated_at",
           "diverged_at", "diverged_loss", "diverged_grad_norm", "heldout_loss", "train_loss", "wall_time",
           "error", "clipping")
GRADIENT_LISTS = ("steps_back", "dh_rel_before", "dh_rel", "dc_rel_before", "dc_rel")  # one number per step: in result.json
YES, NO = ("yes", "true", "1"), ("no", "false", "0")


def natural_key(value: Any) -> tuple:
    """A sort key that orders the numbers inside a text by value, path part by path part:
    ``gap=10 < gap=20 < gap=100``, ``a/x < a-run2/x``."""
    def part_key(part: str) -> tuple:
        pieces = re.split(r"(\d+(?:\.\d+)?)", part)
        return tuple((0, float(p), p) if i % 2 else (1, 0.0, p.casefold()) for i, p in enumerate(pieces))

    return tuple(part_key(part) for part in str(value).split("/"))


def setting_keys() -> list[str]:
    """The settings of config.yaml that ``--where`` and ``--sort`` take beside the listing's fields, as
    ``runs show`` names them (dotted: ``model.forget_bias``); a name the listing has is the listing's
    (``steps``: the steps taken, not the budget)."""
    from lstm_cli.train import TrainConfig

    flat = _flat({k: v for k, v in TrainConfig().resolved().to_dict().items() if k not in NOT_SETTINGS})
    return [key for key in flat if key not in records.FIELDS]


def _keys_text() -> str:
    return f"{', '.join(records.FIELDS)}; or a setting: {', '.join(setting_keys())}"


def _parse(expression: str, what: str) -> tuple[str, str]:
    key, sep, value = expression.partition("=")
    if not sep or not key.strip():
        raise BadInput(f"{what} {expression!r}: write KEY=VALUE (keys: {_keys_text()})")
    return key.strip(), value.strip()


def _check_key(key: str, what: str) -> None:
    if key not in records.FIELDS and key not in setting_keys():
        raise BadInput(f"{what}: unknown key {key!r}; keys: {_keys_text()}")


def _getter(root: Path | None):
    """``get(row, key)``: a field of the row, or a setting read from the run's config.yaml (once per row)."""
    settings: dict[int, dict] = {}

    def get(row: dict, key: str) -> Any:
        if key in records.FIELDS or root is None:
            return row.get(key)
        if id(row) not in settings:
            run_dir = Path(root) if runs.has_record(Path(root)) else Path(root) / row["name"]
            config = rundir.read_config(run_dir) or {}
            settings[id(row)] = _flat({k: v for k, v in config.items() if k not in NOT_SETTINGS})
        return settings[id(row)].get(key)

    return get


def _matches(actual: Any, wanted: str) -> bool:
    if isinstance(actual, bool) or actual is None:
        text = {True: "yes", False: "no", None: "-"}[actual]
        return wanted.lower() in {"yes": YES, "no": NO, "-": ("-", "none", "")}[text]
    if any(c in wanted for c in "*?["):
        return fnmatch.fnmatchcase(str(actual), wanted)
    if isinstance(actual, (int, float)):
        try:
            return float(actual) == float(wanted)
        except ValueError:
            return False
    return str(actual) == wanted


def select(rows: list[dict], filters: list[str], root: str | Path | None = None) -> list[dict]:
    """The rows for which every ``KEY=VALUE`` of ``filters`` holds (BadInput naming the valid keys); a
    setting key is read from each run's config.yaml under ``root`` (the listed directory)."""
    parsed = [_parse(f, "--where") for f in filters]
    for key, _ in parsed:
        _check_key(key, "--where")
    get = _getter(root)
    return [row for row in rows if all(_matches(get(row, key), value) for key, value in parsed)]


def sort_rows(rows: list[dict], key: str | None, root: str | Path | None = None) -> list[dict]:
    """``rows`` by ``key`` (``-key``: descending), naturally; rows without a value last; ties by name."""
    by_name = sorted(rows, key=lambda row: natural_key(row["name"]))
    if not key:
        return by_name
    descending = key.startswith("-")
    field = key.lstrip("-")
    _check_key(field, "--sort")
    get = _getter(root)

    def value_key(row: dict) -> tuple:
        value = get(row, field)
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
            return (0, float(value), ())  # a bool too: no < yes
        return (0, 0.0, natural_key(value))

    present = sorted((row for row in by_name if get(row, field) is not None), key=value_key, reverse=descending)
    return present + [row for row in by_name if get(row, field) is None]  # sorted() is stable: ties by name


def locate(run: str | Path, directory: str | Path = "runs") -> Path:
    """The run directory ``run`` names: a path to it, or its name below ``directory`` (as listed)."""
    for candidate in (Path(run), Path(directory) / run):
        if candidate.is_dir() and runs.has_record(candidate):
            return candidate
    raise BadInput(f"{run}: not a run record (no {', '.join(records.RECORD_FILES)} there nor in "
                   f"{Path(directory) / run}); lstm-demo runs lists the records")


def _flat(mapping: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def show(run: str | Path, directory: str | Path = "runs") -> dict[str, Any]:
    """One record: {"name", "run_dir", "settings", "outcome", "provenance", "gradient"}, each section a
    flat mapping (dotted keys). A file that is missing or unreadable leaves its sections empty."""
    run_dir = locate(run, directory)
    listing = records.list_records(run_dir)
    if not listing.rows:
        raise BadInput(f"{run}: {'; '.join(listing.problems) or 'not a readable run record'}")
    row = listing.rows[0]
    result = rundir.read_result(run_dir) or {}
    config = rundir.read_config(run_dir) or {}
    settings = _flat({k: v for k, v in config.items() if k not in NOT_SETTINGS})
    outcome = {"status": row["status"], "success": row["success"], "metric": row["metric"], "value": row["value"]}
    outcome.update(_flat({k: result[k] for k in OUTCOME if k in result and k not in outcome}))
    made = config.get("provenance") if isinstance(config.get("provenance"), dict) else {}
    provenance = {"version": result.get("version", config.get("version")), **_flat(made)}
    gradient = result.get("gradient") if isinstance(result.get("gradient"), dict) else {}
    gradient = _flat({k: v for k, v in gradient.items() if k not in GRADIENT_LISTS})
    return {"name": str(run), "run_dir": str(run_dir), "settings": settings, "outcome": outcome,
            "provenance": provenance, "gradient": gradient}


def compare(runs_given: list[str], directory: str | Path = "runs") -> dict[str, Any]:
    """Several records side by side: {"runs": [{"name", "run_dir"}], "settings": {key: [value per run]}
    (only the keys whose values differ), "same_settings": [keys alike in every run], "outcome" and
    "gradient": {key: [value per run]}}."""
    if len(runs_given) < 2:
        raise BadInput(f"runs compare needs two runs or more, got {len(runs_given)}")
    shown = [show(run, directory) for run in runs_given]

    def side_by_side(section: str) -> dict[str, list]:
        keys = list(dict.fromkeys(key for one in shown for key in one[section]))
        return {key: [one[section].get(key) for one in shown] for key in keys}

    settings = side_by_side("settings")
    differ = {key: values for key, values in settings.items() if any(v != values[0] for v in values)}
    return {"runs": [{"name": one["name"], "run_dir": one["run_dir"]} for one in shown],
            "settings": differ, "same_settings": [key for key in settings if key not in differ],
            "outcome": side_by_side("outcome"), "gradient": side_by_side("gradient")}
