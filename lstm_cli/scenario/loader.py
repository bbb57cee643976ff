"""Parsing a scenario file, checking its sweep axes and runs, and --set overrides."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from lstm_cli.config import FIELDS, did_you_mean
from lstm_cli.errors import BadInput
from lstm_cli.scenario.bundled import resolve_path
from lstm_cli.scenario.grid import RunPoint, Scenario, apply_setting, format_value
from lstm_cli.scenario.schema import (
    NOT_SWEEPABLE, SWEEPABLE, TOP_LEVEL, Checker, canonical_key, unknown_key_problem)
from lstm_cli.scenario.yamlio import MAX_RUNS, Loader, ScenarioError, compose_node, scalar_value


def parse(text: str, source: str = "<scenario>", name: str = "scenario", path: Path | None = None) -> Scenario:
    """Validate scenario ``text``; ScenarioError lists every problem (``source:line: key: ...``)."""
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise ScenarioError([f"{source}:1: the scenario file is empty (it needs at least a train: "
                             f"or gradients: section)"])
    root = compose_node(text, source)
    check = Checker(source)
    if root is None or (isinstance(root, yaml.ScalarNode) and scalar_value(root) is None):
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
            home = [k for k in FIELDS if "." in k and k.split(".", 1)[1] == top]
            check.fail(knode, top, f"unknown key; it belongs in the {home[0].split('.')[0]}: section"
                       if len(home) == 1 else unknown_key_problem(top, TOP_LEVEL))
            continue
        if top == "sweep":
            if not (isinstance(vnode, yaml.ScalarNode) and scalar_value(vnode) is None):  # "sweep:" alone: none
                sweep_node = (knode, vnode)
        elif top in ("gradients", "train"):
            parts.append(top)
            if isinstance(vnode, yaml.ScalarNode) and scalar_value(vnode) is None:
                continue  # "train:" alone: every default
            section = check.mapping(vnode, top)
            for sub, sknode, svnode in section or ():
                full = f"{top}.{sub}"
                if full not in FIELDS:
                    leaves = [k.split(".", 1)[1] for k in FIELDS if k.startswith(top + ".")]
                    check.fail(sknode, full, f"unknown setting{did_you_mean(sub, leaves)}; "
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
    axes = _sweep_axes(check, sweep_node[1], where) if sweep_node is not None else {}
    if check.problems:
        raise ScenarioError(check.problems)
    description = settings.pop("description", "")
    scenario = Scenario(name=name, path=path, description=description, settings=settings,
                        axes=axes, parts=tuple(p for p in ("gradients", "train") if p in parts), where=where)
    _check_axes_need_parts(scenario, source)
    _check_points(scenario)
    return scenario


def _sweep_axes(check: Checker, node: yaml.Node, where: dict) -> dict:
    """The ``sweep:`` section's axes {dotted key: values}; problems go to ``check``."""
    axes: dict = {}
    for axis, aknode, avnode in check.mapping(node, "sweep") or ():
        key = canonical_key(axis)
        if key is None or key in NOT_SWEEPABLE:
            check.fail(aknode, f"sweep.{axis}", "cannot sweep over this: " + unknown_key_problem(axis, SWEEPABLE)
                       if key is None else "cannot be swept")
            continue
        if key in axes:
            check.fail(aknode, f"sweep.{axis}", f"sweeps {key} a second time")
            continue
        values = _axis_values(check, key, avnode, f"sweep.{axis}")
        if values is not None:
            axes[key] = values
            where[("axis", key)] = check.at(avnode)
    return axes


def _axis_values(check: Checker, key: str, node: yaml.Node, label: str) -> list | None:
    """The values of one sweep axis: a list, or an inclusive integer range 'a..b[:step]'."""
    if isinstance(node, yaml.ScalarNode):
        raw = scalar_value(node)
        if isinstance(raw, str) and ".." in raw and FIELDS[key].type == "int":
            values, problem = _range(raw)
            if problem:
                check.fail(node, label, problem)
                return None
            items = [(v, node) for v in values]
        else:
            check.fail(node, label, "a sweep axis needs a list of values, e.g. [1, 2, 3]"
                       + (" or a range 0..4" if FIELDS[key].type == "int" else ""))
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
            value, problem = FIELDS[key].check(value)
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


