"""``lstm-demo report DIR -o report.html``: one self-contained HTML file for a run, a scenario's runs
or a sweep: the settings, the outcome, the sentences, the tables, every figure inline as SVG, and
the provenance.

No script, no stylesheet or font from a network: the page opens from a laptop's disk or a
cluster's shared file system as it is. Every text from a record is escaped. The figures are
the tool's own (``figures``), drawn to SVG in a temporary directory and pasted in.
"""

from __future__ import annotations

import html
import itertools
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from lstm_cli.errors import BadInput
from lstm_cli.files import read_regular
from lstm_cli.plain import to_json

STYLE = """
body { font: 16px/1.45 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } .wide { overflow-x: auto; max-width: 100%; } td { overflow-wrap: anywhere; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #555; }
.outcome-yes { color: #11691c; font-weight: 600; } .outcome-no { color: #a3201a; font-weight: 600; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
"""


def svg_figure(draw: Callable[[Path], Any]) -> str:
    """The SVG text of the figure ``draw(path)`` writes, without its XML prologue (inline in HTML)."""
    with tempfile.TemporaryDirectory(prefix="lstm-demo-report-") as scratch:
        path = Path(scratch) / "figure.svg"
        draw(path)
        text = read_regular(path, 256 << 20).decode("utf-8")  # our own file, read like any other
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """An HTML table of ``rows`` (dicts), numbers right-aligned."""
    if not rows:
        return "<p>(none)</p>"
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f'<td{" class=num" if numeric else ""}>{html.escape(_text(value))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class=wide><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return to_json(value, indent=None)
    return str(value)


def settings_rows(settings: dict, prefix: str = "") -> list[dict]:
    """A nested settings dict as key/value rows with dotted keys."""
    rows = []
    for key, value in settings.items():
        if isinstance(value, dict):
            rows.extend(settings_rows(value, f"{prefix}{key}."))
        else:
            rows.append({"setting": prefix + str(key), "value": value})
    return rows


