"""Run records on disk: one directory per training run.

    <out>/<name>/
        config.yaml      every resolved setting, the seed and the package version (written first)
        metrics.jsonl    one JSON object per evaluation, appended as training goes
        result.json      the result record: status, success, final metrics, steps, wall time
        checkpoint.npz   the parameters under PyTorch's names plus what rebuilds the model

``result.json`` is written at the start with ``status: "running"`` and
rewritten at the end with "completed" (ran to the end of its budget or
stopped early on success: see ``success``), "diverged" (the loss or the
gradient became NaN or inf; ``diverged_at`` names the step) or "interrupted"
(Ctrl-C). Whole files are written atomically (a temporary file in the same
directory, then ``os.replace``), so a killed run never leaves a half-written
config, result or checkpoint. metrics.jsonl grows by one line per evaluation,
each appended with a single ``write``; ``read_metrics`` ignores a torn last line.

The checkpoint's arrays: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0`` (``torch.nn.RNN`` / ``torch.nn.LSTM`` state-dict names,
batch_first=True), ``head.weight``, ``head.bias`` (a ``torch.nn.Linear``
named ``head``), plus ``model`` and ``config`` as JSON strings. It is read
back with ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from lstm_cli import __version__, models, train
from lstm_cli.errors import BadInput, Interrupted
from lstm_cli.models import ModelSpec
from lstm_cli.plain import to_json
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

CONFIG, METRICS, RESULT, CHECKPOINT = "config.yaml", "metrics.jsonl", "result.json", "checkpoint.npz"
STATUSES = ("running", "completed", "diverged", "interrupted")
_TORCH_CORE = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def default_name(config: TrainConfig) -> str:
    """``<task>-gap<gap>-<model label>-seed<seed>``, made safe for a directory name."""
    label = config.model.label().replace(":", "-").replace(",", "-").replace("=", "")
    return f"{config.task}-gap{config.gap}-{label}-seed{config.seed}"


# ---- atomic files ----

def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_jsonl(path: Path, row: dict) -> None:
    """Append one line with a single write (O_APPEND), so lines never interleave or half-exist."""
    line = (to_json(row, indent=None) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# ---- reading ----

def read_result(run_dir: Path) -> dict | None:
    """The run's result.json, or None when there is none (or it cannot be read)."""
    try:
        with open(Path(run_dir) / RESULT, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_metrics(run_dir: Path) -> list[dict]:
    """The evaluations of metrics.jsonl in order (a torn last line is ignored)."""
    rows = []
    try:
        with open(Path(run_dir) / METRICS, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    break
    except OSError:
        return []
    return rows


# ---- checkpoints ----

class Checkpoint(NamedTuple):
    spec: ModelSpec
    params: dict[str, np.ndarray]  # the engine's names (weight_ih, ..., head.bias)
    config: TrainConfig | None  # the training config that produced it, if any


def save_checkpoint(path: Path, spec: ModelSpec, params: dict[str, np.ndarray],
                    config: TrainConfig | dict | None = None) -> None:
    """Write the parameters under PyTorch's names plus the model spec and config, atomically."""
    import dataclasses
    import io

    arrays = {(f"{k}_l0" if k in _TORCH_CORE else k): np.asarray(v) for k, v in params.items()}
    arrays["model"] = np.array(json.dumps(dataclasses.asdict(spec)))
    if isinstance(config, TrainConfig):
        config = config.to_dict()
    arrays["config"] = np.array(json.dumps(config))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """Read ``run_dir/checkpoint.npz`` (or a .npz path itself); BadInput when missing or unreadable."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise BadInput(f"no checkpoint at {path} (train a model first: lstm-demo train --out DIR)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        spec = ModelSpec(**json.loads(str(arrays.pop("model"))))
        config_dict = json.loads(str(arrays.pop("config", np.array("null"))))
        params = {(k[:-3] if k.endswith("_l0") else k): v for k, v in arrays.items()}
    except BadInput:
        raise
    except Exception as err:  # a truncated zip, a foreign file, bad JSON: all "unreadable"
        raise BadInput(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    missing = [k for k in (*_TORCH_CORE, "head.weight", "head.bias") if k not in params]
    if missing:
        raise BadInput(f"checkpoint {path} lacks {', '.join(missing)}")
    if models.kind_of(params) != spec.kind or params["weight_hh"].shape[1] != spec.hidden:
        raise BadInput(f"checkpoint {path}: parameter shapes do not match its model {spec.label()}")
    config = TrainConfig.from_dict(config_dict) if isinstance(config_dict, dict) else None
    return Checkpoint(spec=spec, params=params, config=config)


# ---- running ----

def config_record(config: TrainConfig, name: str) -> dict:
    """What config.yaml holds: every resolved setting, the seed and the package version."""
    task = get_task(config.task)
    return {"name": name, "version": __version__, "numpy_version": np.__version__, **config.to_dict(),
            "sequence_length": task.length(config.gap), "criterion": task.criterion, "chance": task.chance}


def run_training(config: TrainConfig, out_dir: Path, name: str | None = None,
                 on_event: Callable[[Any], None] | None = None) -> dict:
    """Train ``config`` and keep its record in ``out_dir/name``; return the result record.

    The returned dict is identical to result.json. A diverged run returns with
    ``status: "diverged"`` (the caller decides to exit 1); Ctrl-C writes
    "interrupted" and raises ``Interrupted``. ``on_event`` receives every
    ``train`` event (Started, Step, Evaluation, Diverged, Finished) as it happens.
    """
    import yaml

    cfg = config.resolved()
    name = name or default_name(cfg)
    if not name or "/" in name or name in (".", ".."):
        raise BadInput(f"bad run name {name!r}: use a plain directory name")
    run_dir = Path(out_dir) / name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(f"cannot create run directory {run_dir}: {err.strerror}") from None
    task = get_task(cfg.task)
    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(config_record(cfg, name), sort_keys=False))
    atomic_write_text(run_dir / METRICS, "")
    for stale in (CHECKPOINT,):
        (run_dir / stale).unlink(missing_ok=True)

    record: dict[str, Any] = {
        "name": name, "run_dir": str(run_dir), "status": "running", "success": False,
        "task": cfg.task, "gap": cfg.gap, "model": cfg.model.label(), "seed": cfg.seed,
        "metric": task.metric, "criterion": task.criterion, "chance": task.chance,
        "steps": 0, "max_steps": cfg.steps, "wall_time": 0.0, "version": __version__,
    }
    atomic_write_text(run_dir / RESULT, to_json(record))

    start = time.perf_counter()
    first: train.Evaluation | None = None
    last: train.Evaluation | None = None
    step = 0
    try:
        for event in train.train(cfg):
            if isinstance(event, train.Step):
                step = event.step
            elif isinstance(event, train.Evaluation):
                first = first or event
                last = event
                row = event.to_dict()
                row["wall_time"] = time.perf_counter() - start
                append_jsonl(run_dir / METRICS, row)
            elif isinstance(event, train.Diverged):
                record.update(status="diverged", diverged_at=event.step, steps=event.step - 1,
                              diverged_loss=event.loss, diverged_grad_norm=event.grad_norm)
            elif isinstance(event, train.Finished):
                save_checkpoint(run_dir / CHECKPOINT, cfg.model, event.params, cfg)
                record.update(status="completed", steps=event.step)
            if on_event is not None:
                on_event(event)
    except KeyboardInterrupt:
        record.update(status="interrupted", steps=step)
        _finish(record, first, last, start, run_dir)
        raise Interrupted(f"interrupted at step {step}; partial record in {run_dir}") from None
    _finish(record, first, last, start, run_dir)
    return record


def _finish(record: dict, first: train.Evaluation | None, last: train.Evaluation | None,
            start: float, run_dir: Path) -> None:
    """Fill the final metrics into ``record`` and write result.json."""
    record["wall_time"] = time.perf_counter() - start
    if last is not None:
        record["success"] = bool(last.success) and record["status"] == "completed"
        record["evaluated_at"] = last.step
        record[last.metric] = last.value
        record["heldout_loss"] = last.heldout_loss
        record["train_loss"] = last.train_loss
        record["gradient"] = _gradient_summary(first, last)
    # round-trip through JSON so the returned dict equals result.json exactly
    text = to_json(record)
    atomic_write_text(run_dir / RESULT, text)
    record.clear()
    record.update(json.loads(text))


def _gradient_summary(first: train.Evaluation, last: train.Evaluation) -> dict:
    """The gradient flow before and after training, relative to the answer step."""
    def rel(stats):
        return None if stats is None else stats.rel.tolist()

    before, after = first.profile, last.profile
    return {
        "carrier": after.carrier,
        "steps_back_first_step": int(after.steps_back[-1]),
        "dh_ratio_first_step_before": first.dh_ratio, "dh_ratio_first_step": last.dh_ratio,
        "dc_ratio_first_step_before": first.dc_ratio, "dc_ratio_first_step": last.dc_ratio,
        "verdict_before": before.summary["verdict"], "verdict": after.summary["verdict"],
        "steps_back": after.steps_back.tolist(),
        "dh_rel_before": rel(before.dh), "dh_rel": rel(after.dh),
        "dc_rel_before": rel(before.dc), "dc_rel": rel(after.dc),
    }
