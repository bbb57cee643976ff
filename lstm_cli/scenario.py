"""Scenarios: one experiment (or a grid of them) described in a short YAML file.

A scenario file, every key optional except that it must ask for ``train`` or
``gradients`` (or both)::

    description: LSTM vs RNN success rate as the gap grows   # one line, for `lstm-demo scenarios`
    task: remember          # remember | adding | temporal-order | agreement
    gap: 50                 # steps between the information and the question
    seed: 0
    model: lstm             # "kind[:key=value,...]" or a mapping {kind: lstm, hidden: 32, ...}
    gradients:              # probe the gradient flow at initialisation
      batch: 64
    train:                  # train the model (defaults: lstm_cli.train.TrainConfig)
      steps: 1500
      lr: 1e-2
      clip: 1.0             # 0 disables clipping
    sweep:                  # a grid: every combination of these settings becomes a run
      gap: [5, 10, 20, 50, 100]
      model: [rnn, lstm]
      seed: 0..4            # an inclusive integer range, same as [0, 1, 2, 3, 4]

Settings have dotted names (``gap``, ``model.hidden``, ``train.lr``,
``gradients.batch``); a leaf name that belongs to one section only may be
used alone in ``sweep:`` and ``--set`` (``lr`` for ``train.lr``). A ``model``
value in a sweep or ``--set`` is laid over the scenario's model, so with
``model: {kind: lstm, hidden: 64}``, sweeping ``model: [rnn, lstm]`` gives both
64 hidden units.

``--set key=value`` overrides one setting (a single value also replaces a
sweep axis over that key); ``--set key=a,b,c``, ``--set key=[a, b]`` or
``--set key=0..4`` makes the key a sweep axis.

YAML 1.1 traps are not inherited: the loader resolves only YAML 1.2's core
scalars, so ``1e-3`` is the float 0.001, ``yes``/``no``/``on``/``off`` are plain
strings (only ``true``/``false`` are booleans), ``010`` is ten and ``1:30`` is
not a number. A duplicate key, an empty file or a tab in the indentation is
an error. The schema is walked on the YAML nodes themselves, so every problem
is reported as ``file:line: key: what is wrong`` (one line per problem).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lstm_cli import config
from lstm_cli.config import _shown  # noqa: F401
from lstm_cli.errors import BadInput

MAX_RUNS = 100_000  # a grid larger than this is almost surely a typo in a range


class ScenarioError(BadInput):
    """One or more problems in a scenario or a ``--set``; one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ---- a YAML 1.2-core loader: nodes with line numbers, no 1.1 surprises ----

class _Loader(yaml.SafeLoader):
    yaml_implicit_resolvers: dict = {}


_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+.0123456789"),
]
for _tag, _pattern, _first in _RESOLVERS:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _scalar_value(node: yaml.Node) -> Any:
    """The Python value of a scalar node under the YAML 1.2 core schema."""
    tag, text = node.tag, node.value
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return text.lower() == "true"
    if tag.endswith(":int"):
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 16) if text.startswith("0x") else int(text)
    if tag.endswith(":float"):
        lowered = text.lower().lstrip("+")
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        return math.nan if lowered == ".nan" else float(text)
    return text


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


# ---- the settings: one table in config.py ----

SETTINGS = config.FIELDS
SECTIONS = ("model", "gradients", "train")
TOP_LEVEL = ("description", "task", "gap", "seed", "model", "gradients", "train", "sweep")
NOT_SWEEPABLE = ("description",)
SWEEPABLE = tuple(k for k in SETTINGS if k not in NOT_SWEEPABLE)
MODEL_FIELDS = tuple(k.split(".", 1)[1] for k in SETTINGS if k.startswith("model."))


_did_you_mean = config.did_you_mean


def canonical_key(key: str) -> str | None:
    """``key`` as a full dotted setting name, resolving unambiguous leaf names; None if unknown."""
    key = key.strip().replace("-", "_")
    if key in SETTINGS:
        return key
    matches = [k for k in SWEEPABLE if k.split(".")[-1] == key]
    return matches[0] if len(matches) == 1 else None


