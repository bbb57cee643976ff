"""Every setting of lstm-demo in one table, and the one function that checks a value.

Each ``Field`` names a setting by its dotted key (``gap``, ``model.hidden``,
``train.lr``), its type (int, float, bool, str with choices, or the model
text), its bounds, its default and its help. The model dataclass
(``models.ModelSpec``), the training config (``train.TrainConfig``), the
``kind:key=value`` model text, scenario files, ``--set`` and the command
line all check values with ``check`` below, so each accepts and refuses
exactly the same values with the same message.

Imports no numpy: the command line reads its defaults and help from here.

Adding a model setting is one row in ``FIELDS`` (plus its use in the cell
code); the cells that take it name it in their ``settings`` (``cells``).
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lstm_cli import cells, process
from lstm_cli.errors import BadInput

SEED_MAX = 2**32 - 1  # numpy's legacy seeding range; the same bound everywhere
KINDS = cells.NAMES  # the registered cell kinds (cells/__init__.py imports no numpy)
INITS = ("uniform", "orthogonal", "identity")  # and "auto", resolved in ModelSpec
DTYPES = ("float64", "float32")
ACTIVATIONS = ("tanh", "relu")
OPTIMIZERS = ("adam", "sgd", "momentum")
# Default learning rates, chosen with the default batch and model (see README, train section); a
# task may have its own Adam step (``tasks.Task.adam_lr``).
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1, "momentum": 0.01}
DEFAULT_GAP = 50
# The one probe: "the gradient at the first input" is measured on this many sequences of the seed's
# "probe" stream, by `gradients` (gradients.batch), by train at every evaluation (train.probe_size),
# and so by run and sweep; a scenario that gives one of the two keys gives both (scenario.grid).
PROBE_BATCH = 64


class Format(str, enum.Enum):
    """The one output vocabulary of every command that lists rows (``--format``): a table for
    people, or the same rows for programs. The command line offers these as its choices (in
    ``--help`` and in shell completion) and the renderers dispatch on them."""

    table = "table"  # a rich table on stdout (lstm_cli.render.table)
    json = "json"  # one JSON document: the rows as a list, or the command's document
    jsonl = "jsonl"  # one JSON object per row and line
    csv = "csv"  # a header line, then one line per row


FORMATS = tuple(f.value for f in Format)
FORMAT_HELP = "table (for people), or json, jsonl or csv (for programs): the same rows, the same field names."


def _task_table() -> tuple:
    """The tasks (``tasks.TASKS``; that module imports numpy only when a task generates data)."""
    from lstm_cli.tasks import TASKS

    return tuple(TASKS.values())


def _tasks() -> tuple[str, ...]:
    return tuple(t.name for t in _task_table())


def _own_hidden(joint: str, name_first: bool = True) -> str:
    """The tasks with their own hidden size: "copy: 64" (or "64 on copy")."""
    return ", ".join(f"{t.name}{joint}{t.hidden}" if name_first else f"{t.hidden}{joint}{t.name}"
                     for t in _task_table() if t.hidden is not None)


@dataclass(frozen=True)
class Field:
    """One setting: its type, bounds, choices and default."""

    key: str  # dotted: "gap", "model.hidden", "train.lr"
    type: str  # "int", "float", "bool", "str", "model"
    help: str
    default: Any = None
    minimum: float | None = None
    above: float | None = None  # exclusive lower bound
    below: float | None = None  # exclusive upper bound
    maximum: float | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    nullable: bool = False  # null / none allowed (means "the default")
    option_help: str = ""  # the command-line option's help; "{default}" stands for the default

    @property
    def option_text(self) -> str:
        """The command-line option's help, its default filled in."""
        return self.option_help.replace("{default}", f"{self.default:g}" if isinstance(self.default, float)
                                        else str(self.default))

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    def options(self) -> tuple[str, ...]:
        return self.choices() if callable(self.choices) else (self.choices or ())

    def check(self, value: Any) -> tuple[Any, str | None]:
        """(normalised value, None) or (None, the problem in words)."""
        if value is None or (self.nullable and isinstance(value, str) and value.lower() == "none"):
            return (None, None) if self.nullable else (None, f"needs a value ({self.help})")
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return None, f"must be an integer, got {shown(value)}"
            if value.bit_length() > 63:  # 0x followed by 5000 digits: no setting counts that far
                return None, f"must be an integer below 2**63, got one of {value.bit_length()} bits"
        elif self.type == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None, f"must be a number, got {shown(value)}"
            value = float(value)
            if not math.isfinite(value):
                return None, f"must be a finite number, got {value}"
        elif self.type == "bool":
            if not isinstance(value, bool):
                return None, f"must be true or false, got {shown(value)}"
        elif self.type == "str":
            if not isinstance(value, str):
                return None, f"must be a string, got {shown(value)}"
            if self.choices is not None and value not in self.options():
                return None, f"unknown value {value!r}{did_you_mean(value, self.options())}; " \
                             f"choose one of: {', '.join(self.options())}"
        return value, self._bounds(value)

    def _bounds(self, value: Any) -> str | None:
        if self.type not in ("int", "float"):
            return None
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}, got {value}"
        if self.above is not None and not value > self.above:
            return f"must be > {self.above:g}, got {value}"
        if self.below is not None and not value < self.below:
            return f"must be < {self.below:g}, got {value}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum}, got {value}"
        return None

    def parse(self, text: str) -> Any:
        """A value from command-line text (``--set``, ``kind:key=value``), unchecked."""
        text = text.strip()
        if self.nullable and text.lower() in ("none", "null"):
            return None
        if self.type == "bool":
            return {"true": True, "false": False}.get(text.lower(), text)
        for convert in ((int, float) if self.type in ("int", "float") else ()):
            try:
                return convert(text)
            except ValueError:
                continue
        return text


