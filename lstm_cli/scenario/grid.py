"""A scenario and its grid of runs (RunPoint): keys, names and effective settings."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_cli import config
from lstm_cli.errors import BadInput
from lstm_cli.scenario.schema import canonical_key
from lstm_cli.scenario.yamlio import ScenarioError


# ---- the scenario and its runs ----

@dataclass(frozen=True)
class RunPoint:
    """One run of a scenario's grid: its index, its key and its settings."""

    index: int
    key: str  # e.g. "gap=50,model=lstm,seed=3" ("run" when there is no sweep)
    values: tuple[tuple[str, Any], ...]  # the sweep axes' values, in axis order
    settings: dict  # every setting given, as flat dotted keys (after the axes are applied)

    def model_spec(self):
        from lstm_cli.models import ModelSpec

        from lstm_cli.tasks import with_task_defaults

        fields = with_task_defaults(self.task, {k.split(".", 1)[1]: v for k, v in self.settings.items()
                                                if k.startswith("model.")})
        kind = fields.get("kind", "lstm")
        return ModelSpec(**{k: v for k, v in fields.items()
                            if k not in config.MODEL_FIELDS or config.applies(k, kind)})

    @property
    def task(self) -> str:
        return self.settings.get("task", _train_default("task"))

    @property
    def gap(self) -> int:
        return self.settings.get("gap", _train_default("gap"))

    @property
    def seed(self) -> int:
        return self.settings.get("seed", _train_default("seed"))

    def train_config(self):
        """The ``train.TrainConfig`` of this run (the train module's defaults where not given)."""
        from lstm_cli.train import TrainConfig

        given = {k.split(".", 1)[1]: v for k, v in self.settings.items() if k.startswith("train.")}
        given["probe_size"] = self.gradients_batch()  # the one probe (config.PROBE_BATCH)
        if given.get("steps") is None:
            given.pop("steps", None)
        if given.get("lr") is None:
            given.pop("lr", None)
        return TrainConfig(task=self.task, gap=self.gap, model=self.model_spec(), seed=self.seed, **given)

    def gradients_batch(self) -> int:
        """The probe batch of the gradients part and of training: gradients.batch or train.probe_size,
        which name one probe (config.PROBE_BATCH): a scenario that gives both must give one value."""
        given = {k: self.settings[k] for k in ("gradients.batch", "train.probe_size") if k in self.settings}
        if len(set(given.values())) > 1:
            raise BadInput(f"gradients.batch ({given['gradients.batch']}) and train.probe_size "
                           f"({given['train.probe_size']}) name the one probe batch: give one, or the same value")
        return next(iter(given.values()), GRADIENTS_BATCH)


GRADIENTS_BATCH = config.PROBE_BATCH  # as `lstm-demo gradients --batch` and train's probe


def _train_default(name: str):
    """task, gap and seed default to ``TrainConfig``'s, for the gradients part too."""
    from lstm_cli.train import TrainConfig

    return getattr(TrainConfig, name)


@dataclass
class Scenario:
    """A validated scenario: base settings, sweep axes (in order) and which parts to run."""

    name: str
    path: Path | None
    description: str
    settings: dict  # flat dotted key -> value
    axes: dict  # dotted key -> list of values
    parts: tuple[str, ...]  # "gradients" and/or "train"
    where: dict = field(default_factory=dict)  # key or ("axis", key) -> "file:line" for messages

    def points(self) -> list[RunPoint]:
        """The grid, first axis slowest; identical configurations (e.g. a forget bias crossed
        with the RNN, which has none) are kept once."""
        names = list(self.axes)
        out: list[RunPoint] = []
        seen, keys = set(), set()
        for combo in itertools.product(*(self.axes[n] for n in names)):
            settings = dict(self.settings)
            for name, value in zip(names, combo):
                apply_setting(settings, name, value)
            values = tuple(zip(names, combo))
            point = RunPoint(len(out), run_key(values), values, settings)
            identity = repr(sorted(_effective(point).items()))
            if identity in seen:
                continue
            if point.key in keys:
                raise ScenarioError([f"{self.where.get(('axis', names[0]), self.name)}: sweep: two different "
                                     f"runs would share the key {point.key!r}"])
            seen.add(identity)
            keys.add(point.key)
            out.append(point)
        return out

    def point(self, index: int) -> RunPoint:
        points = self.points()
        if not 0 <= index < len(points):
            raise BadInput(f"--index {index} is out of range: {self.name} has {len(points)} run(s), "
                           f"indices 0..{len(points) - 1}")
        return points[index]


def _effective(point: RunPoint) -> dict:
    """The settings that change what a run computes (model fields of the other kind removed)."""
    spec = point.model_spec()
    settings = {k: v for k, v in point.settings.items() if not k.startswith("model.") and k != "description"}
    settings["model"] = repr(spec)
    return settings


def apply_setting(settings: dict, key: str, value: Any) -> None:
    """Set ``key`` in flat ``settings``; a whole ``model`` value is laid over the model fields."""
    if key == "model":
        settings.update({f"model.{k}": v for k, v in value.items()})
    else:
        settings[key] = value


def format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = format(value, "g")
        return short if float(short) == value else repr(value)
    if isinstance(value, dict):  # a model laid over the base: its kind, then its settings
        kind = value.get("kind")
        rest = [f"{k}={format_value(v)}" for k, v in value.items() if k != "kind"]
        text = (kind or "model") + (":" + "+".join(rest) if rest else "")
        return text
    return str(value).replace(",", "+").replace("/", "_").replace(" ", "")


def run_key(values) -> str:
    """A stable, readable key from the sweep values, also a safe directory name."""
    return ",".join(f"{short_name(name)}={format_value(v)}" for name, v in values) or "run"


def short_name(key: str) -> str:
    """``train.clip`` as ``clip`` when that leaf names one setting only."""
    leaf = key.split(".")[-1]
    return leaf if canonical_key(leaf) == key else key