def outcome(record: dict) -> str:
    """One line: what became of a run, coloured by success."""
    from lstm_cli.render.figures import outcome_words

    css = "outcome-yes" if record.get("success") else "outcome-no"
    return f'<p class="{css}">{html.escape(outcome_words(record))}</p>'


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: ``sections`` are (heading, HTML body) pairs, the body already escaped."""
    parts = [f"<h2>{html.escape(heading)}</h2>\n{body}" for heading, body in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n")


def paragraphs(sentences: Sequence[str]) -> str:
    return "\n".join(f"<p>{html.escape(s)}</p>" for s in sentences if s) or "<p>(none)</p>"


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def provenance_section(configs: Sequence[dict]) -> str:
    """Where and with what each run was made (config.yaml's provenance), and this report."""
    import datetime

    from lstm_cli import __version__

    rows = []
    for config in configs:
        made = config.get("provenance") or {}
        rows.append({"run": config.get("name"), "host": made.get("hostname"), "start": made.get("start_time"),
                     "end": made.get("end_time"), "python": made.get("python"), "numpy": made.get("numpy"),
                     "blas": made.get("blas"), "lstm-demo": made.get("lstm_demo"),
                     "command": " ".join(map(str, made.get("argv") or []))})
    made_now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return table(rows) + f"<p>This report: lstm-demo {html.escape(__version__)}, {html.escape(made_now)}.</p>"


def run_page(record: dict, metrics: Sequence[dict], config: dict, inspection=None) -> str:
    """The report of one training run."""
    from lstm_cli.render import figures
    from lstm_cli.render.train import collapse_note, explanation

    title = figures.training_title(record)
    settings = {k: v for k, v in config.items() if k != "provenance"}
    result_rows = [{"quantity": k, "value": v} for k, v in record.items()
                   if not isinstance(v, (dict, list)) and k not in ("run_dir",)]
    sentences = [explanation(record), collapse_note(record) if record.get("status") != "diverged" else None]
    sections = [("Outcome", outcome(record) + paragraphs([s for s in sentences if s] or
                                                         ["The table under Numbers has its measurements."]))]
    if any(e.get(f"{(record.get('gradient') or {}).get('carrier')}_rel") for e in metrics):
        svg = svg_figure(lambda path: figures.plot_training(record, metrics, path, title=title))
        sections.append(("Training", figure(svg, "Top: the gradient reaching each step back (log colour, one "
                                                 "scale for every run), its colourbar beside it; right: at the "
                                                 "first and last evaluation; bottom: the held-out metric.")))
    if inspection is not None:
        from lstm_cli.render.inspect import plot_inspection

        svg = svg_figure(lambda path: plot_inspection(inspection, path))
        names = list(dict.fromkeys(name for u in inspection.units for name in u.facts))
        facts = [{"number": name, **{f"unit {u.unit}": u.facts.get(name) for u in inspection.units}}
                 for name in names]
        sections.append(("What the trained cell does (lstm-demo inspect)",
                         paragraphs([inspection.selection, *inspection.sentences]) + table(facts)
                         + figure(svg, f"Held-out sequence {inspection.index}: the gates, cell state and output "
                                       f"of the units the answer reads most, per step.")))
    evaluation_rows = [{k: v for k, v in e.items() if not isinstance(v, (list, dict))} for e in metrics]
    sections += [("Numbers", table(result_rows)), ("Settings", table(settings_rows(settings))),
                 ("Evaluations", table(evaluation_rows))]
    sections.append(("Provenance", provenance_section([config])))
    return page(title, sections)


def runs_page(directory: Path, records: Sequence[dict], metrics: Sequence[Sequence[dict]],
              configs: Sequence[dict], summary: Sequence[dict], sweep: dict | None) -> str:
    """The report of a scenario's runs or of a sweep: the runs, the summary over seeds, the figure."""
    from lstm_cli.render import compare, figures

    name = (sweep or {}).get("scenario") or directory.name
    title = f"{name}: {len(records)} runs" + (f" ({sweep['description']})" if sweep and sweep.get("description") else "")
    run_rows = [{"run": r.get("name"), "model": r.get("model"), "task": r.get("task"), "gap": r.get("gap"),
                 "seed": r.get("seed"), "status": r.get("status"), "learned": bool(r.get("success")),
                 r.get("metric", "metric"): r.get(r.get("metric")), "steps": r.get("steps")} for r in records]
    sections = []
    if not sweep and configs:  # a scenario's runs (lstm-demo run): what they share, and what differs
        flat = [{row["setting"]: row["value"] for row in settings_rows(
            {k: v for k, v in config.items() if k not in ("provenance", "name")})} for config in configs]
        keys = list(dict.fromkeys(k for one in flat for k in one))
        shared = [{"setting": k, "value": flat[0].get(k)} for k in keys if all(one.get(k) == flat[0].get(k) for one in flat)]
        differ = [k for k in keys if any(one.get(k) != flat[0].get(k) for one in flat)]
        sections.append(("Settings", table(shared) + "<p>Differs between the runs: "
                         + html.escape(", ".join(differ) or "nothing") + "</p>"))
    if sweep:
        sections.append(("Settings", table(settings_rows(sweep.get("settings") or {}))
                         + "<p>Swept: " + html.escape("; ".join(
                             f"{k} = {', '.join(map(_axis_value, v))}" for k, v in (sweep.get("axes") or {}).items()))
                         + "</p>"))
    learned = sum(bool(r.get("success")) for r in records)
    sentences = [f"{learned} of {len(records)} runs learned the task."]
    sentences += [f"{r.get('name')}: {figures.outcome_words(r)}." for r in records[:compare.COMPARE_MAX]
                  if len(records) <= compare.COMPARE_MAX]
    seeds = {r.get("seed") for r in records}
    if len(records) <= compare.COMPARE_MAX and len(seeds) == 1:
        svg = svg_figure(lambda path: compare.plot_comparison(records, metrics, [r.get("name") for r in records], path,
                                                              title=title))
        drawing = figure(svg, "Each run's gradient per step back over training on one colour scale; below, "
                              "every run's profile at its last evaluation and its learning curve.")
    elif summary:
        axes = list(itertools.takewhile(lambda key: key != "runs", summary[0]))  # the axes come first
        svg = svg_figure(lambda path: figures.plot_sweep(summary, axes, path, title=title))
        drawing = figure(svg, "Success rate against the swept axis with 95% Wilson intervals over the seeds; "
                              "beside it the median steps to success.")
        for row in summary:
            sentences.append(", ".join(f"{k} {row[k]}" for k in axes) + f": {row.get('succeeded')} of "
                             f"{row.get('runs')} runs learned.")
    else:
        drawing = "<p>(no figure: more runs than fit side by side, and no summary over seeds)</p>"
    sections += [("Outcome", paragraphs(sentences[:1]) + bullets(sentences[1:])), ("Figure", drawing)]
    if summary:
        sections.append(("Summary over seeds", table(summary)))
    sections.append(("Runs", table(run_rows)))
    sections.append(("Provenance", provenance_section(configs)))
    return page(title, sections)



def bullets(sentences: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences if s)
    return f"<ul>{items}</ul>" if items else ""


def _axis_value(value: Any) -> str:
    """A swept value as a scenario file writes it: a model {kind: lstm, hidden: 8} as lstm:hidden=8."""
    if isinstance(value, dict):
        kind = value.get("kind", "")
        rest = ",".join(f"{k}={v}" for k, v in value.items() if k != "kind")
        return kind + (":" + rest if rest else "")
    return str(value)


def write(directory: Path, out: Path, inspect: Callable[[Path], Any]) -> Path:
    """The page of ``directory`` (a run: its record, figures and ``inspect(directory)``; a
    scenario's or a sweep's directory: its runs) written to ``out``, atomically; BadInput for a
    bad path or without matplotlib."""
    from lstm_cli import plot, rundir
    from lstm_cli.checkpoint import CHECKPOINT
    from lstm_cli.files import atomic_write_text

    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"-o {out}: the report is HTML: use a file name ending in .html")
    if not out.parent.is_dir():
        raise BadInput(f"-o {out}: directory {out.parent} does not exist")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BadInput(f"report draws its figures with matplotlib, which is not installed: {plot.INSTALL_HINT}") from None
    if not directory.is_dir():
        raise BadInput(f"{directory}: not a directory (give a run, a scenario's or a sweep's directory)")
    record = rundir.read_result(directory)
    if record is not None:
        inspection = None
        if (directory / CHECKPOINT).is_file():
            try:
                inspection = inspect(directory)
            except BadInput:  # a checkpoint this build cannot read: the report goes on without it
                inspection = None
        text = run_page(record, rundir.read_metrics(directory), rundir.read_config(directory) or {}, inspection)
    else:
        text = group_page(directory)
    try:
        atomic_write_text(out, text)
    except OSError as err:
        raise BadInput(f"-o {out}: cannot write it: {err.strerror or err}") from None
    return out


