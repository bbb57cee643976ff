"""The ``lstm-demo`` command line: parse options, call the Python API, render.

The only module that imports typer. Commands import numpy and the layers
below inside their bodies, so ``lstm-demo --help`` and shell completion stay
fast. One error boundary (``_Group.main``): a ``LstmDemoError`` or a usage
error becomes one line on stderr and its exit code (2 bad input, 1 a failed run, 130 interrupted).
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from lstm_cli import api, config, helptext, process
from lstm_cli.errors import BadInput, Interrupted, LstmDemoError, RunFailed


class _Group(TyperGroup):
    """Runs every command inside the error boundary (also under Typer's CliRunner)."""

    def invoke(self, ctx):
        with process.passed_on():
            return super().invoke(ctx)

    def make_context(self, info_name, args, parent=None, **extra):  # --help, --version print here
        with process.passed_on():
            return super().make_context(info_name, args, parent=parent, **extra)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        process.single_threaded_blas()  # before any command imports numpy
        process.accept_click_completion_order()
        process.replace_what_cannot_be_encoded()
        if sys.stdout is None:  # started with stdout closed (>&-)
            _fail("lstm-demo: error: stdout is closed, so nothing can be written; redirect it to a file "
                  "or /dev/null", 1)
        if not (sys.argv[1:] if args is None else args):  # no arguments at all: the help is the answer
            args = ["--help"]
        try:  # SIGTERM is an interruption, and warnings are silent (see process.command)
            with process.command():
                code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                    standalone_mode=False, **extra)
            sys.stdout.flush()  # a full disk or a closed pipe shows here, inside the boundary
        except (BrokenPipeError, process.ReaderGone):  # the reader stopped early (| head): not a failure
            process.discard_stdout()
            sys.exit(0)
        except LstmDemoError as err:
            process.flush_stdout()
            process.say_and_exit(["lstm-demo: error: " + process.one_line(problem) for problem in
                                  getattr(err, "problems", None) or [str(err)]], process.exit_code(err.exit_code))
        except (typer.Abort, KeyboardInterrupt, process.Stopped):
            _fail(f"lstm-demo: {process.interruption()}", process.exit_code(130))
        except OSError as err:  # writing the output failed (/dev/full, an I/O error)
            process.discard_stdout()
            _fail(f"lstm-demo: error: {err.filename or 'cannot write to stdout'}: {err.strerror or err}", 1)
        except MemoryError:  # under the estimate's limit, and still too much: one line, not a traceback
            _fail(f"lstm-demo: error: {process.OUT_OF_MEMORY}", 1)
        except Exception as err:  # click's exceptions, known by their public interface
            if process.interrupted_inside(err):  # a Ctrl-C that an import wrapped in its own error
                _fail(f"lstm-demo: {process.interruption()}", process.exit_code(130))
            if not (callable(getattr(err, "format_message", None)) and hasattr(err, "exit_code")):
                raise
            if hasattr(err, "ctx"):  # a usage error (bad option, value or command): one prefix for all
                _fail("lstm-demo: error: " + process.one_line(err.format_message()), 2)
            _fail("lstm-demo: error: " + process.one_line(err.format_message()), err.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    process.flush_stdout()
    process.say_and_exit([message], code)


app = typer.Typer(
    cls=_Group, name="lstm-demo", no_args_is_help=True, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: typer's rich help imports rich.markdown, doubling --help's time
    help="Make the vanishing and exploding gradient of recurrent networks visible, measurable and "
         "reproducible, and see why the LSTM's cell state fixes it.\n\n"
         "Start with: lstm-demo gradients --gap 50",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)


def _version(ctx: typer.Context, value: bool) -> None:
    if value:  # not eager, so the eager --verbose is known here (and no command is needed yet)
        print("\n".join(api.version_lines(verbose=bool(ctx.params.get("verbose")))))
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version,
                                                    help="Print the version and exit.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", is_eager=True, help=helptext.VERBOSE)] = False,
) -> None:
    """lstm-demo: gradient flow in RNNs and LSTMs, measured."""


# ---- options shared by the commands that build models (gradients, train) ----

