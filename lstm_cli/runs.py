"""The training driver: runs one training and keeps its record on disk (the files and their
layout: ``rundir``).

A record is the user's result, so it is never lost or mixed with another:

- An existing record is refused (``BadInput``) unless the caller asks to
  replace it (``existing="overwrite"``) or to keep it when it finished with
  the same settings (``existing="resume"``, what a resumed sweep does).
  A run given no name takes the first free one of ``default_name``,
  ``<default>-run2``, ``-run3``, ... (``unique_names``), so the same command
  can be run again; a name given is used exactly, and refused when taken.
- One writer at a time: the writer holds an exclusive ``fcntl.flock`` on
  ``.<name>.lock`` beside the run directory for the whole run. The kernel releases it when the process ends,
  even under SIGKILL. A second writer either waits for it (``wait=True``) or
  is refused at once with the holder's pid; it never interleaves its lines.
- Replacing a record removes the old result.json and checkpoint *before* the
  new config.yaml is written, so a kill in between leaves no "completed"
  result beside a config it was not made with; a missing result means "run
  again". Stray temporary files of a killed writer (``.*.tmp``) are removed by
  the next holder of the lock.
- ``result.json`` is written at the start with ``status: "running"`` and
  rewritten at the end with "completed" (ran to the end of its budget or
  stopped early on success: see ``success``), "diverged" (the loss or the
  gradient became NaN or inf; ``diverged_at`` names the step, and ``steps``, the steps taken,
  equals it: the last step taken is the one that diverged), "interrupted"
  (Ctrl-C) or "failed" (the run raised, e.g. the disk is full; ``error`` says
  why). Whole files are written atomically (a temporary file in the same
  directory, every byte of it checked, then ``os.replace``) with the mode the
  umask gives (0644 under umask 022), so a killed run never leaves a
  half-written config, result or checkpoint. metrics.jsonl grows by one line
  per evaluation, each appended whole; ``read_metrics`` ignores a torn last line.

The files are written by ``files`` (atomic, whole, locked) and the checkpoint by
``checkpoint`` (its arrays and how a hostile one is refused); the record's file
names and its readers are in ``rundir``.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from lstm_cli import __version__, process, provenance, train
from lstm_cli.checkpoint import CHECKPOINT, save_checkpoint
from lstm_cli.errors import BadInput, Interrupted, RunFailed
from lstm_cli.files import (
    Busy, append_jsonl, atomic_write_text, check_name, is_locked, locked, make_directory, remove_stray_temporaries)
from lstm_cli.plain import to_json
from lstm_cli.rundir import CONFIG, METRICS, RESULT, Gradient, Result, finished_record, has_record
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

EXISTING = ("refuse", "overwrite", "resume")


def default_name(config: TrainConfig) -> str:
    """``<task>-gap<gap>-<model label>-seed<seed>``, made safe for a directory name."""
    label = config.model.label().replace(":", "-").replace(",", "-").replace("=", "")
    return f"{config.task}-gap{config.gap}-{label}-seed{config.seed}"


MAX_RUNS_OF_A_NAME = 9999


def unique_names(base: str):
    """``base``, then ``base-run2``, ``base-run3``, ...: the names a run given no name tries in turn.

    A counter rather than a timestamp (Hydra) or a random word (W&B): the first run keeps the
    plain name that the docs show and that ``gradients --from`` examples name; the next ones
    sort after it (natural sort: -run2 < -run10), say how many came before, and are the same
    on every machine, so a pasted transcript holds."""
    yield base
    for count in range(2, MAX_RUNS_OF_A_NAME + 1):
        yield f"{base}-run{count}"
    raise BadInput(f"{base}: {MAX_RUNS_OF_A_NAME} runs of this name already; give --name or --out")


def _taken(run_dir: Path) -> bool:
    """Whether a run given no name must not use ``run_dir``: a record is there, or its writer's lock is held."""
    return has_record(run_dir) or is_locked(run_dir)


@contextlib.contextmanager
def _claimed(out_dir: Path, name: str, unique: bool, wait: bool):
    """The run directory ``out_dir/name`` (``unique``: the first free of ``unique_names(name)``),
    created and locked for the ``with`` block."""
    for candidate in unique_names(name) if unique else (name,):
        run_dir = Path(out_dir) / candidate
        if unique and _taken(run_dir):
            continue
        check_name(candidate)
        make_directory(run_dir, "run directory")
        try:
            lock = locked(run_dir, wait=wait and not unique)
            lock.__enter__()
        except Busy:
            if not unique:
                raise
            continue  # another process took it between the look and the lock
        try:
            if unique and has_record(run_dir):
                continue
            yield run_dir
            return
        finally:
            lock.__exit__(None, None, None)


# ---- running ----