FIELDS: dict[str, Field] = {f.key: f for f in (
    Field("description", "str", "one line shown by `lstm-demo scenarios`"),
    Field("task", "str", "the task", "remember", choices=_tasks,
          option_help=", ".join(_tasks()[:-1]) + " or " + _tasks()[-1] + "."),
    Field("gap", "int", "steps between the information and the question", DEFAULT_GAP, minimum=1,
          option_help="Steps between the information and the question."),
    Field("seed", "int", "seed of every random stream", 0, minimum=0, maximum=SEED_MAX,
          option_help="Seed of every random stream; same seed, same numbers."),
    Field("model", "model", "'kind[:key=value,...]' or a mapping of model settings"),
    Field("model.kind", "str", ", ".join(KINDS[:-1]) + " or " + KINDS[-1], "lstm", choices=KINDS),
    Field("model.hidden", "int", "hidden units H (" + _own_hidden(": ") + ")", 32, minimum=1,
          option_help="Hidden units H (default {default}; " + _own_hidden(" on ", name_first=False) + ")."),
    Field("model.activation", "str", "RNN nonlinearity", "tanh", choices=ACTIVATIONS,
          option_help="RNN nonlinearity: tanh or relu."),
    Field("model.init", "str", "W_hh initialisation", "auto", choices=("auto",) + INITS,
          option_help=("W_hh init: auto (uniform, or orthogonal when --recurrent-scale is not 1), "
                       "uniform (PyTorch's default), orthogonal, identity (IRNN).")),
    Field("model.recurrent_scale", "float", "multiplies W_hh", 1.0, above=0,
          option_help="Multiplies W_hh; with orthogonal init it is the spectral radius."),
    Field("model.forget_bias", "float", "LSTM forget-gate bias", 3.0,
          option_help="LSTM forget-gate bias (default 3: sigmoid(3)=0.95, the gate starts open)."),
    Field("model.chrono", "float", "LSTM chrono init T_max", None, above=2, nullable=True,
          option_help="LSTM chrono init with this T_max (Tallec & Ollivier 2018); overrides --forget-bias."),
    Field("model.peephole", "bool", "LSTM peepholes: c into the i, f, o gates (Gers & Schmidhuber 2000)", False),
    Field("model.coupled", "bool", "LSTM input gate 1 - f (coupled forget and input gates)", False),
    Field("model.forget_gate", "bool", "LSTM forget gate; false: c_t = c_{t-1} + i g (1997)", True),
    Field("model.dtype", "str", "float64 or float32", "float64", choices=DTYPES,
          option_help="float64 or float32."),
    Field("gradients.batch", "int", "sequences in the gradient-probe batch (the one probe: as train.probe_size)",
          PROBE_BATCH, minimum=1),
    Field("train.batch", "int", "sequences per batch", 64, minimum=1,
          option_help="Sequences per batch."),
    Field("train.steps", "int", "the step budget", None, minimum=1, nullable=True,
          option_help=("Most training steps; it stops early on success (default: the task's budget: "
                       + ", ".join(f"{t.name} {t.steps}" for t in _task_table()) + ").")),
    Field("train.optimizer", "str", "the optimiser", "adam", choices=OPTIMIZERS,
          option_help="adam, sgd or momentum."),
    Field("train.lr", "float", "learning rate", None, above=0, nullable=True,
          option_help=("Learning rate (default: " + ", ".join(
              [f"adam {DEFAULT_LR['adam']:g}"] + [f"adam {t.adam_lr:g} on {t.name}" for t in _task_table() if t.adam_lr]
              + [f"{name} {lr:g}" for name, lr in DEFAULT_LR.items() if name != "adam"]) + ").")),
    Field("train.momentum", "float", "the momentum optimiser's mu", 0.9, minimum=0, below=1,
          option_help="Momentum of --optimizer momentum."),
    Field("train.clip", "float", "global-norm clipping threshold, 0 disables", 1.0, minimum=0,
          option_help="Clip the gradient to this global norm (Pascanu et al. 2013); 0 disables."),
    Field("train.eval_every", "int", "steps between evaluations", 25, minimum=1,
          option_help="Steps between held-out evaluations and gradient probes (default {default})."),
    Field("train.eval_size", "int", "held-out sequences", 256, minimum=1,
          option_help="Held-out sequences (default {default})."),
    Field("train.probe_size", "int", "sequences in the gradient-probe batch (the one probe: as gradients.batch)",
          PROBE_BATCH, minimum=1),
)}
MODEL_FIELDS = {f.name: f for f in FIELDS.values() if f.key.startswith("model.") and f.name != "kind"}