def _opt(key: str, *flags: str, **extra):
    """An option whose help is the setting's ``option_help`` in config.FIELDS (its default: ``config.default``)."""
    return typer.Option(*flags, help=config.FIELDS[key].option_text, **extra)


TaskOpt = Annotated[str, _opt("task", "--task", autocompletion=lambda: list(config.FIELDS["task"].options()))]
GapOpt = Annotated[int, _opt("gap", "--gap")]
HiddenOpt = Annotated[Optional[int], _opt("model.hidden", "--hidden")]
BatchOpt = Annotated[int, _opt("train.batch", "--batch")]
SeedOpt = Annotated[int, _opt("seed", "--seed")]
InitOpt = Annotated[str, _opt("model.init", "--init")]
ScaleOpt = Annotated[float, _opt("model.recurrent_scale", "--recurrent-scale")]
ForgetOpt = Annotated[float, _opt("model.forget_bias", "--forget-bias")]
ChronoOpt = Annotated[Optional[float], _opt("model.chrono", "--chrono")]
ActivationOpt = Annotated[str, _opt("model.activation", "--activation")]
DtypeOpt = Annotated[str, _opt("model.dtype", "--dtype")]


def model_defaults(ctx: typer.Context) -> dict:
    """The command's model options (its parameters named like a ``model.*`` row of config.FIELDS),
    as ``models.parse_model`` defaults."""
    return {name: value for name, value in ctx.params.items() if name in config.MODEL_FIELDS}


# ---- lstm-demo gradients ----

ModelOpt = Annotated[Optional[list[str]], typer.Option("--model", "-m", metavar="KIND[:KEY=VALUE,...]",
                                                     help=helptext.MODEL_OPTION)]
GradientScaleOpt = Annotated[float, typer.Option("--recurrent-scale", help=helptext.GRADIENT_SCALE_OPTION)]
RowsOpt = Annotated[str, typer.Option("--rows", help=helptext.ROWS_OPTION)]
def _format_option(text: str = config.FORMAT_HELP):
    """--format: config.Format's choices, in --help and in shell completion (typer's Enum parameter)."""
    return Annotated[config.Format, typer.Option("--format", "-f", help=text, case_sensitive=False)]


FormatOpt = _format_option()
# --plot FILE is checked as the options are read, before any work
PlotOpt = Annotated[Optional[str], typer.Option("--plot", metavar="FILE", help=helptext.PLOT_OPTION,
                                                callback=lambda path: api.prepare_plot(path) and path)]


def _wrote(path) -> None:
    print(f"lstm-demo: plot written to {path}", file=sys.stderr)
FromOpt = Annotated[Optional[str], typer.Option("--from", metavar="RUN_DIR", help=helptext.FROM_OPTION)]

# model-shaping options: they describe a fresh model, so they cannot be combined with --from
_FRESH_MODEL_OPTIONS = {name: "--" + name.replace("_", "-") for name in ("model", *config.MODEL_FIELDS)}


@app.command("gradients", **helptext.command(helptext.GRADIENTS))
def gradients(
    ctx: typer.Context,
    gap: GapOpt = config.default("gap"),
    task: TaskOpt = config.default("task"),
    model: ModelOpt = None,
    hidden: HiddenOpt = None,
    batch: BatchOpt = config.default("gradients.batch"),
    seed: SeedOpt = config.default("seed"),
    init: InitOpt = config.default("model.init"),
    recurrent_scale: GradientScaleOpt = config.default("model.recurrent_scale"),
    forget_bias: ForgetOpt = config.default("model.forget_bias"),
    chrono: ChronoOpt = None,
    activation: ActivationOpt = config.default("model.activation"),
    dtype: DtypeOpt = config.default("model.dtype"),
    rows: RowsOpt = "default",
    fmt: FormatOpt = config.Format.table,
    plot: PlotOpt = None,
    from_dir: FromOpt = None,
) -> None:
    from lstm_cli.render import gradients as view

    if from_dir is not None:
        profile, settings = api.probe_checkpoint(from_dir, **_checkpoint_overrides(
            ctx, task=task, gap=gap, batch=batch, seed=seed))
        profiles = [profile]
    else:
        profiles, settings = api.probe_models(task, gap, model, batch, seed, **model_defaults(ctx))
    view.parse_rows(rows, settings["sequence_length"] - 1)
    view.write(profiles, settings, fmt, rows)
    if plot is not None:
        from lstm_cli import plot as plotting

        _wrote(plotting.plot_profiles(profiles, plot, view.plot_title(settings)))