def _unknown_key_problem(key: str, candidates) -> str:
    matches = [k for k in SWEEPABLE if k.split(".")[-1] == key.replace("-", "_")]
    if len(matches) > 1:
        return f"ambiguous setting {key!r}: say {' or '.join(matches)}"
    leaves = {k.split(".")[-1]: k for k in candidates}
    hint = _did_you_mean(key, list(candidates) + list(leaves))
    return f"unknown setting {key!r}{hint}"


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

        fields = {k.split(".", 1)[1]: v for k, v in self.settings.items() if k.startswith("model.")}
        kind = fields.get("kind", "lstm")
        drop = ("forget_bias", "chrono") if kind == "rnn" else ("activation",)
        return ModelSpec(**{k: v for k, v in fields.items() if k not in drop})

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
        if given.get("steps") is None:
            given.pop("steps", None)
        if given.get("lr") is None:
            given.pop("lr", None)
        return TrainConfig(task=self.task, gap=self.gap, model=self.model_spec(), seed=self.seed, **given)

    def gradients_batch(self) -> int:
        return self.settings.get("gradients.batch", GRADIENTS_BATCH)


GRADIENTS_BATCH = 64  # as `lstm-demo gradients --batch`


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
                _apply(settings, name, value)
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


def _apply(settings: dict, key: str, value: Any) -> None:
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


# ---- loading ----

class _Checker:
    """Collects problems as ``where: key: problem`` lines."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def at(self, node: yaml.Node | None) -> str:
        return f"{self.source}:{_line(node)}" if node is not None else self.source

    def fail(self, node: yaml.Node | None, key: str | None, problem: str) -> None:
        self.problems.append(f"{self.at(node)}: {key + ': ' if key else ''}{problem}")

    def mapping(self, node: yaml.Node, key: str | None) -> list[tuple[str, yaml.Node, yaml.Node]] | None:
        """A mapping node's (key, key node, value node) items; duplicates and non-string keys fail."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, f"must be a mapping of settings (key: value), got {_node_kind(node)}")
            return None
        items, seen = [], {}
        for knode, vnode in node.value:
            name = _scalar_value(knode) if isinstance(knode, yaml.ScalarNode) else None
            full = f"{key}.{name}" if key else name
            if not isinstance(name, str):
                self.fail(knode, key, f"a key must be a name, got {_node_kind(knode)}")
                continue
            if name in seen:
                self.fail(knode, full, f"duplicate key (first given on line {seen[name]})")
                continue
            seen[name] = _line(knode)
            items.append((name, knode, vnode))
        return items

    def value(self, key: str, node: yaml.Node) -> tuple[Any, bool]:
        """A checked value of setting ``key`` from its node: (value, ok)."""
        setting = SETTINGS[key]
        if setting.type == "model":
            return self.model(node, key)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, key, f"must be a single value, got {_node_kind(node)}")
            return None, False
        raw = _scalar_value(node)
        value, problem = setting.check(raw)
        if problem and setting.type == "str" and not node.tag.endswith(":str") and raw is not None:
            problem += " (quote it if you meant a string)"
        if problem:
            self.fail(node, key, problem)
            return None, False
        return value, True

    def model(self, node: yaml.Node, key: str = "model") -> tuple[dict | None, bool]:
        """A model as a dict of model fields, from 'kind[:k=v,...]' or a mapping."""
        fields: dict = {}
        ok = True
        if isinstance(node, yaml.ScalarNode):
            text = _scalar_value(node)
            if not isinstance(text, str):
                self.fail(node, key, f"must be 'rnn', 'lstm' or 'kind:key=value,...', got {_shown(text)}")
                return None, False
            try:
                kind, settings = config.parse_model_text(text, {})
            except BadInput as err:
                self.fail(node, None, str(err))
                return None, False
            return {"kind": kind, **settings}, True
        items = self.mapping(node, key)
        if items is None:
            return None, False
        for name, knode, vnode in items:
            full = f"model.{name}"
            if full not in SETTINGS:
                self.fail(knode, full, f"unknown model setting{_did_you_mean(name, MODEL_FIELDS)}; "
                                       f"known: {', '.join(MODEL_FIELDS)}")
                ok = False
                continue
            value, good = self.value(full, vnode)
            ok &= good
            if good:
                fields[name] = value
        return (fields if ok else None), ok


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return _shown(_scalar_value(node))


