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

    def get_params(self, ctx):
        params = super().get_params(ctx)
        use_plain_coercion(params)  # --version and --help without pydantic: see use_plain_coercion
        return params

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


# ---- lstm-demo gradients ----

ModelOpt = Annotated[Optional[list[str]], typer.Option(
    "--model", "-m", metavar="KIND[:KEY=VALUE,...]",
    help="A model to probe; repeat for several side by side. KIND is rnn or lstm; the keys (hidden, init, "
         "recurrent_scale, forget_bias, chrono, activation, dtype) override the options below for this "
         "model only. Default: rnn and lstm.")]
GradientScaleOpt = Annotated[float, typer.Option(
    "--recurrent-scale", help="Multiplies W_hh (with orthogonal init, the spectral radius). Without --model "
                              "it scales the RNN only and the LSTM stays the reference at 1; with --model "
                              "it is the default of every model.")]
RowsOpt = Annotated[str, typer.Option(
    "--rows", help="Steps back shown in the table: default (0,1,2,5,10,20,... and the farthest), all, "
                   "or a list like 0,5,10. JSON and CSV always hold every step.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table (for people), json or csv (for programs).")]
PlotOpt = Annotated[Optional[str], typer.Option(
    "--plot", metavar="FILE", help="Also write a log-scale plot to FILE.png, .svg or .pdf "
                                   '(needs the plot extra: pip install "lstm-demo\\[plot]").')]
FromOpt = Annotated[Optional[str], typer.Option(
    "--from", metavar="RUN_DIR", help="Probe the checkpoint of a training run (lstm-demo train) instead of a "
                                      "fresh initialisation, on a batch of the run's own task, gap, seed and "
                                      "probe size (--task, --gap, --batch, --seed override them).")]

# model-shaping options: they describe a fresh model, so they cannot be combined with --from
_FRESH_MODEL_OPTIONS = {"model": "--model", "hidden": "--hidden", "init": "--init",
                        "recurrent_scale": "--recurrent-scale", "forget_bias": "--forget-bias",
                        "chrono": "--chrono", "activation": "--activation", "dtype": "--dtype"}


class _PlainCoercion:
    """Converts one command-line value to int, float, str or bool (or a list of str) without pydantic."""

    NAMES = {int: "integer", float: "number", str: "string", bool: "boolean"}

    def __init__(self, kind: type, multiple: bool) -> None:
        self.kind, self.multiple = kind, multiple

    def coerce(self, value, param, ctx):
        if value is None:
            return () if self.multiple else None
        if self.multiple:
            return [self._one(item, param, ctx) for item in value]
        return self._one(value, param, ctx)

    def _one(self, value, param, ctx):
        if isinstance(value, self.kind) and (self.kind is bool or not isinstance(value, bool)):
            return value
        try:
            if self.kind is bool:  # flags arrive as bools; anything else is a mistake
                raise ValueError
            return self.kind(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a valid {self.NAMES[self.kind]}.",
                                     ctx=ctx, param=param) from None


def use_plain_coercion(params) -> None:
    """Give typer parameters of plain types (int, float, str, bool, list[str]) ``_PlainCoercion``.

    Typer 0.29 converts every option through a pydantic TypeAdapter, and importing pydantic
    costs more than the whole gradient probe (75 ms of a 300 ms run of ``gradients --format
    json``: acceptance 7 of issue 3). The hook is typer's lazily built ``_runtime_param``; a typer without it, or a
    parameter of any other type, keeps typer's own conversion.
    """
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        annotation = descriptor.annotation
        if annotation in _PlainCoercion.NAMES and not param.multiple:
            param._runtime_param = _PlainCoercion(annotation, False)
        elif annotation == list[str] and param.multiple:
            param._runtime_param = _PlainCoercion(str, True)


