"""Plain data for JSON, shared by the run records and the renderers.

JSON has no inf or NaN, and a gradient norm can be either: they are written
as the strings "inf", "-inf" and "nan" (``float()`` reads them back), never
dropped and never as bare ``Infinity`` that jq rejects.
"""

from __future__ import annotations

import json
import math
from typing import Any


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
