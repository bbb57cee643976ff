"""The scenario schema: the settings (config.FIELDS), key lookup and the node checker."""

from __future__ import annotations

from typing import Any

import yaml

from lstm_cli import config
from lstm_cli.config import did_you_mean, shown as _shown
from lstm_cli.errors import BadInput
from lstm_cli.scenario.yamlio import node_kind, node_line, scalar_value


# ---- the settings: one table in config.py ----

SECTIONS = ("model", "gradients", "train")
TOP_LEVEL = ("description", "task", "gap", "seed", "model", "gradients", "train", "sweep")
NOT_SWEEPABLE = ("description",)
SWEEPABLE = tuple(k for k in config.FIELDS if k not in NOT_SWEEPABLE)
MODEL_FIELDS = tuple(k.split(".", 1)[1] for k in config.FIELDS if k.startswith("model."))


def canonical_key(key: str) -> str | None:
    """``key`` as a full dotted setting name, resolving unambiguous leaf names; None if unknown."""
    key = key.strip().replace("-", "_")
    if key in config.FIELDS:
        return key
    matches = [k for k in SWEEPABLE if k.split(".")[-1] == key]
    return matches[0] if len(matches) == 1 else None


def unknown_key_problem(key: str, candidates) -> str:
    matches = [k for k in SWEEPABLE if k.split(".")[-1] == key.replace("-", "_")]
    if len(matches) > 1:
        return f"ambiguous setting {key!r}: say {' or '.join(matches)}"
    leaves = {k.split(".")[-1]: k for k in candidates}
    hint = did_you_mean(key, list(candidates) + list(leaves))
    return f"unknown setting {key!r}{hint}"



# ---- loading ----

class Checker:
    """Collects problems as ``where: key: problem`` lines."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def at(self, node: yaml.Node | None) -> str:
        return f"{self.source}:{node_line(node)}" if node is not None else self.source

    def fail(self, node: yaml.Node | None, key: str | None, problem: str) -> None:
        self.problems.append(f"{self.at(node)}: {key + ': ' if key else ''}{problem}")

    def mapping(self, node: yaml.Node, key: str | None) -> list[tuple[str, yaml.Node, yaml.Node]] | None:
        """A mapping node's (key, key node, value node) items; duplicates and non-string keys fail."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, f"must be a mapping of settings (key: value), got {node_kind(node)}")
            return None
        items, seen = [], {}
        for knode, vnode in node.value:
            name = scalar_value(knode) if isinstance(knode, yaml.ScalarNode) else None
            full = f"{key}.{name}" if key else name
            if not isinstance(name, str):
                self.fail(knode, key, f"a key must be a name, got {node_kind(knode)}")
                continue
            if name in seen:
                self.fail(knode, full, f"duplicate key (first given on line {seen[name]})")
                continue
            seen[name] = node_line(knode)
            items.append((name, knode, vnode))
        return items

    def value(self, key: str, node: yaml.Node) -> tuple[Any, bool]:
        """A checked value of setting ``key`` from its node: (value, ok)."""
        setting = config.FIELDS[key]
        if setting.type == "model":
            return self.model(node, key)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, key, f"must be a single value, got {node_kind(node)}")
            return None, False
        raw = scalar_value(node)
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
            text = scalar_value(node)
            if not isinstance(text, str):
                self.fail(node, key, f"must be a kind ({', '.join(config.KINDS)}) or 'kind:key=value,...', got {_shown(text)}")
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
            if full not in config.FIELDS:
                self.fail(knode, full, f"unknown model setting{did_you_mean(name, MODEL_FIELDS)}; "
                                       f"known: {', '.join(MODEL_FIELDS)}")
                ok = False
                continue
            value, good = self.value(full, vnode)
            ok &= good
            if good:
                fields[name] = value
        return (fields if ok else None), ok