class _PlainOptionsCommand(typer.core.TyperCommand):
    """A command whose options (and --help) are converted by ``use_plain_coercion``."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        use_plain_coercion(params)
        return params


def single_threaded_blas() -> None:
    """One BLAS thread unless the user set otherwise: the probe's matrices are tiny (B x H),
    and starting OpenBLAS's threads cost more than the probe itself on a busy 2-core machine
    (whole run 490 ms against 290 ms). Takes effect only before numpy is first imported."""
    import os

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


@app.command(cls=_PlainOptionsCommand)
def gradients(
    ctx: typer.Context,
    gap: GapOpt = 50,
    task: TaskOpt = "remember",
    model: ModelOpt = None,
    hidden: HiddenOpt = 32,
    batch: BatchOpt = 64,
    seed: SeedOpt = 0,
    init: InitOpt = "auto",
    recurrent_scale: GradientScaleOpt = 1.0,
    forget_bias: ForgetOpt = 3.0,
    chrono: ChronoOpt = None,
    activation: ActivationOpt = "tanh",
    dtype: DtypeOpt = "float64",
    rows: RowsOpt = "default",
    fmt: FormatOpt = "table",
    plot: PlotOpt = None,
    from_dir: FromOpt = None,
) -> None:
    """Gradient norm per time step, RNN next to LSTM: watch the gradient vanish or explode.

    Runs one forward and backward pass (backprop through time) on one batch of the task and
    shows, for each step back from the loss, ||dL/dh_t|| (and ||dL/dc_t|| for the LSTM)
    averaged over the batch, relative to the loss step and as a log-scale bar; the RNN's
    bound (gamma*sigma_max)^k and the LSTM's forget-gate product. Every model is probed at
    initialisation on the same batch (same --seed, same sequences).

    Verdict, read at the farthest step (the LSTM by its cell state ||dL/dc||): relative norm
    below 1e-3 vanishing, above 1e3 exploding, in between stable. The horizon is the first
    step back where it falls below 1e-3.

    The LSTM's default forget bias is 3 (gate sigmoid(3) = 0.95 open at init); PyTorch's
    default, about 0, closes it and the LSTM vanishes too: see the second example.

    Examples:

    lstm-demo gradients --gap 50

    lstm-demo gradients --gap 50 --model lstm --model lstm:forget_bias=0

    lstm-demo gradients --gap 50 --recurrent-scale 3

    lstm-demo gradients -m rnn:recurrent_scale=0.5 -m rnn -m rnn:init=orthogonal,recurrent_scale=3

    lstm-demo gradients --gap 100 --format json | jq '.models[].summary'

    lstm-demo gradients --from runs/remember-gap50-lstm-seed0 --plot flow.png
    """
    single_threaded_blas()  # before numpy is imported
    from lstm_cli.errors import BadInput
    from lstm_cli.render import gradients as view

    if fmt not in view.FORMATS:
        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(view.FORMATS)}")
    if plot is not None:
        from lstm_cli import plot as plotting

        plotting.check_target(plot)
        plotting.require_matplotlib()  # fail before computing, not after
    if from_dir is not None:
        profiles, settings = _probe_checkpoint(ctx, from_dir, task, gap, batch, seed, rows)
    else:
        profiles, settings = _probe_fresh(task, gap, batch, seed, rows, model,
                                          model_defaults(hidden, init, recurrent_scale, forget_bias,
                                                         chrono, activation, dtype))
    view.write(profiles, settings, fmt, rows)
    if plot is not None:
        written = plotting.plot_profiles(profiles, plot, view.plot_title(settings))
        print(f"lstm-demo: plot written to {written}", file=sys.stderr)


def _probe_fresh(task_name, gap, batch, seed, rows, model_texts, defaults):
    """Probe freshly initialised models (every one on the same batch); returns (profiles, settings)."""
    from lstm_cli import probes
    from lstm_cli.models import parse_model
    from lstm_cli.render import gradients as view
    from lstm_cli.tasks import check_gap, get_task

    task = get_task(task_name)
    check_gap(task, gap)
    view.parse_rows(rows, task.length(gap) - 1)  # a bad --rows fails before the work
    if model_texts:
        specs = [parse_model(text, **defaults) for text in model_texts]
    else:  # the default pair: --recurrent-scale is the RNN's, the LSTM stays the reference
        specs = [parse_model("rnn", **defaults), parse_model("lstm", **{**defaults, "recurrent_scale": 1.0})]
    profiles = [probes.probe_at_init(spec, task, gap, batch, seed) for spec in specs]
    return profiles, probes.batch_settings(task, gap, batch, seed)


def _probe_checkpoint(ctx, run_dir, task_name, gap, batch, seed, rows):
    """Probe a trained checkpoint on a batch of its own task and gap (--task, --gap, --batch and
    --seed override the run's); returns (profiles, settings)."""
    from lstm_cli import runs
    from lstm_cli.errors import BadInput
    from lstm_cli.render import gradients as view

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    clash = [flag for name, flag in _FRESH_MODEL_OPTIONS.items() if given(name)]
    if clash:
        verb = "describes" if len(clash) == 1 else "describe"
        raise BadInput(f"{', '.join(clash)} {verb} a fresh model; --from probes the checkpoint's own model")
    overrides = {name: value for name, value in (("task", task_name), ("gap", gap), ("batch", batch),
                                                 ("seed", seed)) if given(name)}
    profile, settings = runs.probe_checkpoint(run_dir, **overrides)
    view.parse_rows(rows, settings["sequence_length"] - 1)
    return [profile], settings


# ---- lstm-demo run / sweep / scenarios: experiments described in scenario files ----

ScenarioArg = Annotated[str, typer.Argument(
    metavar="SCENARIO", help="A scenario file, or the name of a bundled scenario (see: lstm-demo scenarios).")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", "-s", metavar="KEY=VALUE",
    help="Override a setting (dotted keys: train.lr=1e-3, model.hidden=16, gap=20); repeatable. "
         "KEY=a,b,c, KEY=\\[a, b] or KEY=0..4 makes KEY a sweep axis; a single value replaces an axis.")]
