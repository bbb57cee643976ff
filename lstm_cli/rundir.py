"""One run's record on disk: its files, their names and reading them back.

    <out>/<name>/
        config.yaml      every resolved setting, the seed and the package version
        metrics.jsonl    one JSON object per evaluation, appended as training goes
        result.json      the result record: status, success, final metrics, steps, wall time
        checkpoint.npz   the parameters under PyTorch's names plus what rebuilds the model
    <out>/.<name>.lock   held (flock) by the one process writing the record

``result.json``'s ``status`` is one of ``STATUSES``: "running" while the run
goes, then "completed" (ran to the end of its budget or stopped early on
success: see ``success``), "diverged" (the loss or the gradient became NaN or
inf; ``diverged_at`` names the step), "interrupted" (Ctrl-C) or "failed" (the
run raised, e.g. the disk is full; ``error`` says why). Readers here never
raise on a broken file: they return None (or no rows), and a torn last line of
metrics.jsonl is ignored. The writer is ``runs.run_training``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, TypedDict

from lstm_cli.checkpoint import CHECKPOINT

CONFIG, METRICS, RESULT = "config.yaml", "metrics.jsonl", "result.json"
RECORD_FILES = (CONFIG, METRICS, RESULT, CHECKPOINT)
STATUSES = ("running", "completed", "diverged", "interrupted", "failed")
FINISHED = ("completed", "diverged")  # a deterministic outcome: running it again gives the same


class Clipping(TypedDict):
    """result.json's ``clipping``: ``train.ClipLog.summary`` over the whole run."""

    clip: float
    steps: int
    clipped_steps: int
    clipped_fraction: Optional[float]
    grad_norm_median: Optional[float]
    grad_norm_max: Optional[float]


class Gradient(TypedDict):
    """result.json's ``gradient``: the gradient flow before training and at the last evaluation,
    relative to the answer step (``*_rel``: one number per step back, ``steps_back``)."""

    carrier: str
    steps_back_first_step: int
    dh_ratio_first_step_before: float
    dh_ratio_first_step: float
    dc_ratio_first_step_before: Optional[float]
    dc_ratio_first_step: Optional[float]
    verdict_before: str
    verdict: str
    steps_back: list
    dh_rel_before: Optional[list]
    dh_rel: Optional[list]
    dc_rel_before: Optional[list]
    dc_rel: Optional[list]
    decades_before: Optional[float]
    decades: Optional[float]
    activation_slope_before: Optional[float]
    activation_slope: Optional[float]


class _Written(TypedDict):
    """The keys result.json has from the moment it is first written (status "running")."""

    name: str
    run_dir: str
    status: str  # one of STATUSES
    success: bool
    task: str
    gap: int
    model: str  # the model's label
    seed: int
    metric: str  # "accuracy" or "mse": the key of the final held-out value
    criterion: str
    chance: float
    steps: int
    max_steps: int
    wall_time: float
    version: str


class Result(_Written, total=False):
    """result.json, shared by its writer (``runs.run_training``) and every reader: the keys
    below are there once the run ended, and only when they apply (``diverged_*`` for a diverged
    run, ``error`` for a failed one, the metrics once an evaluation happened)."""

    clipping: Clipping
    evaluated_at: int
    accuracy: float  # the held-out metric under its name (``metric``)
    mse: float
    heldout_loss: float
    train_loss: Optional[float]
    gradient: Gradient
    diverged_at: int
    diverged_loss: float
    diverged_grad_norm: float
    error: str


# ---- reading ----

MAX_RESULT_BYTES = 64 << 20  # result.json holds a few lists of one number per time step


def _read_json(path: Path, limit: int) -> Any:
    from lstm_cli.files import read_regular

    return json.loads(read_regular(path, limit))


def read_result(run_dir: Path) -> Result | None:
    """The run's result.json, or None when there is none (or it cannot be read: not a regular
    file, too large, not JSON, nested beyond reason)."""
    try:
        record = _read_json(Path(run_dir) / RESULT, MAX_RESULT_BYTES)
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def read_config(run_dir: Path) -> dict | None:
    """The run's config.yaml as a dict, or None when there is none or it cannot be read (not a
    regular file, over 1 MiB, not YAML, nested deeper than a config ever is)."""
    import yaml

    from lstm_cli.files import read_regular, safe_yaml

    try:
        stored = safe_yaml(read_regular(Path(run_dir) / CONFIG).decode("utf-8"))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return None
    return stored if isinstance(stored, dict) else None


def read_metrics(run_dir: Path) -> list[dict]:
    """The evaluations of metrics.jsonl in order (a torn last line is ignored)."""
    from lstm_cli.files import read_regular

    rows = []
    try:
        text = read_regular(Path(run_dir) / METRICS, MAX_RESULT_BYTES).decode("utf-8", "replace")
    except (OSError, ValueError):
        return []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            break
        if not isinstance(row, dict):
            break
        rows.append(row)
    return rows


def finished_record(run_dir: Path, config: dict) -> dict | None:
    """result.json when it says the run finished (completed or diverged) with the settings
    ``config`` (a resolved ``TrainConfig.to_dict``, compared with config.yaml), else None."""
    record = read_result(run_dir)
    if record is None or record.get("status") not in FINISHED:
        return None
    stored = read_config(run_dir)
    if stored is None or any(stored.get(k) != v for k, v in config.items()):
        return None
    return record


def settings_changed(run_dir: Path, config: dict) -> str | None:
    """What differs between ``config`` and the settings of the *finished* record in ``run_dir``
    ("steps 3 -> 4"); None when they agree, or when there is no finished record with readable
    settings there (nothing that running again would lose: a record whose config.yaml cannot
    be read is broken, and is made again)."""
    record = read_result(run_dir)
    if record is None or record.get("status") not in FINISHED:
        return None
    stored = read_config(run_dir)
    if stored is None:
        return None
    for key, value in config.items():
        if stored.get(key) != value:
            return f"{key} {_short(stored.get(key))} -> {_short(value)}"
    return None


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def has_record(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds any file of a run record."""
    return any(os.path.lexists(Path(run_dir) / name) for name in RECORD_FILES)
