"""The YAML 1.2-core loader: nodes with line numbers, no 1.1 surprises."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from lstm_cli.config import shown as _shown
from lstm_cli.errors import BadInput


MAX_RUNS = 100_000  # a grid larger than this is almost surely a typo in a range


class ScenarioError(BadInput):
    """One or more problems in a scenario or a ``--set``; one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ---- a YAML 1.2-core loader: nodes with line numbers, no 1.1 surprises ----

class Loader(yaml.SafeLoader):
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
    Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def scalar_value(node: yaml.Node) -> Any:
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


def node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1



def node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return _shown(scalar_value(node))


_CORE_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")}
MAX_NODES = 100_000  # values in one scenario, aliases expanded; a real one has a few dozen


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse what the YAML 1.2 core schema does not hold (any other tag: !!python/object,
    !!set, !!timestamp, !custom), scalars their tag cannot read (``!!int abc``, ``!!int 0b101``,
    5000 digits) and documents whose aliases expand beyond reason; iteratively, so depth
    cannot exhaust the stack."""
    stack, seen = [root], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ScenarioError([f"{source}: the YAML expands to more than {MAX_NODES} values"])
        if node.tag not in _CORE_TAGS:
            raise ScenarioError([f"{source}:{node_line(node)}: unknown YAML tag {node.tag!r}; a scenario holds "
                                 f"plain numbers, strings, lists and mappings"])
        if isinstance(node, yaml.ScalarNode):
            try:
                scalar_value(node)
            except ValueError:
                kind = node.tag.rsplit(":", 1)[-1]
                shown = node.value if len(node.value) <= 30 else f"{node.value[:20]}... ({len(node.value)} characters)"
                raise ScenarioError([f"{source}:{node_line(node)}: {shown!r} is not a valid {kind} (YAML 1.2 core: "
                                     f"decimal, 0o octal or 0x hex, at most 4300 digits)"]) from None
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
        else:
            stack.extend(node.value)


def compose_node(text: str, source: str) -> yaml.Node | None:
    from lstm_cli.files import MAX_DEPTH, nesting_depth

    try:
        depth = nesting_depth(text)  # from the event stream: PyYAML's composer would recurse
        if depth > MAX_DEPTH:
            raise ScenarioError([f"{source}: lists and mappings nested {depth} deep; a scenario needs at "
                                 f"most {MAX_DEPTH}"])
        root = yaml.compose(text, Loader=Loader)
        if root is not None:
            _check_nodes(root, source)
        return root
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