MAX_INT_DIGITS = 4300  # Python's int() limit for text (sys.get_int_max_str_digits)


def _abridged(text: str) -> str:
    return text if len(text) <= 30 else f"{text[:20]}... ({len(text)} characters)"


def _range(text: str) -> tuple[list[int], str | None]:
    match = re.fullmatch(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?::\s*(\d+)\s*)?", text)
    if not match:
        return [], f"bad range {text!r}: use first..last or first..last:step (integers, inclusive)"
    if max(len(part or "") for part in match.groups()) > MAX_INT_DIGITS:  # int() refuses 4300+ digits
        return [], f"bad range {_abridged(text)!r}: a bound has more than {MAX_INT_DIGITS} digits"
    first, last, step = int(match[1]), int(match[2]), int(match[3] or 1)
    if step < 1 or last < first:
        return [], f"bad range {text!r}: it must count up (first <= last, step >= 1)"
    count = (last - first) // step + 1  # counted before a single value is made
    if count > MAX_RUNS:
        return [], f"range {text!r} has {count} values, more than the {MAX_RUNS} runs a sweep may have"
    return list(range(first, last + 1, step)), None


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
    from lstm_cli.files import check_name
    from lstm_cli.tasks import get_task

    problems: list[str] = []
    for point in scenario.points():
        try:  # a run key is a directory name: refused now, not when every run fails
            check_name(point.key, "run key")
        except BadInput as err:
            problems.append(f"{scenario.where.get(('axis', next(iter(scenario.axes))), scenario.name)}: {err}")
            break
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
    from lstm_cli.files import check_name, read_regular

    path = resolve_path(path)
    try:
        text = read_regular(path).decode("utf-8")  # a FIFO, a device, a directory: refused at once
    except UnicodeDecodeError:
        raise ScenarioError([f"{path}: not a text (UTF-8) file"]) from None
    except ValueError as err:
        raise ScenarioError([str(err)]) from None
    except OSError as err:
        raise ScenarioError([f"{path}: cannot read: {err.strerror or err}"]) from None
    try:  # the name becomes OUT/<name>/: "..", "/" or a control character would leave --out
        check_name(path.stem, "scenario name")
    except BadInput as err:
        raise ScenarioError([f"{path}: {err} (rename the file)"]) from None
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
        raise ScenarioError([f"{where}: " + (unknown_key_problem(name.strip(), SWEEPABLE) if key is None
                                             else f"{name.strip()}: cannot be set from the command line")])
    raw = raw.strip()
    check = Checker(where)
    check.at = lambda node: where  # type: ignore[method-assign]
    if raw.startswith("["):
        node = compose_node(raw, where)
        values = _axis_values(check, key, node, key) if isinstance(node, yaml.SequenceNode) else None
        if values is None and not check.problems:
            check.fail(None, key, "bad list; write [a, b, c]")
        is_axis = True
    elif ".." in raw and FIELDS[key].type == "int":
        values, problem = _range(raw)
        if problem:
            check.fail(None, key, problem)
        is_axis = True
    else:
        parts = _split_values(raw, key)
        values = []
        for part in parts:
            node = yaml.ScalarNode("tag:yaml.org,2002:str" if key == "model" else _resolve_tag(part), part)
            try:
                value, ok = check.value(key, node)
            except ValueError:  # a number beyond int()'s 4300 digits, as a scenario file reports it
                check.fail(None, key, f"{_abridged(part)!r} is not a valid number (at most {MAX_INT_DIGITS} digits)")
                continue
            if ok:
                values.append(value)
        is_axis = len(parts) > 1
        if is_axis and len(set(map(format_value, values))) != len(values) and not check.problems:
            check.fail(None, key, "a value is listed twice")
    if check.problems:
        raise ScenarioError(check.problems[:1])
    return key, values, is_axis


def _resolve_tag(text: str) -> str:
    return Loader.resolve(Loader, yaml.ScalarNode, text, (True, False))


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
            apply_setting(settings, key, values[0])
            where[key if key != "model" else "model.kind"] = f"--set {text}"
    new = Scenario(name=scenario.name, path=scenario.path, description=scenario.description,
                   settings=settings, axes=axes, parts=scenario.parts, where=where)
    _check_points(new)
    return new