def _checkpoint_overrides(ctx, **options) -> dict:
    """The options the user gave (they override the run's own); a model-shaping option is an error."""
    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source not in (type(source).DEFAULT, type(source).DEFAULT_MAP)

    clash = [flag for name, flag in _FRESH_MODEL_OPTIONS.items() if given(name)]
    if clash:
        verb = "describes" if len(clash) == 1 else "describe"
        raise BadInput(f"{', '.join(clash)} {verb} a fresh model; --from probes the checkpoint's own model")
    return {name: value for name, value in options.items() if given(name)}


# ---- lstm-demo run / sweep / scenarios: experiments described in scenario files ----

def _complete_scenario(incomplete: str) -> list[str]:
    """Shell completion: the bundled scenario names (run only when the shell asks)."""
    from lstm_cli.scenario import bundled
    return [name for name, _, _ in bundled() if name.startswith(incomplete)]


ScenarioArg = Annotated[str, typer.Argument(
    metavar="SCENARIO", autocompletion=_complete_scenario,
    help="A scenario file, or the name of a bundled scenario (see: lstm-demo scenarios).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", metavar="KEY=VALUE", help=helptext.SET_OPTION)]
OutOpt = Annotated[str, typer.Option("--out", help=helptext.SCENARIO_OUT_OPTION)]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help=helptext.OVERWRITE_OPTION)]
ResumeOpt = Annotated[bool, typer.Option("--resume", help=helptext.RESUME_OPTION)]
SweepNameOpt = Annotated[Optional[str], typer.Option("--name", help=helptext.SWEEP_NAME_OPTION)]



@app.command("scenarios", **helptext.command(helptext.SCENARIOS))
def scenarios_command(
    action: Annotated[Optional[str], typer.Argument(metavar="show", help=helptext.SCENARIOS_SHOW)] = None,
    name: Annotated[Optional[str], typer.Argument(metavar="NAME", autocompletion=_complete_scenario)] = None,
    fmt: FormatOpt = config.Format.table,
) -> None:
    from lstm_cli.render import sweep as view

    if action is None:
        view.list_scenarios(api.list_scenarios(), fmt)
    elif action != "show" or name is None:
        raise BadInput(f"usage: lstm-demo scenarios [show NAME], got {' '.join(filter(None, (action, name)))!r}")
    else:
        view.show_scenario(api.scenario_file(name)[1])


@app.command("run", **helptext.command(helptext.RUN))
def run_command(
    scenario_path: ScenarioArg,
    sets: SetOpt = None,
    index: Annotated[Optional[int], typer.Option("--index", "-i", help=helptext.INDEX_OPTION)] = None,
    fmt: FormatOpt = config.Format.table,
    out: OutOpt = "runs",
    rows: Annotated[str, typer.Option("--rows", help=helptext.RUN_ROWS_OPTION)] = "default",
    plot: PlotOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    name: SweepNameOpt = None,
) -> None:
    from lstm_cli.render import sweep as view

    existing = api.existing(resume, overwrite)
    scenario = api.load_scenario(scenario_path, sets or [])
    if plot is not None and "train" not in scenario.parts:
        raise BadInput(f"--plot draws training runs, and {scenario.name} has no train: section")
    points = scenario.points() if index is None else [scenario.point(index)]
    if "train" in scenario.parts:  # a refusal comes before any work
        name = api.claim_sweep(scenario, points, out, name, existing)
    document: dict = {"scenario": scenario.name}
    if "gradients" in scenario.parts:
        groups = api.scenario_gradients(points)
        document["gradients"] = view.write_gradient_groups(groups, fmt, rows, alone="train" not in scenario.parts)
    if "train" in scenario.parts:
        progress = view.Progress(len(points))
        sweep_dir, records = api.scenario_training(scenario, points, out, on_done=progress.done,
                                                     existing=existing, name=name)
        if fmt is not config.Format.json or len(scenario.parts) == 1:  # json: one document of both parts
            view.write_runs(scenario, points, records, fmt)
        print(f"lstm-demo: run records in {sweep_dir}/", file=sys.stderr)
        document["train"] = records[0] if len(records) == 1 else records
        if plot is not None:
            _wrote(api.plot_runs(scenario, points, records, plot))
    if fmt is config.Format.json and len(scenario.parts) == 2:
        from lstm_cli.plain import write_json

        write_json(document)