def default(key: str) -> Any:
    """The default of setting ``key``."""
    return FIELDS[key].default


def check(key: str, value: Any) -> Any:
    """The normalised value of setting ``key``, or BadInput "KEY: PROBLEM": the one check."""
    value, problem = FIELDS[key].check(value)
    if problem is not None:
        raise BadInput(f"{key}: {problem}")
    return value


def model_field(name: str, kind: str, source: str) -> Field:
    """The field of model setting ``name`` for a model of ``kind``; BadInput if there is none."""
    field = MODEL_FIELDS.get(name.replace("-", "_"))
    if field is None:
        raise BadInput(f"model: unknown model setting {name!r}{did_you_mean(name, MODEL_FIELDS)} in "
                       f"{source!r}; known: {', '.join(MODEL_FIELDS)}")
    if kind in KINDS and not applies(field.name, kind):
        raise BadInput(not_for_kind(field, source))
    return field


def applies(name: str, kind: str) -> bool:
    """Whether model setting ``name`` applies to a model of ``kind`` (the cell says which it takes)."""
    return name in cells.get(kind).settings


def not_for_kind(field: Field, model: str) -> str:
    """The message for a model setting given to a kind it does not apply to."""
    kinds = cells.taking(field.name)
    named = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return f"{field.key}: applies to the {named} only, not to {model!r}"


def parse_model_text(text: str, defaults: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``kind[:key=value,...]`` -> (kind, settings): ``defaults`` first, the text's keys win.

    Defaults of settings that do not apply to ``kind`` are dropped; the same settings
    written in the text are an error (they would be silently ignored).
    """
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip()
    check("model.kind", kind)
    settings = {k: v for k, v in defaults.items() if applies(k, kind)}
    given: set[str] = set()
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise BadInput(f"model: bad model setting {item!r} in {text.strip()!r}: use key=value")
        field = model_field(key.strip(), kind, text.strip())
        if field.name in given:  # as a scenario file refuses a duplicate key: never silently the last one
            raise BadInput(f"model: {field.name} is given twice in {text.strip()!r}; give each setting once")
        given.add(field.name)
        settings[field.name] = check(field.key, field.parse(value))
    return kind, settings


def did_you_mean(word: str, candidates) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    return "true" if value is True else "false" if value is False else repr(value)


# ---- memory: how large a request may be ----
#
# A command estimates the bytes its largest arrays need and calls ``check_memory``
# before it builds them, so an impossible request (``--gap 1000000000``, a
# checkpoint that claims a 3 GB array) ends at once with one line naming the
# size and the limit instead of a MemoryError minutes later. The limit is the
# smallest of what this process may still get: the machine's available memory
# (``MemAvailable`` of /proc/meminfo), the address space ``ulimit -v`` leaves
# (RLIMIT_AS less what is mapped already) and the memory cgroup's room (a
# container, a Slurm job: cgroup v2 ``memory.max`` less ``memory.current``, or
# v1 ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``, over the process's
# cgroup and its parents). LSTM_DEMO_MEMORY_LIMIT (bytes, or with a suffix K, M,
# G, T: ``512M``) replaces them all.

MEMORY_ENV = "LSTM_DEMO_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
PROC = Path("/proc")  # where the kernel's files are (tests point these elsewhere)
CGROUP_ROOT = Path("/sys/fs/cgroup")
NO_LIMIT = 1 << 60  # cgroup v1 writes "unlimited" as a page-rounded 2**63 - 1


def parse_size(text: str) -> int:
    """``"512M"`` -> 536870912; BadInput naming the variable for anything else."""
    number, unit = text.strip(), ""
    if number[-1:].upper() in _UNITS:
        number, unit = number[:-1], number[-1].upper()
    if number.endswith(("b", "B")) and unit == "":
        number = number[:-1]
    if not number.isdigit() or len(number) > 20:
        raise BadInput(f"{MEMORY_ENV}={text!r} is not a size; use bytes or a number with K, M, G or T (e.g. 512M)")
    return int(number) * _UNITS[unit]


def _kernel_file(path: Path) -> str | None:
    """A small file of /proc or /sys, or None when it cannot be read."""
    from lstm_cli.files import read_regular

    try:
        return read_regular(path, 1 << 20).decode("ascii", "replace")
    except (OSError, ValueError):
        return None


def _field_kb(text: str | None, name: str) -> int | None:
    """``name:  123 kB`` of /proc/meminfo or /proc/self/status, in bytes."""
    for line in (text or "").splitlines():
        if line.startswith(name + ":"):
            try:
                return int(line.split()[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


def available_memory() -> int | None:
    """The machine's available memory in bytes, or None when it cannot be read."""
    found = _field_kb(_kernel_file(PROC / "meminfo"), "MemAvailable")
    if found is not None:
        return found
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def address_space_left() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) still allows this process to map, or None without a limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = _field_kb(_kernel_file(PROC / "self" / "status"), "VmSize") or 0
    return max(0, soft - mapped)


