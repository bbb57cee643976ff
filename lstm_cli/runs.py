"""Run records on disk: one directory per training run.

    <out>/<name>/
        config.yaml      every resolved setting, the seed and the package version
        metrics.jsonl    one JSON object per evaluation, appended as training goes
        result.json      the result record: status, success, final metrics, steps, wall time
        checkpoint.npz   the parameters under PyTorch's names plus what rebuilds the model
    <out>/.<name>.lock   held (flock) by the one process writing the record

A record is the user's result, so it is never lost or mixed with another:

- An existing record is refused (``BadInput``) unless the caller asks to
  replace it (``existing="overwrite"``) or to keep it when it finished with
  the same settings (``existing="resume"``, what a resumed sweep does).
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
  gradient became NaN or inf; ``diverged_at`` names the step), "interrupted"
  (Ctrl-C) or "failed" (the run raised, e.g. the disk is full; ``error`` says
  why). Whole files are written atomically (a temporary file in the same
  directory, every byte of it checked, then ``os.replace``) with the mode the
  umask gives (0644 under umask 022), so a killed run never leaves a
  half-written config, result or checkpoint. metrics.jsonl grows by one line
  per evaluation, each appended whole; ``read_metrics`` ignores a torn last line.

The checkpoint's arrays: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0`` (``torch.nn.RNN`` / ``torch.nn.LSTM`` state-dict names,
batch_first=True), ``head.weight``, ``head.bias`` (a ``torch.nn.Linear``
named ``head``), plus ``model`` and ``config`` as JSON strings. It is read
back with ``np.load(..., allow_pickle=False)`` only after every member's
name, dtype, shape and size has been checked from the zip directory and the
.npy headers, so a hostile file is refused before anything large is read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from lstm_cli import __version__, train
from lstm_cli.errors import BadInput, Interrupted, RunFailed
from lstm_cli.files import check_name
from lstm_cli.models import ModelSpec
from lstm_cli.plain import to_json
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

CONFIG, METRICS, RESULT, CHECKPOINT = "config.yaml", "metrics.jsonl", "result.json", "checkpoint.npz"
RECORD_FILES = (CONFIG, METRICS, RESULT, CHECKPOINT)
STATUSES = ("running", "completed", "diverged", "interrupted", "failed")
FINISHED = ("completed", "diverged")  # a deterministic outcome: running it again gives the same
EXISTING = ("refuse", "overwrite", "resume")
_TORCH_CORE = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def default_name(config: TrainConfig) -> str:
    """``<task>-gap<gap>-<model label>-seed<seed>``, made safe for a directory name."""
    label = config.model.label().replace(":", "-").replace(",", "-").replace("=", "")
    return f"{config.task}-gap{config.gap}-{label}-seed{config.seed}"


# ---- files: atomic, whole, with the umask's mode ----

def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is retried; none at all raises)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and os.replace.

    The temporary file is created with mode 0666 minus the umask (what ``open`` gives a new
    file), not mkstemp's 0600, so a record is as readable as any other file the user writes."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_jsonl(path: Path, row: dict) -> None:
    """Append one line (O_APPEND, every byte checked); a reader ignores a torn last line."""
    line = (to_json(row, indent=None) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        write_all(fd, line)
    finally:
        os.close(fd)


def remove_stray_temporaries(directory: Path) -> list[str]:
    """Delete the ``.*.tmp`` files a killed writer left in ``directory``; call only while holding
    the lock that every writer of that directory takes. Returns the names removed."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def make_directory(path: Path, what: str) -> None:
    """Create ``path`` (and its parents); BadInput naming it when that fails or when it exists as
    anything but a real directory (a file, a FIFO, a symbolic link that would lead the writes
    outside the output directory)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(f"cannot create {what} {path}: {err.strerror}") from None
    if path.is_symlink() or not path.is_dir():
        raise BadInput(f"cannot create {what} {path}: it exists and is not a directory")


# ---- the writer's lock ----

class Busy(BadInput):
    """Another process holds the lock of a run directory."""

    def __init__(self, directory: Path, holder: str):
        self.directory, self.holder = directory, holder
        super().__init__(f"{directory} is being written by another process ({holder}); "
                         f"wait for it to finish, or choose another name")


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


def lock_path(directory: Path) -> Path:
    """``.<name>.lock`` beside ``directory``: outside it, so a record holds only its own files."""
    directory = Path(directory)
    return directory.parent / f".{directory.name}.lock"


def is_locked(directory: Path) -> bool:
    """Whether a process holds the lock of ``directory`` now (creates nothing)."""
    try:
        fd = os.open(lock_path(directory), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def locked(directory: Path, wait: bool = False) -> Iterator[None]:
    """Hold the exclusive lock of ``directory`` (``lock_path``, flock) for the ``with`` block.

    Taken at once when free; when another process holds it, ``wait=False`` raises ``Busy``
    and ``wait=True`` blocks until it is released (a process that dies releases it: the
    kernel closes its files)."""
    directory = Path(directory)
    try:
        fd = os.open(lock_path(directory), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise BadInput(f"cannot lock {directory}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise Busy(directory, _holder(fd)) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # the pid is only for messages: a full disk may refuse it
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# ---- reading ----

MAX_RESULT_BYTES = 64 << 20  # result.json holds a few lists of one number per time step


def _read_json(path: Path, limit: int) -> Any:
    from lstm_cli.files import read_regular

    return json.loads(read_regular(path, limit))


def read_result(run_dir: Path) -> dict | None:
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

    from lstm_cli.files import MAX_DEPTH, nesting_depth, read_regular

    try:
        text = read_regular(Path(run_dir) / CONFIG).decode("utf-8")
        if nesting_depth(text) > MAX_DEPTH:
            return None
        stored = yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return None
    return stored if isinstance(stored, dict) else None


def read_metrics(run_dir: Path) -> list[dict]:
    """The evaluations of metrics.jsonl in order (a torn last line is ignored)."""
    rows = []
    try:
        with open(Path(run_dir) / METRICS, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except (ValueError, RecursionError):
                    break
    except (OSError, ValueError):
        return []
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


def has_record(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds any file of a run record."""
    return any(os.path.lexists(Path(run_dir) / name) for name in RECORD_FILES)


