"""lstm-demo report: one self-contained HTML page for a run, a scenario's runs and a sweep.

Parsed with html.parser (well nested, nothing fetched from a network, no script), and loaded
in headless Chromium (Debian's ``chromium``, which .ci/run installs): the screenshot must show
the page with its figures (not blank) and the browser must log no console error.
"""

from __future__ import annotations

import html.parser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_cli import api
from lstm_cli.cli import app

pytest.importorskip("matplotlib")
runner = CliRunner()

TINY = ("task: remember\ngap: 4\nmodel: {kind: lstm, hidden: 4}\n"
        "train: {batch: 8, steps: 30, eval_every: 10, eval_size: 8, probe_size: 2}\n")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(html.parser.HTMLParser):
    """Every element closed in order, and the names of what would load from elsewhere."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") or (value and ("http://" in value or "https://" in value) and name != "xmlns"
                                           and not name.startswith("xmlns")):
                self.external.append(f"{tag} {name}={value}")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_html(text: str) -> _Checker:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], checker.stack
    assert text.startswith("<!DOCTYPE html>")
    assert "script" not in checker.tags and "iframe" not in checker.tags and "link" not in checker.tags
    assert checker.external == []  # nothing fetched: no CDN, no font, no stylesheet from elsewhere
    return checker


@pytest.fixture(scope="module")
def scenario_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    scenario = root / "tiny.yaml"
    scenario.write_text(TINY + "sweep:\n  model: [rnn, lstm]\n")
    run = runner.invoke(app, ["run", str(scenario), "--out", str(root / "runs")])
    assert run.exit_code == 0, run.stderr
    sweep_file = root / "seeds.yaml"
    sweep_file.write_text(TINY.replace("tiny", "seeds") + "sweep:\n  model: [rnn, lstm]\n  seed: [0, 1, 2]\n")
    swept = runner.invoke(app, ["sweep", str(sweep_file), "--jobs", "1", "--out", str(root / "sweeps")])
    assert swept.exit_code == 0, swept.stderr
    return {"run": root / "runs" / "tiny" / "model=lstm", "scenario": root / "runs" / "tiny",
            "sweep": root / "sweeps" / "seeds"}


@pytest.mark.parametrize("kind", ["run", "scenario", "sweep"])
def test_report_is_one_valid_self_contained_page(scenario_dirs, kind, tmp_path):
    out = tmp_path / f"{kind}.html"
    result = runner.invoke(app, ["report", str(scenario_dirs[kind]), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert f"lstm-demo: report written to {out}" in result.stderr
    text = out.read_text(encoding="utf-8")
    checker = check_html(text)
    words = " ".join(" ".join(checker.text).split())
    assert checker.tags.count("svg") >= 1  # the figures are inline
    assert "Provenance" in words and "lstm-demo" in words
    if kind == "run":
        assert "What the trained cell does" in words and "Units picked by their contribution" in words
        assert "Settings" in words and "model.hidden" in words
    if kind == "scenario":
        assert "runs learned the task" in words and "learning curves" in text
    if kind == "sweep":
        assert "Summary over seeds" in words and "success rate" in text and "of 3 runs learned" in words


def test_report_escapes_what_records_hold(scenario_dirs, tmp_path):
    import json

    run = tmp_path / "hostile"
    shutil.copytree(scenario_dirs["run"], run)
    record = json.loads((run / "result.json").read_text())
    record["name"] = "<script>alert(1)</script>"
    (run / "result.json").write_text(json.dumps(record))
    api.report(run, tmp_path / "h.html")
    text = (tmp_path / "h.html").read_text()
    check_html(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


@pytest.mark.parametrize("args,words", [
    (["nowhere", "-o", "r.html"], "nowhere: not a directory"),
    (["DIR", "-o", "r.txt"], "the report is HTML"),
    (["DIR", "-o", "no/such/dir/r.html"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(scenario_dirs, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    args = [str(scenario_dirs["run"]) if a == "DIR" else a for a in args]
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_directory_without_records_is_bad_input(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "no run record" in result.stderr


def test_without_matplotlib_one_line_names_the_extra(scenario_dirs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result = runner.invoke(app, ["report", str(scenario_dirs["run"]), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.strip() == ('lstm-demo: error: report draws its figures with matplotlib, which is not '
                                     'installed: pip install "lstm-demo[plot]"')
    # inspect still prints its terminal view
    shown = runner.invoke(app, ["inspect", str(scenario_dirs["run"])])
    assert shown.exit_code == 0 and "Units picked by their contribution" in shown.stdout


def _browser() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)


@pytest.mark.skipif(_browser() is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium)")
@pytest.mark.parametrize("kind", ["run", "scenario", "sweep"])
def test_report_renders_in_a_real_browser(scenario_dirs, kind, tmp_path):
    import matplotlib.image

    out = tmp_path / f"{kind}.html"
    api.report(scenario_dirs[kind], out)
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2600", f"--screenshot={shot}",
         out.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no script error, no console message at all
    pixels = matplotlib.image.imread(shot)[..., :3]  # (H, W, 3) floats in 0..1
    assert pixels.shape[:2] == (2600, 1280)
    ink = (pixels.min(axis=-1) < 0.9).mean()
    assert ink > 0.01, f"the page looks blank ({ink:.1%} of it is not white)"
    # matplotlib's first colour (C0, #1f77b4) is in every figure of the page and nowhere in its text
    c0 = ((abs(pixels - [0x1F / 255, 0x77 / 255, 0xB4 / 255]) < 0.08).all(axis=-1)).sum()
    assert c0 > 300, f"no figure drawn ({c0} pixels of the figures' blue)"