def _number(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None  # "max" (v2, no limit), missing or garbled: None


def cgroup_memory_left() -> int | None:
    """The room left in this process's memory cgroup and its parents (v2 and v1), or None."""
    text = _kernel_file(PROC / "self" / "cgroup") or ""
    lefts = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: 0::/path
            limit, used, base = "memory.max", "memory.current", CGROUP_ROOT
        elif "memory" in controllers.split(","):  # v1: 4:memory:/path
            limit, used, base = "memory.limit_in_bytes", "memory.usage_in_bytes", CGROUP_ROOT / "memory"
        else:
            continue
        relative = Path(path.strip().lstrip("/"))
        # the cgroup and each parent up to the root (inside a container the path may not exist
        # under /sys/fs/cgroup, whose root is then the container's own cgroup)
        for folder in [base / relative, *[base / p for p in relative.parents]]:
            cap = _number(_kernel_file(folder / limit))
            if cap is not None and cap < NO_LIMIT:
                lefts.append(max(0, cap - (_number(_kernel_file(folder / used)) or 0)))
    return min(lefts) if lefts else None


def memory_limit() -> tuple[int | None, str]:
    """(bytes a command may use or None for no known limit, where that number comes from): the
    smallest of the available memory, the address space left and the cgroup's room."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text:
        return parse_size(text), MEMORY_ENV
    kept = process.freed_memory_kept()  # this process's to reuse, though every figure below counts it as used
    found = [(value + kept, source) for value, source in (
        (available_memory(), "available memory"), (address_space_left(), "address space left by ulimit -v"),
        (cgroup_memory_left(), "room left in the memory cgroup")) if value is not None]
    return min(found) if found else (None, "no known limit")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def check_memory(need: float, what: str) -> None:
    """BadInput when ``need`` bytes exceed the limit; ``what`` names the request in the message."""
    bytes_allowed, source = memory_limit()
    if bytes_allowed is not None and need > bytes_allowed:
        raise BadInput(f"{what} needs about {human_bytes(need)} of memory, more than the limit of "
                       f"{human_bytes(bytes_allowed)} ({source}; set {MEMORY_ENV} to change it)")


# ---- estimates (bytes, float64; upper bounds fitted to tracemalloc peaks: docs/hardening.md) ----
# What one sequence step of a kind holds comes from its cell (``Cell.step_bytes``); the cell's
# module is imported here, at the call, so that this module stays free of numpy.

def probe_bytes(kind: str, hidden: int, batch: int, length: int, input_size: int) -> float:
    """A gradient probe of one model: the forward and backward caches of the batch plus each
    step's share of dL/dW_hh, a (G*H, H) matrix per step (``Cell.probe_bytes``)."""
    return cells.get(kind).probe_bytes(hidden, batch, length, input_size)


def train_bytes(kind: str, hidden: int, length: int, input_size: int, batch: int, eval_size: int,
                probe_size: int) -> float:
    """A training run: the largest of a training step, the held-out evaluation (its data kept
    for the whole run) and the gradient probe (``Cell.train_bytes``)."""
    return cells.get(kind).train_bytes(hidden, length, input_size, batch, eval_size, probe_size)
