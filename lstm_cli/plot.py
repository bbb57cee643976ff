"""``--plot FILE``: the gradient flow as a log-scale figure (the optional ``plot`` extra).

One line per model of the relative ||dL/dh_t|| (solid) and, for an LSTM, the
relative ||dL/dc_t|| (dashed) and its direct path along the cell state
(dotted: the belt, see ``lstm_cli.probes``) against steps back, with the
vanishing and exploding thresholds drawn in. matplotlib is imported only here and only
when a plot is asked for; without it the user gets one line naming the extra.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from lstm_cli.errors import BadInput

SUFFIXES = (".png", ".svg", ".pdf")
INSTALL_HINT = 'pip install "lstm-demo[plot]"'


def check_target(path: str | Path) -> Path:
    """The plot's path, if its suffix is a known format and its directory exists."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise BadInput(f"--plot {path}: use a file name ending in {', '.join(SUFFIXES)}")
    if not path.parent.is_dir():
        raise BadInput(f"--plot {path}: directory {path.parent} does not exist")
    return path


def require_matplotlib():
    """matplotlib.pyplot on the file-only Agg backend; BadInput in one line when it is missing,
    broken (an import that raises), has no pyplot, or MPLBACKEND names a backend it does not have."""
    import logging
    import os

    # Its own log lines (a cache directory made in /tmp because HOME cannot be written, the font
    # cache being built) are not this tool's words: stderr keeps one line per event.
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    backend = os.environ.pop("MPLBACKEND", None)  # files only: Agg, whatever the environment asks for
    try:
        import matplotlib

        matplotlib.use("Agg")  # never open a window, work without a display
        import matplotlib.pyplot as plt
    except ImportError as err:
        missing = getattr(err, "name", None) in ("matplotlib", None) and "pyplot" not in str(err)
        raise BadInput(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}" if missing else
                       f"--plot: matplotlib cannot be used ({_one_line(err)}); reinstall it: {INSTALL_HINT}") from None
    except Exception as err:  # noqa: BLE001 - a broken installation raises anything at import
        raise BadInput(f"--plot: matplotlib cannot be used ({type(err).__name__}: {_one_line(err)}); "
                       f"reinstall it: {INSTALL_HINT}") from None
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    return plt


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _positive(values: Sequence[float]) -> list[float]:
    """A log axis cannot show 0, inf or NaN: they become gaps in the line (the JSON keeps them)."""
    return [v if v > 0 and math.isfinite(v) else math.nan for v in map(float, values)]


def plot_profiles(profiles, path: str | Path, title: str = "") -> Path:
    """Write the figure of ``profiles`` (GradientProfile) to ``path`` (.png, .svg or .pdf)."""
    from lstm_cli.probes import EXPLODING, VANISHING

    path = check_target(path)
    plt = require_matplotlib()
    # keep the text of an SVG as text: searchable, editable, and much smaller
    with plt.rc_context({"svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for n, profile in enumerate(profiles):
            colour = f"C{n}"
            steps = [int(k) for k in profile.steps_back]
            ax.plot(steps, _positive(profile.dh.rel), color=colour, label=f"{profile.label} ||dL/dh||")
            if profile.dc is not None:
                ax.plot(steps, _positive(profile.dc.rel), color=colour, linestyle="--",
                        label=f"{profile.label} ||dL/dc||")
            if profile.belt_rel is not None:
                ax.plot(steps, _positive(profile.belt_rel), color=colour, linestyle=":",
                        label=f"{profile.label} ||dL/dc||, direct path (belt)")
        ax.axhline(VANISHING, color="grey", linewidth=0.8, linestyle=":", label=f"vanishing below {VANISHING:g}")
        ax.axhline(EXPLODING, color="grey", linewidth=0.8, linestyle="-.", label=f"exploding above {EXPLODING:g}")
        ax.set_yscale("log")
        ax.set_xlabel("steps back from the loss step")
        ax.set_ylabel("gradient norm relative to the loss step")
        if title:
            ax.set_title(title, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, plt, path)
    return path


def save_figure(fig, plt, path: Path, dpi: float | None = None) -> None:
    """Write ``fig`` to ``path`` atomically, as a record is written (the whole file to a temporary
    one beside it, then renamed), and close it: a full disk or ``ulimit -f`` leaves no cut figure
    and fails the command (RunFailed)."""
    import io

    from lstm_cli.errors import RunFailed
    from lstm_cli.files import atomic_write_bytes

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=Path(path).suffix.lstrip(".").lower(), dpi=dpi)
        atomic_write_bytes(Path(path), buffer.getvalue())
    except OSError as err:
        raise RunFailed(f"--plot {path}: cannot write it: {err.strerror or err}") from None
    finally:
        plt.close(fig)