def config_record(config: TrainConfig, name: str) -> dict:
    """What config.yaml holds: every resolved setting, the seed and the package version, and under
    ``provenance`` where, when and how the run was made (``lstm_cli.provenance``; never a setting)."""
    task = get_task(config.task)
    return {"name": name, "version": __version__, "numpy_version": np.__version__, **config.to_dict(),
            "sequence_length": task.length(config.gap), "criterion": task.criterion, "chance": task.chance,
            "provenance": provenance.collect()}


def check_memory(config: TrainConfig) -> None:
    """BadInput naming the size and the limit when ``config`` cannot train in the memory allowed."""
    from lstm_cli import config as settings

    task, spec = get_task(config.task), config.model
    need = settings.train_bytes(spec.kind, spec.hidden, task.length(config.gap), task.input_size, config.batch,
                              config.eval_size, config.probe_size)
    settings.check_memory(need, f"training {spec.label()} at gap {config.gap} (batch {config.batch}, "
                       f"eval size {config.eval_size})")


def refusal(run_dir: Path) -> str:
    """The one line that refuses to write over the record in ``run_dir``."""
    return (f"{run_dir} already holds a run record; pass --overwrite to replace it, --resume to keep it "
            f"when it finished with the same settings, or leave out --name for a new directory")


def check_free(run_dir: Path, existing: str) -> None:
    """BadInput (``refusal``) when ``existing`` is "refuse" and ``run_dir`` holds a record: the check a
    command makes before any work, so that it does not compute what it would then refuse to keep."""
    if existing == "refuse" and has_record(run_dir) and not is_locked(run_dir):  # locked: Busy says who has it
        raise BadInput(refusal(run_dir))


class KeptRecord(dict):
    """result.json of a run that ``run_training(existing="resume")`` found finished with the
    same settings and kept instead of running again (equal to the file; ``kept`` tells)."""

    kept = True


def run_training(config: TrainConfig, out_dir: Path, name: str | None = None,
                 on_event: Callable[[Any], None] | None = None, existing: str = "refuse",
                 wait: bool = False, events: Iterable[Any] | None = None) -> dict:
    """Train ``config`` and keep its record in ``out_dir/name``; return the result record.

    The returned dict is identical to result.json. A diverged run returns with
    ``status: "diverged"`` (the caller decides to exit 1); Ctrl-C writes
    "interrupted" and raises ``Interrupted``; a run that cannot write its record
    (a full disk, a read-only directory) or raises writes "failed" where it still
    can and raises ``RunFailed``. ``on_event`` receives every ``train`` event
    (Started, Step, Evaluation, Diverged, Finished) as it happens.

    ``existing`` says what to do with a record already in ``out_dir/name``: "refuse"
    (BadInput), "overwrite" (replace it) or "resume" (keep it, returned as a
    ``KeptRecord``, when it finished with the same settings; else replace it). The
    directory's lock is held throughout: when another process holds it, ``wait``
    chooses between waiting for it and ``Busy`` (BadInput naming the holder's pid).

    ``events`` replaces ``train.train(config)`` as the source of the run's events (a seed stack,
    ``stacked.train_stacked``, trains several runs at once and hands each its own).
    """
    import yaml

    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}")
    cfg = config.resolved()
    unique = name is None and existing == "refuse"
    name = name or default_name(cfg)
    check_name(name)
    check_memory(cfg)
    with _claimed(Path(out_dir), name, unique, wait) as run_dir:
        name = run_dir.name
        if existing == "resume":
            kept = finished_record(run_dir, cfg.to_dict())
            if kept is not None:
                remove_stray_temporaries(run_dir)
                return KeptRecord(kept)
        elif existing == "refuse" and has_record(run_dir):
            raise BadInput(refusal(run_dir))
        remove_stray_temporaries(run_dir)
        task = get_task(cfg.task)
        record: Result = {
            "name": name, "run_dir": str(run_dir), "status": "running", "success": False,
            "task": cfg.task, "gap": cfg.gap, "model": cfg.model.label(), "seed": cfg.seed,
            "metric": task.metric, "criterion": task.criterion, "chance": task.chance,
            "steps": 0, "max_steps": cfg.steps, "wall_time": 0.0, "version": __version__,
        }
        start = time.perf_counter()
        try:
            # the old result and checkpoint go first: a kill before the new result.json exists
            # leaves a record without a result (run again), never an old "completed" result
            # beside a config it was not made with
            for stale in (RESULT, CHECKPOINT):
                (run_dir / stale).unlink(missing_ok=True)
            atomic_write_text(run_dir / CONFIG, yaml.safe_dump(config_record(cfg, name), sort_keys=False))
            atomic_write_text(run_dir / METRICS, "")
            atomic_write_text(run_dir / RESULT, to_json(record))
        except OSError as err:
            raise RunFailed(f"cannot write the record in {run_dir}: {_os_problem(err)}") from None
        return _train_into(cfg, run_dir, record, start, on_event, events)