def _read_json_file(path: Path):
    import json

    from lstm_cli.files import read_regular

    try:
        return json.loads(read_regular(path, 64 << 20))
    except (OSError, ValueError) as err:
        raise BadInput(f"{path}: cannot read it: {err}") from None


def _read_jsonl(path: Path) -> list[dict]:
    import json

    from lstm_cli.files import read_regular

    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in read_regular(path, 64 << 20).splitlines() if line.strip()]
    except (OSError, ValueError) as err:
        raise BadInput(f"{path}: cannot read it: {err}") from None


def group_page(directory: Path) -> str:
    """The page of a scenario's or a sweep's directory: the runs under it, its summary and sweep.json."""
    from lstm_cli import rundir

    members = sorted((p for p in directory.iterdir() if p.is_dir()), key=lambda p: p.name)
    records = [r for r in (rundir.read_result(p) for p in members) if r is not None]
    if not records:
        raise BadInput(f"{directory}: no run record in it or in its subdirectories (result.json)")
    summary = _read_jsonl(directory / "summary.jsonl")
    sweep_file = directory / "sweep.json"
    sweep = _read_json_file(sweep_file) if sweep_file.is_file() else None
    return runs_page(directory, records, [rundir.read_metrics(Path(r["run_dir"])) for r in records],
                     [rundir.read_config(Path(r["run_dir"])) or {} for r in records], summary, sweep)