def _parse_scalar(text: str) -> Any:
    """One value typed by the YAML 1.2-core rules (``1e-3`` a float, ``no`` a string)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return text
    return _scalar_value(node) if isinstance(node, yaml.ScalarNode) else text


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(f"{err.problem or err.context or 'malformed YAML'}".split())
        lines = text.splitlines()
        if (line and line <= len(lines) and "\t" in lines[line - 1][:len(lines[line - 1]) -
                                                                   len(lines[line - 1].lstrip())]) \
                or "'\\t'" in problem:
            problem = "a tab in the indentation; YAML indents with spaces only"
        raise ScenarioError([f"{source}:{line}: YAML syntax: {problem}" if line else
                             f"{source}: YAML syntax: {problem}"]) from None
    except yaml.YAMLError as err:
        raise ScenarioError([f"{source}: YAML syntax: {' '.join(str(err).split())}"]) from None


def parse(text: str, source: str = "<scenario>", name: str = "scenario", path: Path | None = None) -> Scenario:
    """Validate scenario ``text``; ScenarioError lists every problem (``source:line: key: ...``)."""
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise ScenarioError([f"{source}:1: the scenario file is empty (it needs at least a train: "
                             f"or gradients: section)"])
    root = _compose(text, source)
    check = _Checker(source)
    if root is None or (isinstance(root, yaml.ScalarNode) and _scalar_value(root) is None):
        raise ScenarioError([f"{source}:1: the scenario file is empty"])
    items = check.mapping(root, None)
    if items is None:
        raise ScenarioError(check.problems)
    settings: dict = {}
    where: dict = {}
    parts: list[str] = []
    sweep_node = None
    for top, knode, vnode in items:
        if top not in TOP_LEVEL:
            home = [k for k in SETTINGS if "." in k and k.split(".", 1)[1] == top]
            check.fail(knode, top, f"unknown key; it belongs in the {home[0].split('.')[0]}: section"
                       if len(home) == 1 else _unknown_key_problem(top, TOP_LEVEL))
            continue
        if top == "sweep":
            if not (isinstance(vnode, yaml.ScalarNode) and _scalar_value(vnode) is None):  # "sweep:" alone: none
                sweep_node = (knode, vnode)
        elif top in ("gradients", "train"):
            parts.append(top)
            if isinstance(vnode, yaml.ScalarNode) and _scalar_value(vnode) is None:
                continue  # "train:" alone: every default
            section = check.mapping(vnode, top)
            for sub, sknode, svnode in section or ():
                full = f"{top}.{sub}"
                if full not in SETTINGS:
                    leaves = [k.split(".", 1)[1] for k in SETTINGS if k.startswith(top + ".")]
                    check.fail(sknode, full, f"unknown setting{_did_you_mean(sub, leaves)}; "
                                             f"known in {top}: {', '.join(leaves)}")
                    continue
                value, ok = check.value(full, svnode)
                if ok:
                    settings[full], where[full] = value, check.at(svnode)
        elif top == "model":
            fields, ok = check.model(vnode)
            if ok:
                for k, v in fields.items():
                    settings[f"model.{k}"], where[f"model.{k}"] = v, check.at(vnode)
        else:
            value, ok = check.value(top, vnode)
            if ok:
                settings[top], where[top] = value, check.at(vnode)
    if not parts and not check.problems:
        check.fail(root, None, "nothing to run: add a train: section, a gradients: section or both")
    axes: dict = {}
    if sweep_node is not None:
        knode, vnode = sweep_node
        for axis, aknode, avnode in check.mapping(vnode, "sweep") or ():
            key = canonical_key(axis)
            if key is None or key in NOT_SWEEPABLE:
                check.fail(aknode, f"sweep.{axis}", "cannot sweep over this: " + _unknown_key_problem(axis, SWEEPABLE)
                           if key is None else "cannot be swept")
                continue
            if key in axes:
                check.fail(aknode, f"sweep.{axis}", f"sweeps {key} a second time")
                continue
            values = _axis_values(check, key, avnode, f"sweep.{axis}")
            if values is not None:
                axes[key] = values
                where[("axis", key)] = check.at(avnode)
    if check.problems:
        raise ScenarioError(check.problems)
    description = settings.pop("description", "")
    scenario = Scenario(name=name, path=path, description=description, settings=settings,
                        axes=axes, parts=tuple(p for p in ("gradients", "train") if p in parts), where=where)
    _check_axes_need_parts(scenario, source)
    _check_points(scenario)
    return scenario


def _axis_values(check: _Checker, key: str, node: yaml.Node, label: str) -> list | None:
    """The values of one sweep axis: a list, or an inclusive integer range 'a..b[:step]'."""
    if isinstance(node, yaml.ScalarNode):
        raw = _scalar_value(node)
        if isinstance(raw, str) and ".." in raw and SETTINGS[key].type == "int":
            values, problem = _range(raw)
            if problem:
                check.fail(node, label, problem)
                return None
            items = [(v, node) for v in values]
        else:
            check.fail(node, label, "a sweep axis needs a list of values, e.g. [1, 2, 3]"
                       + (" or a range 0..4" if SETTINGS[key].type == "int" else ""))
            return None
    elif isinstance(node, yaml.SequenceNode):
        items = [(None, item) for item in node.value]
        if not items:
            check.fail(node, label, "an empty sweep axis makes no runs")
            return None
    else:
        check.fail(node, label, "a sweep axis needs a list of values, got a mapping")
        return None
    values, ok, seen = [], True, []
    for value, item in items:
        if value is None:
            value, good = check.value(key, item)
        else:
            value, problem = SETTINGS[key].check(value)
            good = problem is None
            if not good:
                check.fail(item, label, problem)
        if not good:
            ok = False
            continue
        if value in seen:
            check.fail(item, label, f"the value {format_value(value)} is listed twice")
            ok = False
            continue
        seen.append(value)
        values.append(value)
    return values if ok else None


def _range(text: str) -> tuple[list[int], str | None]:
    match = re.fullmatch(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?::\s*(\d+)\s*)?", text)
    if not match:
        return [], f"bad range {text!r}: use first..last or first..last:step (integers, inclusive)"
    first, last, step = int(match[1]), int(match[2]), int(match[3] or 1)
    if step < 1 or last < first:
        return [], f"bad range {text!r}: it must count up (first <= last, step >= 1)"
    values = list(range(first, last + 1, step))
    if len(values) > MAX_RUNS:
        return [], f"range {text!r} has {len(values)} values; that is too many"
    return values, None


def _check_axes_need_parts(scenario: Scenario, source: str) -> None:
    problems = []
    for key in [*scenario.settings, *scenario.axes]:
        section = key.split(".", 1)[0]
        if section in ("train", "gradients") and section not in scenario.parts:
            where = scenario.where.get(("axis", key)) or scenario.where.get(key) or source
            problems.append(f"{where}: {key}: the scenario has no {section}: section to apply it to")
    if problems:
        raise ScenarioError(problems)


def _check_points(scenario: Scenario) -> None:
    """Build every run's model and config, so a bad combination fails now, with its line."""
    size = math.prod(len(v) for v in scenario.axes.values())
    if size > MAX_RUNS:
        raise ScenarioError([f"{scenario.where.get(('axis', next(iter(scenario.axes))), scenario.name)}: "
                             f"sweep: the grid has {size} runs; the limit is {MAX_RUNS}"])
    from lstm_cli.tasks import get_task

    problems: list[str] = []
    for point in scenario.points():
        def where(key):
            if key in scenario.axes:
                return scenario.where.get(("axis", key), scenario.name)
            return scenario.where.get(key, scenario.name)

        task = get_task(point.task)
        if point.gap < task.min_gap:
            problems.append(f"{where('gap')}: gap: must be >= {task.min_gap} for task {task.name}, "
                            f"got {point.gap}")
            break
        try:
            if "train" in scenario.parts:
                point.train_config()
            else:
                point.model_spec()
        except BadInput as err:
            axis_models = [k for k in scenario.axes if k.startswith("model")]
            key = axis_models[0] if axis_models else "model.kind"
            problems.append(f"{where(key)}: {_point_label(point)}{err}")
            break
    if problems:
        raise ScenarioError(problems)