OutOpt = Annotated[str, typer.Option(
    "--out", help="Directory of run records; a scenario's runs go to OUT/<scenario>/<run key>/.")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing run record of the same name (refused without it, so that "
                        "no result is lost).")]


def _load_scenario(path: str, sets: Optional[list[str]]):
    """The validated scenario; every problem is one stderr line, then exit 2."""
    from lstm_cli import scenario as scenarios

    try:
        return scenarios.load(path, sets or [])
    except scenarios.ScenarioError as err:
        sys.stdout.flush()
        for problem in err.problems:
            print("lstm-demo: error: " + _one_line(problem), file=sys.stderr)
        raise typer.Exit(2)


@app.command("scenarios", cls=_PlainOptionsCommand)
def scenarios_command(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, jsonl or csv.")] = "table",
) -> None:
    """List the bundled scenarios, each with a one-line description.

    A scenario is a short, commented YAML file naming the result it reproduces;
    run one by name or by path.

    Examples:

    lstm-demo scenarios

    lstm-demo run vanishing

    lstm-demo sweep remember-gap --dry-run
    """
    from lstm_cli import scenario as scenarios
    from lstm_cli.errors import BadInput
    from lstm_cli.render import sweep as view

    if fmt not in view.SWEEP_FORMATS:
        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(view.SWEEP_FORMATS)}")
    entries = scenarios.bundled()
    if not entries:
        raise BadInput("no bundled scenarios found (the scenarios/ directory is not next to the package)")
    view.list_scenarios(entries, fmt)


