"""Checkpoints: a run's parameters under PyTorch's names, saved whole and read back only after
every member has been checked.

The arrays: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``
(``torch.nn.RNN`` / ``torch.nn.LSTM`` state-dict names, batch_first=True),
``head.weight``, ``head.bias`` (a ``torch.nn.Linear`` named ``head``), plus
``model`` and ``config`` as JSON strings. They are read back with
``np.load(..., allow_pickle=False)`` only after every member's name, dtype,
shape and size has been checked from the zip directory and the .npy headers,
so a hostile file is refused before anything large is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lstm_cli.errors import BadInput
from lstm_cli.files import atomic_write_bytes
from lstm_cli.models import ModelSpec
from lstm_cli.tasks import get_task
from lstm_cli.train import TrainConfig

CHECKPOINT = "checkpoint.npz"
_TORCH_CORE = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
OPTIONAL = ("weight_ch",)  # the peephole LSTM's diagonal weights
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
    from lstm_cli import models

    return {(f"{k}_l0" if k in _TORCH_CORE else k): shape
            for k, shape in models.param_shapes(spec, input_size, output_size).items()}


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
    expected_names = {*(f"{k}_l0" for k in _TORCH_CORE), "head.weight", "head.bias", "model", "config",
                      *OPTIONAL}
    try:
        if not path.is_file():
            raise NotRegular(f"checkpoint {path} is not a regular file")
        headers = _member_headers(path)
        missing = sorted(expected_names - set(headers) - {"config", *OPTIONAL})
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
                if name not in headers:
                    raise BadInput(f"checkpoint {path} lacks {name}, which its model {spec.label()} needs")
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
