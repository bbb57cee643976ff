"""The ``lstm-demo`` command line: parse options, call the Python API, render.

The only module that imports typer. Commands import numpy and the layers
below inside their bodies, so ``lstm-demo --help`` and shell completion stay
fast. One error boundary (``_Group.main``): a ``LstmDemoError`` or a usage
error becomes one line on stderr and its exit code (2 bad input, 1 a failed
run, 130 interrupted); no traceback for a user's mistake.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from lstm_cli import __version__
from lstm_cli.errors import LstmDemoError


# typer >= 0.2x vendors click; reach its exception classes through a public one
_click_errors = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError, ClickException = _click_errors["UsageError"], _click_errors["ClickException"]


class _Group(TyperGroup):
    """Runs every command inside the error boundary (also under Typer's CliRunner)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except UsageError as err:
            where = f"{err.ctx.command_path}: " if err.ctx is not None else "lstm-demo: "
            _fail(where + "error: " + _one_line(err.format_message()), 2)
        except LstmDemoError as err:
            _fail("lstm-demo: error: " + _one_line(str(err)), err.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            _fail("lstm-demo: interrupted", 130)
        except ClickException as err:
            _fail("lstm-demo: error: " + _one_line(err.format_message()), err.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail(message: str, code: int) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr)
    sys.exit(code)


app = typer.Typer(
    cls=_Group,
    name="lstm-demo",
    help="Make the vanishing and exploding gradient of recurrent networks visible, measurable and "
         "reproducible, and see why the LSTM's cell state fixes it.\n\n"
         "Start with: lstm-demo gradients --gap 50",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"lstm-demo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """lstm-demo: gradient flow in RNNs and LSTMs, measured."""


# ---- options shared by the commands that build models (gradients, train) ----

TaskOpt = Annotated[str, typer.Option("--task", help="remember, adding, temporal-order or agreement.")]
GapOpt = Annotated[int, typer.Option("--gap", help="Steps between the information and the question.")]
HiddenOpt = Annotated[int, typer.Option("--hidden", help="Hidden units H.")]
BatchOpt = Annotated[int, typer.Option("--batch", help="Sequences per batch.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random stream; same seed, same numbers.")]
InitOpt = Annotated[str, typer.Option(
    "--init", help="W_hh init: auto (uniform, or orthogonal when --recurrent-scale is not 1), "
                   "uniform (PyTorch's default), orthogonal, identity (IRNN).")]
ScaleOpt = Annotated[float, typer.Option(
    "--recurrent-scale", help="Multiplies W_hh; with orthogonal init it is the spectral radius.")]
ForgetOpt = Annotated[float, typer.Option(
    "--forget-bias", help="LSTM forget-gate bias (default 3: sigmoid(3)=0.95, the gate starts open).")]
ChronoOpt = Annotated[Optional[float], typer.Option(
    "--chrono", help="LSTM chrono init with this T_max (Tallec & Ollivier 2018); overrides --forget-bias.")]
ActivationOpt = Annotated[str, typer.Option("--activation", help="RNN nonlinearity: tanh or relu.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="float64 or float32.")]


def model_defaults(hidden: int, init: str, recurrent_scale: float, forget_bias: float,
                   chrono: Optional[float], activation: str, dtype: str) -> dict:
    """The shared model options as ``models.parse_model`` defaults."""
    return {"hidden": hidden, "init": init, "recurrent_scale": recurrent_scale,
            "forget_bias": forget_bias, "chrono": chrono, "activation": activation, "dtype": dtype}


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