def _point_label(point: RunPoint) -> str:
    return f"run {point.key}: " if point.values else ""


def load(path: str | Path, overrides: list[str] = ()) -> Scenario:
    """Read and validate a scenario file (a path, or the name of a bundled scenario), then
    apply ``--set`` overrides."""
    path = resolve_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError([f"{path}: not a text (UTF-8) file"]) from None
    except OSError as err:
        raise ScenarioError([f"{path}: cannot read: {err.strerror}"]) from None
    scenario = parse(text, source=str(path), name=path.stem, path=path)
    return apply_overrides(scenario, overrides) if overrides else scenario


# ---- --set ----

def parse_set(text: str) -> tuple[str, list, bool]:
    """``key=value`` -> (dotted key, values, is_axis). Values are typed and checked."""
    where = f"--set {text}"
    name, eq, raw = text.partition("=")
    if not eq or not name.strip():
        raise ScenarioError([f"{where}: expected key=value (e.g. --set train.lr=1e-3 or --set seed=0..4)"])
    key = canonical_key(name)
    if key is None or key in NOT_SWEEPABLE:
        raise ScenarioError([f"{where}: " + (_unknown_key_problem(name.strip(), SWEEPABLE) if key is None
                                             else f"{name.strip()}: cannot be set from the command line")])
    raw = raw.strip()
    check = _Checker(where)
    check.at = lambda node: where  # type: ignore[method-assign]
    if raw.startswith("["):
        node = _compose(raw, where)
        values = _axis_values(check, key, node, key) if isinstance(node, yaml.SequenceNode) else None
        if values is None and not check.problems:
            check.fail(None, key, "bad list; write [a, b, c]")
        is_axis = True
    elif ".." in raw and SETTINGS[key].type == "int":
        values, problem = _range(raw)
        if problem:
            check.fail(None, key, problem)
        is_axis = True
    else:
        parts = _split_values(raw, key)
        values = []
        for part in parts:
            node = yaml.ScalarNode("tag:yaml.org,2002:str" if key == "model" else _resolve_tag(part), part)
            value, ok = check.value(key, node)
            if ok:
                values.append(value)
        is_axis = len(parts) > 1
        if is_axis and len(set(map(format_value, values))) != len(values) and not check.problems:
            check.fail(None, key, "a value is listed twice")
    if check.problems:
        raise ScenarioError(check.problems[:1])
    return key, values, is_axis