# ---- checkpoints ----

MAX_JSON_MEMBER = 1 << 20  # the model and config strings of a checkpoint


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


def _member_headers(path: Path) -> dict[str, tuple[tuple, np.dtype, int]]:
    """{member name without .npy: (shape, dtype, data bytes)} read from the zip directory and
    each member's .npy header only; checks that every member's size is what its header says."""
    import zipfile

    headers = {}
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > 16:
            raise BadInput(f"checkpoint {path} has {len(infos)} members; a checkpoint has 8")
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                raise BadInput(f"checkpoint {path}: unexpected member {info.filename!r}")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise BadInput(f"checkpoint {path}: unsupported .npy version {version} in {info.filename}")
                header_bytes = member.tell()
            if dtype.hasobject:
                raise BadInput(f"checkpoint {path}: {info.filename} holds Python objects")
            data = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if info.file_size != header_bytes + data:
                raise BadInput(f"checkpoint {path}: {info.filename} is {info.file_size} bytes, its header "
                               f"says {header_bytes + data}")
            headers[info.filename[:-len(".npy")]] = (tuple(shape), dtype, data)
    return headers


def _expected_shapes(spec: ModelSpec, input_size: int, output_size: int) -> dict[str, tuple]:
    G, H = (4 if spec.kind == "lstm" else 1), spec.hidden
    return {"weight_ih_l0": (G * H, input_size), "weight_hh_l0": (G * H, H), "bias_ih_l0": (G * H,),
            "bias_hh_l0": (G * H,), "head.weight": (output_size, H), "head.bias": (output_size,)}


def _width(headers: dict, name: str, axis: int) -> int:
    """The size of ``headers[name]``'s shape along ``axis`` (at least 1), for a checkpoint without a task."""
    shape = headers[name][0]
    return max(1, shape[axis]) if len(shape) > axis else 1


