"""docs/api.md documents ``lstm_cli.api``: a section per public function, each with an example
that runs. The examples run in page order, in one namespace and one fresh directory (a later
one may use a name or read a record an earlier one made), like a notebook."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from lstm_cli import api

PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
TEXT = PAGE.read_text(encoding="utf-8")
BLOCKS = [(TEXT[:m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", TEXT, re.S)]


def public_functions() -> list[str]:
    return [name for name, value in vars(api).items()
            if inspect.isfunction(value) and value.__module__ == api.__name__ and not name.startswith("_")]


def sections() -> dict[str, str]:
    """Each ``### `name` ...`` heading's names -> the text of its section."""
    found = {}
    for match in re.finditer(r"^### ([^\n]+)\n(.*?)(?=^##)", TEXT + "\n##", re.S | re.M):
        for name in re.findall(r"`(\w+)`", match.group(1)):
            found[name] = match.group(2)
    return found


def test_every_public_function_has_a_section_with_an_example_that_calls_it():
    documented = sections()
    missing = [name for name in public_functions() if name not in documented]
    assert not missing, f"docs/api.md has no section for: {missing}"
    for name in public_functions():
        assert re.search(rf"api\.{name}\(", documented[name]), f"the example of {name} does not call it"
    assert not set(documented) - set(public_functions()), "docs/api.md documents a function api does not have"


def test_no_paragraph_is_cut_at_its_first_words():
    assert not re.search(r"^ \S", TEXT, re.M), "a line starts with a space: words cut off before it?"


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return {"__name__": "api_doc"}, tmp_path_factory.mktemp("api-doc")


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"api.md:{line}" for line, _ in BLOCKS])
def test_example_runs(line, code, notebook, monkeypatch):
    namespace, cwd = notebook
    if "plot" in code and importlib.util.find_spec("matplotlib") is None:
        pytest.skip("the plot extra is not installed")
    monkeypatch.chdir(cwd)
    exec(compile(code, f"docs/api.md:{line}", "exec"), namespace)  # noqa: S102 - the page's own example
