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
code); ``kinds`` restricts it to some model kinds, e.g. LSTM-family fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from lstm_cli.errors import BadInput

SEED_MAX = 2**32 - 1  # numpy's legacy seeding range; the same bound everywhere
KINDS = ("rnn", "lstm")
LSTM_FAMILY = ("lstm",)
INITS = ("uniform", "orthogonal", "identity")  # and "auto", resolved in ModelSpec
DTYPES = ("float64", "float32")
ACTIVATIONS = ("tanh", "relu")
OPTIMIZERS = ("adam", "sgd", "momentum")
DEFAULT_GAP = 50


def _tasks() -> tuple[str, ...]:
    from lstm_cli.tasks import TASKS

    return tuple(TASKS)


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
    kinds: tuple[str, ...] | None = None  # model fields: the kinds it applies to (None: all)
    option_help: str = ""  # the command-line option's help

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
          option_help="remember, adding, temporal-order or agreement."),
    Field("gap", "int", "steps between the information and the question", DEFAULT_GAP, minimum=1,
          option_help="Steps between the information and the question."),
    Field("seed", "int", "seed of every random stream", 0, minimum=0, maximum=SEED_MAX,
          option_help="Seed of every random stream; same seed, same numbers."),
    Field("model", "model", "'kind[:key=value,...]' or a mapping of model settings"),
    Field("model.kind", "str", "rnn or lstm", "lstm", choices=KINDS),
    Field("model.hidden", "int", "hidden units H", 32, minimum=1,
          option_help="Hidden units H."),
    Field("model.activation", "str", "RNN nonlinearity", "tanh", choices=ACTIVATIONS, kinds=("rnn",),
          option_help="RNN nonlinearity: tanh or relu."),
    Field("model.init", "str", "W_hh initialisation", "auto", choices=("auto",) + INITS,
          option_help=("W_hh init: auto (uniform, or orthogonal when --recurrent-scale is not 1), "
                       "uniform (PyTorch's default), orthogonal, identity (IRNN).")),
    Field("model.recurrent_scale", "float", "multiplies W_hh", 1.0, above=0,
          option_help="Multiplies W_hh; with orthogonal init it is the spectral radius."),
    Field("model.forget_bias", "float", "LSTM forget-gate bias", 3.0, kinds=LSTM_FAMILY,
          option_help="LSTM forget-gate bias (default 3: sigmoid(3)=0.95, the gate starts open)."),
    Field("model.chrono", "float", "LSTM chrono init T_max", None, above=2, nullable=True, kinds=LSTM_FAMILY,
          option_help="LSTM chrono init with this T_max (Tallec & Ollivier 2018); overrides --forget-bias."),
    Field("model.dtype", "str", "float64 or float32", "float64", choices=DTYPES,
          option_help="float64 or float32."),
    Field("gradients.batch", "int", "sequences in the probe batch", 64, minimum=1),
    Field("train.batch", "int", "sequences per batch", 64, minimum=1,
          option_help="Sequences per batch."),
    Field("train.steps", "int", "the step budget", None, minimum=1, nullable=True,
          option_help=("Most training steps; it stops early on success (default: the task's budget: "
                       "remember 1500, adding 4000, temporal-order 2000, agreement 1500).")),
    Field("train.optimizer", "str", "the optimiser", "adam", choices=OPTIMIZERS,
          option_help="adam, sgd or momentum."),
    Field("train.lr", "float", "learning rate", None, above=0, nullable=True,
          option_help="Learning rate (default: adam 0.001, adam 0.003 on adding, sgd 0.1, momentum 0.01)."),
    Field("train.momentum", "float", "the momentum optimiser's mu", 0.9, minimum=0, below=1,
          option_help="Momentum of --optimizer momentum."),
    Field("train.clip", "float", "global-norm clipping threshold, 0 disables", 1.0, minimum=0,
          option_help="Clip the gradient to this global norm (Pascanu et al. 2013); 0 disables."),
    Field("train.eval_every", "int", "steps between evaluations", 25, minimum=1,
          option_help="Steps between held-out evaluations and gradient probes (default 25)."),
    Field("train.eval_size", "int", "held-out sequences", 256, minimum=1,
          option_help="Held-out sequences (default 256)."),
    Field("train.probe_size", "int", "sequences in the gradient-probe batch", 32, minimum=1),
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
    if field.kinds is not None and kind in KINDS and kind not in field.kinds:
        raise BadInput(not_for_kind(field, source))
    return field


def not_for_kind(field: Field, model: str) -> str:
    """The message for a model setting given to a kind it does not apply to."""
    return f"{field.key}: applies to the {', '.join(field.kinds or ())} only, not to {model!r}"


def parse_model_text(text: str, defaults: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``kind[:key=value,...]`` -> (kind, settings): ``defaults`` first, the text's keys win.

    Defaults of settings that do not apply to ``kind`` are dropped; the same settings
    written in the text are an error (they would be silently ignored).
    """
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip()
    check("model.kind", kind)
    settings = {k: v for k, v in defaults.items()
                if MODEL_FIELDS[k].kinds is None or kind in MODEL_FIELDS[k].kinds}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise BadInput(f"model: bad model setting {item!r} in {text.strip()!r}: use key=value")
        field = model_field(key.strip(), kind, text.strip())
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