def _spec_from(path: Path, text: str) -> ModelSpec:
    import dataclasses

    value = json.loads(text)
    if not isinstance(value, dict):
        raise BadInput(f"checkpoint {path}: its model is not a mapping of settings")
    known = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise BadInput(f"checkpoint {path}: unknown model setting {unknown[0]!r}")
    try:
        return ModelSpec(**value)
    except BadInput as err:
        raise BadInput(f"checkpoint {path}: {err}") from None


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """Read ``run_dir/checkpoint.npz`` (or a .npz path itself); BadInput when it is missing,
    unreadable, or anything in it is not what a checkpoint of its model holds.

    Checked before any array is loaded: the member names (exactly the six parameters plus
    ``model`` and ``config``), each .npy header's dtype (the model's float32 or float64) and
    shape (what the model's kind and hidden size dictate, and the input and output widths of
    its task when the config names one), each member's size against its header, and the
    whole against the memory limit."""
    spec, config, arrays = _read_checkpoint(Path(run_dir), load=True)
    params = {(k[:-3] if k.endswith("_l0") else k): v for k, v in arrays.items()}
    return Checkpoint(spec=spec, params=params, config=config)


def inspect_checkpoint(run_dir: Path) -> tuple[ModelSpec, TrainConfig | None]:
    """(model, training config or None) of a checkpoint, every check of ``load_checkpoint``
    made, without loading its parameters."""
    spec, config, _ = _read_checkpoint(Path(run_dir), load=False)
    return spec, config