@app.command("sweep", **helptext.command(helptext.SWEEP))
def sweep_command(
    scenario_path: ScenarioArg,
    sets: SetOpt = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help=helptext.JOBS_OPTION)] = None,
    resume: ResumeOpt = False,
    name: SweepNameOpt = None,
    stack: Annotated[bool, typer.Option("--stack/--no-stack", help=helptext.STACK_OPTION)] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs (and which are done) and exit.")] = False,
    list_runs: Annotated[bool, typer.Option("--list-runs", help=helptext.LIST_RUNS_OPTION)] = False,
    fmt: _format_option(helptext.SWEEP_FORMAT_OPTION) = config.Format.table,
    out: OutOpt = "runs",
    scheduler: Annotated[Optional[str], typer.Option(metavar="ADDRESS", help=helptext.SCHEDULER)] = None,
    scheduler_file: Annotated[Optional[str], typer.Option(metavar="PATH", help=helptext.SCHEDULER_FILE)] = None,
    plot: PlotOpt = None,
) -> None:
    from lstm_cli import sweep as sweeping
    from lstm_cli.render import sweep as view

    if jobs is not None and jobs < 1:
        raise BadInput(f"--jobs must be at least 1, got {jobs}")
    scenario = api.load_scenario(scenario_path, sets or [])
    if list_runs:
        view.list_runs(scenario.points())
        return
    if "train" not in scenario.parts:
        raise BadInput(f"{scenario.name} has no train: section, so there is nothing to sweep; "
                       f"use: lstm-demo run {scenario_path}")
    if dry_run:  # what --resume would keep
        sweep_dir, points, todo, kept = sweeping.plan(scenario, out, resume=True, name=name)
        view.write_plan(scenario, points, fmt, sweep_dir, kept)
        return
    name = api.sweep_name(scenario, out, name, "resume" if resume else "refuse")
    progress = view.Progress(0, scenario=scenario, jobs=jobs, scheduler=scheduler or scheduler_file,
                             run_lines=fmt is config.Format.jsonl, out=out)
    try:
        result = api.sweep(scenario, out, jobs, resume, progress.plan, progress.done, scheduler, scheduler_file, stack,
                           name=name)
    except KeyboardInterrupt:
        again = "--resume" if name == scenario.name else f"--resume --name {name}"
        raise Interrupted(f"sweep {process.interruption()} after {progress.finished} run(s); finish it with the same "
                          f"command and {again}") from None
    view.write_summary(result, scenario, fmt)
    if plot is not None:
        _wrote(api.plot_sweep(result, scenario, plot))
    progress.finish(result)


# ---- lstm-demo train ----

TrainModelOpt = Annotated[str, typer.Option("--model", "-m", metavar="KIND[:KEY=VALUE,...]",
                                            help=helptext.TRAIN_MODEL_OPTION)]