@app.command("run", cls=_PlainOptionsCommand)
def run_command(
    scenario_path: ScenarioArg,
    sets: SetOpt = None,
    index: Annotated[Optional[int], typer.Option(
        "--index", "-i", help="Run only the I-th run of the sweep grid (0-based; the order of "
                              "`lstm-demo sweep SCENARIO --list-runs`).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, jsonl or csv.")] = "table",
    out: OutOpt = "runs",
    rows: Annotated[str, typer.Option(
        "--rows", help="Gradient table: steps back shown (default, all, or a list like 0,5,10).")] = "default",
    overwrite: OverwriteOpt = False,
) -> None:
    """Run one experiment from a scenario file: its gradients probe and/or its training.

    A scenario with a sweep runs every point of its grid here, one after the other (use
    `lstm-demo sweep` for worker processes and a summary over seeds), or only the I-th
    with --index (for Slurm job arrays and GNU parallel). Training records go to
    OUT/<scenario>/<run key>/, the same place `lstm-demo sweep` keeps them, so
    `lstm-demo sweep SCENARIO --resume` afterwards aggregates them.

    A diverged run (NaN loss) is a result here, not an error: exit code 1 only when a
    run fails to run.

    Examples:

    lstm-demo run vanishing

    lstm-demo run forget-gate --set train.steps=300

    lstm-demo run remember-gap --index 7 --format json

    lstm-demo run my-experiment.yaml --set model=rnn,lstm --set seed=0..2
    """
    from lstm_cli.errors import BadInput
    from lstm_cli.render import sweep as view

    single_threaded_blas()  # before numpy loads: tiny matrices, as in gradients and train
    if fmt not in view.RUN_FORMATS:
        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(view.RUN_FORMATS)}")
    scenario = _load_scenario(scenario_path, sets)
    points = scenario.points() if index is None else [scenario.point(index)]
    document: dict = {"scenario": scenario.name}
    if "gradients" in scenario.parts:
        document["gradients"] = _scenario_gradients(points, fmt, rows, alone="train" not in scenario.parts)
    if "train" in scenario.parts:
        document["train"] = _scenario_training(scenario, points, fmt, out, overwrite)
    if fmt == "json" and len(scenario.parts) == 2:
        from lstm_cli.render import write_json

        write_json(document)


def _scenario_gradients(points, fmt: str, rows: str, alone: bool):
    """Probe every run's model at initialisation; runs that share task, gap, batch and seed
    are shown side by side, as `lstm-demo gradients` does."""
    from lstm_cli import probes
    from lstm_cli.render import gradients as gradient_view, write_json
    from lstm_cli.tasks import get_task

    groups: dict[tuple, list] = {}
    for point in points:
        groups.setdefault((point.task, point.gap, point.gradients_batch(), point.seed), []).append(point)
    documents = []
    for (task_name, gap, batch, seed), members in groups.items():
        task = get_task(task_name)
        # a training axis (clip, lr, ...) does not change the model at initialisation: probe each once
        specs = list({repr(p.model_spec()): p.model_spec() for p in members}.values())
        profiles = [probes.probe_at_init(spec, task, gap, batch, seed, label=spec.label()) for spec in specs]
        settings = probes.batch_settings(task, gap, batch, seed)
        if fmt == "json":
            documents.append(gradient_view.json_document(profiles, settings))
        elif fmt == "jsonl" and alone:
            from lstm_cli.render import write_jsonl

            write_jsonl(gradient_view.csv_rows(profiles))
        elif fmt == "csv" and alone:
            gradient_view.write(profiles, settings, "csv", rows)
        elif fmt == "table":
            gradient_view.write(profiles, settings, "table", rows)
    if fmt == "json" and alone:
        write_json(documents[0] if len(documents) == 1 else documents)
    return documents[0] if len(documents) == 1 else documents


def _scenario_training(scenario, points, fmt: str, out: str, overwrite: bool):
    """Train every run in this process (records under OUT/<scenario>/<key>/); render the results."""
    from pathlib import Path

    from lstm_cli import runs
    from lstm_cli.render import sweep as view
    from lstm_cli.sweep import sweep_dir_of

    sweep_dir = sweep_dir_of(scenario, Path(out))
    progress = view.Progress(len(points))
    records = []
    for point in points:
        record = runs.run_training(point.train_config(), sweep_dir, name=point.key,
                                   existing="overwrite" if overwrite else "refuse")
        progress.done(point, record, None)
        records.append(record)
    if fmt != "json" or len(scenario.parts) == 1:
        view.write_runs(scenario, points, records, fmt)
    print(f"lstm-demo: run records in {sweep_dir}/", file=sys.stderr)
    return records[0] if len(records) == 1 else records