def _read_checkpoint(path: Path, load: bool) -> tuple[ModelSpec, TrainConfig | None, dict | None]:
    import zipfile

    from lstm_cli.config import check_memory
    from lstm_cli.files import NotRegular

    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise BadInput(f"no checkpoint at {path} (train a model first: lstm-demo train --out DIR)")
    expected_names = {*(f"{k}_l0" for k in _TORCH_CORE), "head.weight", "head.bias", "model", "config"}
    try:
        if not path.is_file():
            raise NotRegular(f"checkpoint {path} is not a regular file")
        headers = _member_headers(path)
        missing = sorted(expected_names - set(headers) - {"config"})
        extra = sorted(set(headers) - expected_names)
        if missing or extra:
            raise BadInput(f"checkpoint {path}: " + "; ".join(
                ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])))
        for name in ("model", "config"):
            if name in headers:
                shape, dtype, size = headers[name]
                if dtype.kind != "U" or shape != () or size > MAX_JSON_MEMBER:
                    raise BadInput(f"checkpoint {path}: {name} must be one JSON string")
        with np.load(path, allow_pickle=False) as data:
            spec = _spec_from(path, str(data["model"]))
            config_dict = json.loads(str(data["config"])) if "config" in headers else None
            config = None
            if config_dict is not None:
                try:
                    config = TrainConfig.from_dict(config_dict)
                except BadInput as err:
                    raise BadInput(f"checkpoint {path}: its config: {err}") from None
            task = get_task(config.task) if config is not None else None
            want = _expected_shapes(spec, task.input_size if task else _width(headers, "weight_ih_l0", 1),
                                    task.output_size if task else _width(headers, "head.bias", 0))
            for name, shape in want.items():
                got, dtype, _ = headers[name]
                if got != shape:
                    raise BadInput(f"checkpoint {path}: {name} has shape {got}, its model "
                                   f"{spec.label()} needs {shape}")
                if dtype != np.dtype(spec.dtype):
                    raise BadInput(f"checkpoint {path}: {name} is {dtype}, its model is {spec.dtype}")
            if not load:
                return spec, config, None
            check_memory(2 * sum(headers[name][2] for name in want), f"loading checkpoint {path}")
            arrays = {name: data[name] for name in want}
    except NotRegular as err:
        raise BadInput(str(err)) from None
    except OSError as err:
        raise BadInput(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError, RecursionError, TypeError) as err:
        # a foreign or truncated file, a broken header, bad JSON
        raise BadInput(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    return spec, config, arrays


# ---- running ----

def config_record(config: TrainConfig, name: str) -> dict:
    """What config.yaml holds: every resolved setting, the seed and the package version."""
    task = get_task(config.task)
    return {"name": name, "version": __version__, "numpy_version": np.__version__, **config.to_dict(),
            "sequence_length": task.length(config.gap), "criterion": task.criterion, "chance": task.chance}


def check_memory(config: TrainConfig) -> None:
    """BadInput naming the size and the limit when ``config`` cannot train in the memory allowed."""
    from lstm_cli import config as settings

    task, spec = get_task(config.task), config.model
    need = settings.train_bytes(spec.kind, spec.hidden, task.length(config.gap), task.input_size, config.batch,
                              config.eval_size, config.probe_size)
    settings.check_memory(need, f"training {spec.label()} at gap {config.gap} (batch {config.batch}, "
                       f"eval size {config.eval_size})")


class KeptRecord(dict):
    """result.json of a run that ``run_training(existing="resume")`` found finished with the
    same settings and kept instead of running again (equal to the file; ``kept`` tells)."""

    kept = True


def run_training(config: TrainConfig, out_dir: Path, name: str | None = None,
                 on_event: Callable[[Any], None] | None = None, existing: str = "refuse",
                 wait: bool = False) -> dict:
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
    """
    import yaml

    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}")
    cfg = config.resolved()
    name = name or default_name(cfg)
    check_name(name)
    check_memory(cfg)
    run_dir = Path(out_dir) / name
    make_directory(run_dir, "run directory")
    with locked(run_dir, wait=wait):
        if existing == "resume":
            kept = finished_record(run_dir, cfg.to_dict())
            if kept is not None:
                remove_stray_temporaries(run_dir)
                return KeptRecord(kept)
        elif existing == "refuse" and has_record(run_dir):
            raise BadInput(f"{run_dir} already holds a run record; pass --overwrite to replace it "
                           f"(or choose another name)")
        remove_stray_temporaries(run_dir)
        task = get_task(cfg.task)
        record: dict[str, Any] = {
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
        return _train_into(cfg, run_dir, record, start, on_event)


def _os_problem(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename else ""
    return where + (err.strerror or str(err))


def _train_into(cfg: TrainConfig, run_dir: Path, record: dict, start: float,
                on_event: Callable[[Any], None] | None) -> dict:
    """The training loop of ``run_training``, writing metrics, checkpoint and result as it goes."""
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
        _finish_quietly(record, first, last, start, run_dir)
        raise Interrupted(f"interrupted at step {step}; partial record in {run_dir}") from None
    except Exception as err:  # noqa: BLE001 - any error ends this run, and its record must say so
        _fail(record, err, step, first, last, start, run_dir)
    # outside the handlers above: an interrupt after the final result.json is written must not
    # turn a finished run into an interrupted one (one inside the write leaves the "running"
    # result, which a resumed sweep runs again)
    try:
        _finish(record, first, last, start, run_dir)
    except OSError as err:
        _fail(record, err, step, first, last, start, run_dir)
    return record


def _fail(record: dict, err: Exception, step: int, first, last, start: float, run_dir: Path) -> None:
    """Record the run as failed (where result.json can still be written) and raise RunFailed."""
    problem = _os_problem(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
    record.update(status="failed", steps=step, error=" ".join(problem.split()))
    saved = _finish_quietly(record, first, last, start, run_dir)
    raise RunFailed(f"run {run_dir} failed: {problem}"
                    + ("" if saved else " (result.json could not be written either: removed)")) from None


def _finish_quietly(record: dict, first, last, start: float, run_dir: Path) -> bool:
    """``_finish`` for a run that is ending badly: whether result.json could be written. When it
    cannot (a full disk), the old "running" result is removed, so no reader takes the run for
    one still going; a missing result means "run again"."""
    try:
        _finish(record, first, last, start, run_dir)
    except OSError:
        with contextlib.suppress(OSError):
            (run_dir / RESULT).unlink()
        return False
    return True


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