def _os_problem(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename else ""
    return where + (err.strerror or str(err))


def _train_into(cfg: TrainConfig, run_dir: Path, record: Result, start: float,
                on_event: Callable[[Any], None] | None, events: Iterable[Any] | None = None) -> dict:
    """The training loop of ``run_training``, writing metrics, checkpoint and result as it goes."""
    first: train.Evaluation | None = None
    last: train.Evaluation | None = None
    step = 0
    clip_log = train.ClipLog(cfg.clip)
    try:
        for event in train.train(cfg) if events is None else events:
            if isinstance(event, train.Step):
                step = event.step
                clip_log.add(event)
            elif isinstance(event, train.Evaluation):
                first = first or event
                last = event
                row = event.to_dict()
                row["wall_time"] = time.perf_counter() - start
                append_jsonl(run_dir / METRICS, row)
            elif isinstance(event, train.Diverged):
                # one step count everywhere: the steps taken, the last of which diverged (its update
                # was not applied); tables, `runs` and result.json all show this number
                record.update(status="diverged", diverged_at=event.step, steps=event.step,
                              diverged_loss=event.loss, diverged_grad_norm=event.grad_norm)
            elif isinstance(event, train.Finished):
                save_checkpoint(run_dir / CHECKPOINT, cfg.model, event.params, cfg)
                record.update(status="completed", steps=event.step)
            if on_event is not None:
                on_event(event)
    except KeyboardInterrupt:
        _interrupted(record, step, first, last, start, run_dir, clip_log)
    except Exception as err:  # noqa: BLE001 - any error ends this run, and its record must say so
        if process.interrupted_inside(err):  # a Ctrl-C that an import wrapped in its own error
            _interrupted(record, step, first, last, start, run_dir, clip_log)
        _fail(record, err, step, first, last, start, run_dir, clip_log)
    # outside the handlers above: an interrupt after the final result.json is written must not
    # turn a finished run into an interrupted one (one inside the write leaves the "running"
    # result, which a resumed sweep runs again)
    try:
        _finish(record, first, last, start, run_dir, clip_log)
    except OSError as err:
        _fail(record, err, step, first, last, start, run_dir, clip_log)
    return record


def _interrupted(record: Result, step: int, first, last, start: float, run_dir: Path,
                 clip_log: train.ClipLog) -> None:
    """Record the run as interrupted at ``step`` and raise Interrupted."""
    record.update(status="interrupted", steps=step)
    _finish_quietly(record, first, last, start, run_dir, clip_log)
    raise Interrupted(f"{process.interruption()} at step {step}; partial record in {run_dir}") from None


def _fail(record: Result, err: Exception, step: int, first, last, start: float, run_dir: Path,
          clip_log: train.ClipLog) -> None:
    """Record the run as failed (where result.json can still be written) and raise RunFailed."""
    problem = _os_problem(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
    record.update(status="failed", steps=step, error=" ".join(problem.split()))
    saved = _finish_quietly(record, first, last, start, run_dir, clip_log)
    raise RunFailed(f"run {run_dir} failed: {problem}"
                    + ("" if saved else " (result.json could not be written either: removed)")) from None


def _finish_quietly(record: Result, first, last, start: float, run_dir: Path, clip_log: train.ClipLog) -> bool:
    """``_finish`` for a run that is ending badly: whether result.json could be written. When it
    cannot (a full disk), the old "running" result is removed, so no reader takes the run for
    one still going; a missing result means "run again"."""
    try:
        _finish(record, first, last, start, run_dir, clip_log)
    except OSError:
        with contextlib.suppress(OSError):
            (run_dir / RESULT).unlink()
        return False
    return True


def _finish(record: Result, first: train.Evaluation | None, last: train.Evaluation | None,
            start: float, run_dir: Path, clip_log: train.ClipLog) -> None:
    """Fill the final metrics and the clipping totals into ``record``, stamp the end time into
    config.yaml, and write result.json."""
    import yaml

    record["wall_time"] = time.perf_counter() - start
    record["clipping"] = clip_log.summary()
    from lstm_cli.files import read_regular

    config = yaml.safe_load(read_regular(run_dir / CONFIG).decode("utf-8"))
    config["provenance"]["end_time"] = provenance.now()
    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(config, sort_keys=False))
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


def _gradient_summary(first: train.Evaluation, last: train.Evaluation) -> Gradient:
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
        "decades_before": before.summary.get("decades"), "decades": after.summary.get("decades"),
        "activation_slope_before": before.summary.get("activation_slope"),
        "activation_slope": after.summary.get("activation_slope"),
    }