@app.command("train", **helptext.command(helptext.TRAIN))
def train_command(
    ctx: typer.Context,
    task: TaskOpt = config.default("task"),
    gap: GapOpt = config.default("gap"),
    model: TrainModelOpt = config.default("model.kind"),
    hidden: HiddenOpt = None,
    batch: BatchOpt = config.default("train.batch"),
    steps: Annotated[Optional[int], _opt("train.steps", "--steps")] = None,
    optimizer: Annotated[str, _opt("train.optimizer", "--optimizer")] = config.default("train.optimizer"),
    lr: Annotated[Optional[float], _opt("train.lr", "--lr")] = None,
    momentum: Annotated[float, _opt("train.momentum", "--momentum")] = config.default("train.momentum"),
    clip: Annotated[float, _opt("train.clip", "--clip")] = config.default("train.clip"),
    seed: SeedOpt = config.default("seed"),
    eval_every: Annotated[Optional[int], _opt("train.eval_every", "--eval-every")] = None,
    eval_size: Annotated[Optional[int], _opt("train.eval_size", "--eval-size")] = None,
    init: InitOpt = config.default("model.init"),
    recurrent_scale: ScaleOpt = config.default("model.recurrent_scale"),
    forget_bias: ForgetOpt = config.default("model.forget_bias"),
    chrono: ChronoOpt = None,
    activation: ActivationOpt = config.default("model.activation"),
    dtype: DtypeOpt = config.default("model.dtype"),
    out: Annotated[str, typer.Option("--out", help="Directory of run records.")] = "runs",
    name: Annotated[Optional[str], typer.Option("--name", help=helptext.NAME_OPTION)] = None,
    fmt: _format_option(helptext.TRAIN_FORMAT_OPTION) = config.Format.table,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    plot: PlotOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    from pathlib import Path

    from lstm_cli import rundir, runs
    from lstm_cli.render import train as view

    existing = api.existing(resume, overwrite)
    config = api.train_config(model, model_defaults(ctx),
                              task=task, gap=gap, batch=batch, steps=steps, optimizer=optimizer, lr=lr,
                              momentum=momentum, clip=clip, seed=seed, eval_every=eval_every,
                              eval_size=eval_size)
    if name is not None:  # a refusal comes before any work (a run given no name gets a new directory)
        runs.check_free(Path(out) / name, existing)
    with view.TrainProgress(quiet=quiet) as progress:
        record = api.train_run(config, out, name=name, on_event=progress, existing=existing)
    view.write(record, fmt, lambda: rundir.read_metrics(Path(record["run_dir"])))
    if plot is not None:
        _wrote(api.plot_run(record, plot))
    if record["status"] == "diverged":
        raise RunFailed(view.divergence_note(record))


@app.command("runs", **helptext.command(helptext.RUNS))
def runs_command(
    arguments: Annotated[Optional[list[str]], typer.Argument(
        metavar="[DIR] | show RUN | compare RUN RUN...", help=helptext.RUNS_ARGUMENTS)] = None,
    fmt: FormatOpt = config.Format.table,
    where: Annotated[Optional[list[str]], typer.Option("--where", "-w", metavar="KEY=VALUE",
                                                       help=helptext.WHERE_OPTION)] = None,
    sort: Annotated[Optional[str], typer.Option("--sort", metavar="KEY", help=helptext.SORT_OPTION)] = None,
    directory: Annotated[str, typer.Option("--dir", metavar="DIR", help=helptext.RUNS_DIR_OPTION)] = "runs",
) -> None:
    from lstm_cli.render import records as view

    asked, found = api.runs_request(arguments or [], directory, where or [], sort)
    if asked == "list":
        view.write(found, fmt, (arguments or [directory])[0])
    else:
        (view.write_show if asked == "show" else view.write_compare)(found, fmt)


# ---- lstm-demo inspect ----

@app.command("inspect", **helptext.command(helptext.INSPECT))
def inspect_command(
    run_dir: Annotated[str, typer.Argument(metavar="RUN_DIR", help="A training run's directory.")],
    index: Annotated[int, typer.Option("--index", "-i", help=helptext.INSPECT_INDEX_OPTION)] = 0,
    units: Annotated[int, typer.Option("--units", "-u", help=helptext.INSPECT_UNITS_OPTION)] = 4,
    fmt: FormatOpt = config.Format.table,
    plot: PlotOpt = None,
) -> None:
    from lstm_cli.render import inspect as view

    view.write(inspection := api.inspect_run(run_dir, index=index, units=units), fmt)
    if plot is not None:
        _wrote(api.plot_inspection(inspection, plot))


@app.command("report", **helptext.command(helptext.REPORT))
def report_command(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="A run's, a scenario's or a sweep's directory.")],
    out: Annotated[str, typer.Option("--output", "-o", metavar="FILE.html", help="Where to write the page.")] = "report.html",
) -> None:
    print(f"lstm-demo: report written to {api.report(directory, out)}", file=sys.stderr)