@app.command("sweep", cls=_PlainOptionsCommand)
def sweep_command(
    scenario_path: ScenarioArg,
    sets: SetOpt = None,
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", help="Worker processes (default: the number of cores); BLAS is pinned to one "
                             "thread per worker.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Keep the runs whose record says they finished (with the same settings); "
                         "run the rest.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs (and which are done) and exit.")] = False,
    list_runs: Annotated[bool, typer.Option(
        "--list-runs", help="Print one run key per line and exit; line I is `lstm-demo run SCENARIO --index I`.")]
        = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, jsonl or csv (the summary).")] = "table",
    out: OutOpt = "runs",
) -> None:
    """Run a scenario's sweep grid in parallel worker processes and summarise it over seeds.

    Each run keeps its own record under OUT/<scenario>/<run key>/ (e.g.
    runs/remember-gap/gap=50,model=lstm,seed=3/). Progress and failures go to stderr as they
    happen; a failed run does not stop the others, and the exit code is 1 if any failed.
    At the end, one row per setting (over the seeds): success rate, median steps and wall
    time to success, median final metric, and the median gradient at the first step
    relative to the answer step at initialisation; also written to summary.csv and
    summary.jsonl in the sweep directory. An interrupted sweep completes by running the
    same command with --resume.

    Examples:

    lstm-demo sweep remember-gap --jobs 2

    lstm-demo sweep remember-gap --set seed=0..1 --set train.steps=500 --dry-run

    lstm-demo sweep remember-gap --resume --format csv > summary.csv

    lstm-demo sweep adding-100 --list-runs | wc -l
    """
    from pathlib import Path

    from lstm_cli import sweep as sweeping
    from lstm_cli.errors import BadInput, Interrupted, RunFailed
    from lstm_cli.render import sweep as view

    if fmt not in view.SWEEP_FORMATS:
        raise BadInput(f"unknown format {fmt!r}; choose one of: {', '.join(view.SWEEP_FORMATS)}")
    if jobs is not None and jobs < 1:
        raise BadInput(f"--jobs must be at least 1, got {jobs}")
    scenario = _load_scenario(scenario_path, sets)
    if list_runs:
        view.list_runs(scenario.points())
        return
    if "train" not in scenario.parts:
        raise BadInput(f"{scenario.name} has no train: section, so there is nothing to sweep; "
                       f"use: lstm-demo run {scenario_path}")
    if dry_run:
        sweep_dir, points, todo, kept = sweeping.plan(scenario, Path(out), resume=True)
        view.write_plan(scenario, points, fmt, sweep_dir, kept)
        return
    import os

    progress = view.Progress(0)

    def on_plan(todo, kept):
        progress.total = len(todo)
        workers = min(jobs or os.cpu_count() or 1, max(1, len(todo)))
        print(f"lstm-demo: sweep {scenario.name}: {len(todo)} run(s) to do"
              + (f", {len(kept)} kept" if kept else "") + f", {workers} worker(s)", file=sys.stderr)

    try:
        result = sweeping.run_sweep(scenario, Path(out), jobs=jobs, resume=resume,
                                    on_plan=on_plan, on_done=progress.done)
    except KeyboardInterrupt:
        raise Interrupted(f"sweep interrupted after {progress.finished} run(s); finish it with the same "
                          f"command and --resume") from None
    view.write_summary(result, scenario, fmt)
    print(f"lstm-demo: {len(result.outcomes)} runs, {result.wall_time:.1f} s; summary.csv and summary.jsonl "
          f"in {result.sweep_dir}/", file=sys.stderr)
    if result.failures:
        keys = ", ".join(o.key for o in result.failures[:3]) + (", ..." if len(result.failures) > 3 else "")
        raise RunFailed(f"{len(result.failures)} of {len(result.outcomes)} runs failed ({keys}); "
                        f"run the same command with --resume to retry them")


# ---- lstm-demo train ----

TrainModelOpt = Annotated[str, typer.Option(
    "--model", "-m", metavar="KIND[:KEY=VALUE,...]",
    help="rnn or lstm, optionally with settings that override the options below, e.g. lstm:forget_bias=0.")]


