"""The house rules that a reader cannot check at a glance: layers, size, public APIs only."""

from __future__ import annotations

import ast
import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lstm_cli"
SOURCES = sorted(PACKAGE.rglob("*.py"))
# the two numerical backward passes may be longer: each is one derivation, read top to bottom
LONG_FUNCTIONS_ALLOWED = {("lstm_kernel.py", "backward"), ("rnn.py", "backward")}
MAX_MODULE_LINES, MAX_CLI_LINES, MAX_FUNCTION_LINES = 450, 430, 60  # cli: eight commands of ~15 lines


def test_import_layers_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    proc = subprocess.run([str(lint)], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_modules_and_cli_stay_small():
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines()) for path in SOURCES}
    assert sizes["cli.py"] < MAX_CLI_LINES, sizes["cli.py"]
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _code_lines(node: ast.FunctionDef) -> int:
    """Lines of a function without its docstring (a command's docstring is its --help text)."""
    first = node.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
        and isinstance(first.value.value, str)
    doc = first.end_lineno - first.lineno + 1 if has_doc else 0
    return node.end_lineno - node.lineno + 1 - doc


def test_no_function_is_longer_than_60_lines():
    long = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    (path.name, node.name) not in LONG_FUNCTIONS_ALLOWED and _code_lines(node) > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(PACKAGE)}:{node.name}"] = _code_lines(node)
    assert long == {}


def test_the_length_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    node = ast.parse(f'def f():\n    """doc"""\n{body}\n').body[0]
    assert _code_lines(node) == 62 > MAX_FUNCTION_LINES  # the def line and 61 statements


def _private_typer_attributes(source: str) -> list[str]:
    """``obj._name`` reads and writes in code that imports typer or click (dunders included)."""
    tree = ast.parse(source)
    imports_typer = any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                        any((a.name if isinstance(n, ast.Import) else (n.module or "")).split(".")[0]
                            in ("typer", "click") for a in n.names)
                        for n in ast.walk(tree))
    if not imports_typer:
        return []
    found = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")]
    found += [n.args[1].value for n in ast.walk(tree)  # getattr(obj, "_name"), setattr, hasattr
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
              and n.func.id in ("getattr", "setattr", "hasattr") and len(n.args) > 1
              and isinstance(n.args[1], ast.Constant) and str(n.args[1].value).startswith("_")]
    return found


def test_no_private_attribute_of_typer_or_click_is_touched():
    offenders = {p.name: _private_typer_attributes(p.read_text()) for p in SOURCES}
    assert {name: attrs for name, attrs in offenders.items() if attrs} == {}


def test_the_private_scan_finds_a_private_attribute():
    assert _private_typer_attributes("import typer\nparam._runtime_param = 1\n") == ["_runtime_param"]
    assert _private_typer_attributes("import typer\ncls = typer.BadParameter.__mro__\n") == ["__mro__"]
    assert _private_typer_attributes('import typer\ngetattr(p, "_runtime_param", None)\n') == ["_runtime_param"]
    assert _private_typer_attributes("x._y = 1\n") == []  # not in a module that imports typer


def test_only_cli_imports_typer_and_only_render_imports_rich():
    for path in SOURCES:
        imported = {(a.name if isinstance(n, ast.Import) else (n.module or "")).split(".")[0]
                    for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in n.names}
        rel = path.relative_to(PACKAGE).as_posix()
        assert "typer" not in imported or rel == "cli.py", rel
        assert "rich" not in imported or rel.startswith("render/"), rel


@pytest.mark.parametrize("module", ["lstm_cli", "lstm_cli.api"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_typer_installed_is_the_range_pyproject_declares():
    import tomllib
    from importlib.metadata import version

    declared = [d for d in tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
                ["dependencies"] if d.startswith("typer")][0]
    low, high = declared.removeprefix("typer>=").split(",<")
    installed = tuple(int(x) for x in version("typer").split(".")[:2])
    assert tuple(int(x) for x in low.split(".")[:2]) <= installed < tuple(int(x) for x in high.split(".")[:2])


KIND_DISPATCH = re.compile(r"kind ==|isinstance\(.*Cache")


def test_no_module_outside_cells_dispatches_on_a_kind():
    """Everything outside lstm_cli/cells asks the cell (cells.get(kind)), never `if kind == ...`."""
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}" for path in SOURCES
             if path.relative_to(PACKAGE).parts[0] != "cells"
             for n, line in enumerate(path.read_text().splitlines(), 1) if KIND_DISPATCH.search(line)]
    assert found == []


def test_the_dispatch_scan_finds_a_dispatch():
    assert KIND_DISPATCH.search('    if spec.kind == "gru":') and KIND_DISPATCH.search("isinstance(c, lstm.LSTMCache)")


def test_the_cell_registry_imports_no_numpy():
    """config (and so the command line's --help) reads the kinds from the registry without numpy."""
    code = "import sys, lstm_cli.config, lstm_cli.cells; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_help_reads_the_task_table_without_numpy():
    """--steps' and --lr's help come from tasks.TASKS; reading it must not cost numpy's import."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom lstm_cli import tasks\nfrom lstm_cli.cli import app\n"
            "out = CliRunner().invoke(app, ['train', '--help'], env={'COLUMNS': '300'}).stdout\n"
            "out = ' '.join(out.replace(chr(9474), ' ').split())\n"
            "print('numpy' in sys.modules, all(f'{t.name} {t.steps}' in out for t in tasks.TASKS.values()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "lstm_cli":
        return False
    where = PACKAGE.joinpath(*parts[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _private_names_across_modules(source: str) -> list[str]:
    """``from lstm_cli.x import _name`` and ``module._name`` (``module`` an lstm_cli module bound
    by an import) in ``source``: a name with a leading underscore is its own module's business."""
    tree = ast.parse(source)
    modules: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lstm_cli"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.module}.{alias.name}")
                elif _is_module(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lstm_cli"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):  # lstm_cli.plot._positive
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules and not isinstance(node.value, ast.Call):
                found.append(f"{ast.unparse(node.value)}.{node.attr}")
    return found


def test_no_private_name_is_imported_across_modules():
    offenders = {p.relative_to(PACKAGE).as_posix(): _private_names_across_modules(p.read_text()) for p in SOURCES}
    assert {name: names for name, names in offenders.items() if names} == {}


def test_the_private_name_scan_finds_each_form():
    assert _private_names_across_modules("from lstm_cli.plot import _positive, check_target\n") == \
        ["lstm_cli.plot._positive"]
    assert _private_names_across_modules("from lstm_cli.render import figures\nfigures._x(1)\n") == ["figures._x"]
    assert _private_names_across_modules("import lstm_cli.plot as p\np._positive\n") == ["p._positive"]
    assert _private_names_across_modules("from lstm_cli.plot import check_target\nself._x = 1\n") == []
    assert _private_names_across_modules("import os\nos._exit(1)\n") == []  # not an lstm_cli module