def _resolve_tag(text: str) -> str:
    return _Loader.resolve(_Loader, yaml.ScalarNode, text, (True, False))


def _split_values(raw: str, key: str) -> list[str]:
    """Comma-separated values; for ``model`` a piece 'k=v' belongs to the model before it
    (``lstm:hidden=16,forget_bias=0,rnn`` is two models)."""
    pieces = [p.strip() for p in raw.split(",")]
    if key != "model":
        return pieces
    out: list[str] = []
    for piece in pieces:
        if out and "=" in piece and ":" not in piece:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


def apply_overrides(scenario: Scenario, overrides: list[str]) -> Scenario:
    """A new scenario with each ``--set`` applied in order (a single value replaces a sweep axis)."""
    settings = dict(scenario.settings)
    axes = dict(scenario.axes)
    where = dict(scenario.where)
    for text in overrides:
        key, values, is_axis = parse_set(text)
        section = key.split(".", 1)[0]
        if section in ("train", "gradients") and section not in scenario.parts:
            raise ScenarioError([f"--set {text}: {key}: the scenario has no {section}: section "
                                 f"(parts: {', '.join(scenario.parts)})"])
        if is_axis:  # an axis keeps its place (so run keys match the full sweep's); a new one goes last
            axes[key] = values
            where[("axis", key)] = f"--set {text}"
        else:
            axes.pop(key, None)
            _apply(settings, key, values[0])
            where[key if key != "model" else "model.kind"] = f"--set {text}"
    new = Scenario(name=scenario.name, path=scenario.path, description=scenario.description,
                   settings=settings, axes=axes, parts=scenario.parts, where=where)
    _check_points(new)
    return new


# ---- bundled scenarios ----

def bundled_dir() -> Path | None:
    """The bundled ``scenarios/`` directory: next to the package (a source checkout or an
    editable install) or installed as data files with a wheel (``<prefix>/share/lstm-demo/``);
    None when there is neither."""
    import sys

    here = Path(__file__).resolve().parent
    for candidate in (here / "scenarios", here.parent / "scenarios",
                      Path(sys.prefix) / "share" / "lstm-demo" / "scenarios"):
        if candidate.is_dir():
            return candidate
    return None


def bundled() -> list[tuple[str, Path, str]]:
    """(name, path, one-line description) of every bundled scenario, by name."""
    folder = bundled_dir()
    if folder is None:
        return []
    out = []
    for path in sorted(folder.glob("*.yaml")):
        out.append((path.stem, path, describe(path)))
    return out


def describe(path: Path) -> str:
    """A scenario's ``description:`` line, read without validating the whole file."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "(unreadable)"
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == "description" \
                    and isinstance(vnode, yaml.ScalarNode):
                return " ".join(str(vnode.value).split())
    return ""


def resolve_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else the bundled scenario of that name."""
    path = Path(name_or_path)
    if path.exists():
        return path
    folder = bundled_dir()
    if folder is not None and path.suffix == "" and len(path.parts) == 1:
        candidate = folder / f"{path.name}.yaml"
        if candidate.exists():
            return candidate
    names = [n for n, _, _ in bundled()]
    hint = _did_you_mean(path.stem, names) if names else ""
    raise ScenarioError([f"{name_or_path}: no such scenario file or bundled scenario{hint}"
                         + (f"; bundled: {', '.join(names)}" if names else "")])
