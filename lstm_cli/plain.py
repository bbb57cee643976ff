"""Plain data for JSON and CSV, shared by the run records, the sweep summaries and the renderers.

JSON has no inf or NaN, and a gradient norm can be either: they are written
as the strings "inf", "-inf" and "nan" (``float()`` reads them back), never
dropped and never as bare ``Infinity`` that jq rejects.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from typing import Any, Iterable, TextIO


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays made plain and non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def to_json(obj: Any, indent: int | None = 2) -> str:
    """One JSON document (no trailing newline)."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def write_json(obj: Any, stream: TextIO | None = None, indent: int | None = 2) -> None:
    """One JSON document on stdout (or ``stream``)."""
    stream = stream or sys.stdout
    stream.write(to_json(obj, indent=indent) + "\n")
    stream.flush()


def write_jsonl(rows: Iterable[Any], stream: TextIO | None = None) -> None:
    """One JSON object per line."""
    stream = stream or sys.stdout
    for row in rows:
        stream.write(to_json(row, indent=None) + "\n")
    stream.flush()


def write_csv(rows: list[dict], stream: TextIO | None = None, fieldnames: list[str] | None = None) -> None:
    """Rows of dicts as CSV with a header; floats in full precision (repr)."""
    stream = stream or sys.stdout
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(stream, fieldnames=fieldnames, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else jsonable(v)) for k, v in row.items()})
    stream.flush()