@app.command("train", cls=_PlainOptionsCommand)
def train_command(
    task: TaskOpt = "remember",
    gap: GapOpt = 50,
    model: TrainModelOpt = "lstm",
    hidden: HiddenOpt = 32,
    batch: BatchOpt = 64,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", help="Most training steps; it stops early on success (default: the task's budget: "
                        "remember 1500, adding 4000, temporal-order 2000, agreement 1500).")] = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adam, sgd or momentum.")] = "adam",
    lr: Annotated[Optional[float], typer.Option(
        "--lr", help="Learning rate (default: adam 0.001, adam 0.003 on adding, sgd 0.1, momentum 0.01).")] = None,
    momentum: Annotated[float, typer.Option("--momentum", help="Momentum of --optimizer momentum.")] = 0.9,
    clip: Annotated[float, typer.Option(
        "--clip", help="Clip the gradient to this global norm (Pascanu et al. 2013); 0 disables.")] = 1.0,
    seed: SeedOpt = 0,
    eval_every: Annotated[Optional[int], typer.Option(
        "--eval-every", help="Steps between held-out evaluations and gradient probes (default 25).")] = None,
    eval_size: Annotated[Optional[int], typer.Option("--eval-size", help="Held-out sequences (default 256).")] = None,
    init: InitOpt = "auto",
    recurrent_scale: ScaleOpt = 1.0,
    forget_bias: ForgetOpt = 3.0,
    chrono: ChronoOpt = None,
    activation: ActivationOpt = "tanh",
    dtype: DtypeOpt = "float64",
    out: Annotated[str, typer.Option("--out", help="Directory of run records.")] = "runs",
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Run directory name (default: <task>-gap<gap>-<model>-seed<seed>).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (for people) or json (the result record).")]
        = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train an RNN or LSTM on a long-gap task and see whether it learns the dependency.

    Fresh batches every step, a fixed held-out set, early stop when the task's success
    criterion holds there. At every evaluation the gradient profile (relative ||dL/dh_t||,
    and ||dL/dc_t|| for the LSTM, per step back) is recorded. At the end: the outcome
    against chance and the criterion, the profile before and after training side by side,
    and a heatmap (steps back x training step, log colour scale) of how the flow changed.

    The record goes to OUT/NAME/: config.yaml, metrics.jsonl, result.json, checkpoint.npz
    (PyTorch parameter names). Exit 1 if the loss becomes NaN or inf (diverged), 130 on Ctrl-C.

    Examples:

    lstm-demo train --task remember --gap 50 --model lstm

    lstm-demo train --task remember --gap 50 --model rnn

    lstm-demo train --task adding --gap 100 --format json | jq .mse

    lstm-demo train --model lstm:forget_bias=0 --steps 500

    lstm-demo gradients --from runs/remember-gap50-lstm-seed0
    """
    import os
    from pathlib import Path

    # small matrices (B x H, H x 4H) gain nothing from BLAS threads and lose much to their
    # contention on a busy machine; only effective here, before numpy is first imported
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    from lstm_cli import runs
    from lstm_cli.errors import BadInput, RunFailed
    from lstm_cli.models import parse_model
    from lstm_cli.render import write_json
    from lstm_cli.render import train as view
    from lstm_cli.train import TrainConfig

    if fmt not in ("table", "json"):
        raise BadInput(f"unknown format {fmt!r}; choose one of: table, json")
    spec = parse_model(model, **model_defaults(hidden, init, recurrent_scale, forget_bias, chrono,
                                               activation, dtype))
    given = {"steps": steps, "lr": lr, "eval_every": eval_every, "eval_size": eval_size}
    config = TrainConfig(task=task, gap=gap, model=spec, batch=batch, optimizer=optimizer, momentum=momentum,
                         clip=clip, seed=seed, **{k: v for k, v in given.items() if v is not None})
    with view.TrainProgress(quiet=quiet) as progress:
        record = runs.run_training(config, Path(out), name=name, on_event=progress,
                                   existing="overwrite" if overwrite else "refuse")
    if fmt == "json":
        write_json(record)
    else:
        view.render_result(record, runs.read_metrics(Path(record["run_dir"])))
    if record["status"] == "diverged":
        raise RunFailed(view.divergence_note(record))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
