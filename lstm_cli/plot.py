"""``--plot FILE``: the gradient flow as a log-scale figure (the optional ``plot`` extra).

One line per model of the relative ||dL/dh_t|| (solid) and, for an LSTM, the
relative ||dL/dc_t|| (dashed) and, for a cell with a direct path (the LSTM's
cell state, the GRU's z * h_{t-1}), that path's part of the carrier's gradient
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
FONT_SIZE = 11  # points: >= 10 pt at 100 dpi stays readable projected at 1280 px


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


def positive(values: Sequence[float]) -> list[float]:
    """A log axis cannot show 0, inf or NaN: they become gaps in the line (the JSON keeps them)."""
    return [v if v > 0 and math.isfinite(v) else math.nan for v in map(float, values)]


def plot_profiles(profiles, path: str | Path, title: str = "") -> Path:
    """Write the figure of ``profiles`` (GradientProfile) to ``path`` (.png, .svg or .pdf)."""
    from lstm_cli.probes import EXPLODING, VANISHING

    path = check_target(path)
    plt = require_matplotlib()
    drawn: list[float] = []
    # keep the text of an SVG as text (searchable, editable, much smaller); >= 10 pt at 100 dpi
    with plt.rc_context({"svg.fonttype": "none", "font.size": FONT_SIZE, "legend.fontsize": FONT_SIZE - 1}):
        fig, ax = plt.subplots(figsize=(10.0, 5.6), dpi=100)
        for n, profile in enumerate(profiles):
            colour = f"C{n}"
            steps = [int(k) for k in profile.steps_back]
            lines = [(profile.dh.rel, "-", "||dL/dh||")]
            if profile.dc is not None:
                lines.append((profile.dc.rel, "--", "||dL/dc|| (cell state)"))
            if profile.belt_rel is not None:
                lines.append((profile.belt_rel, ":", f"||dL/{profile.carrier}||, direct path (belt)"))
            if profile.gates_rel is not None:
                lines.append((profile.gates_rel, "-.", f"||dL/{profile.carrier}||, through h and the gates"))
            for values, style, name in lines:
                kept = positive(values)
                drawn.extend(v for v in kept if math.isfinite(v))
                ax.plot(steps, kept, color=colour, linestyle=style, linewidth=1.8, label=f"{profile.label} {name}")
        ax.axhline(VANISHING, color="grey", linewidth=1.0, linestyle=":", label=f"vanishing below {VANISHING:g}")
        if drawn and max(drawn) > EXPLODING / 10:  # the exploding line only where a profile comes near it
            ax.axhline(EXPLODING, color="grey", linewidth=1.0, linestyle=(0, (6, 2, 1, 2)),
                       label=f"exploding above {EXPLODING:g}")
        ax.set_yscale("log")
        if drawn:  # no empty headroom: the axis ends a decade above the highest point drawn
            ax.set_ylim(top=10 ** (math.floor(math.log10(max(drawn))) + 1))
        ax.set_xlabel("steps back from the loss step")
        ax.set_ylabel("gradient norm relative to the loss step")
        if title:
            ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), borderaxespad=0)
        fig.tight_layout()
        save_figure(fig, plt, path, 100)
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
