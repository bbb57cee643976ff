"""The Python API: one function per command, each returning data (the CLI renders it).

>>> from lstm_cli import api
>>> profiles, settings = api.probe_models(gap=10, hidden=8, batch=4)
>>> [p.label for p in profiles]
['rnn:hidden=8', 'lstm:hidden=8']

Every argument is checked by ``config.check`` (the same rules and messages as the
command line, scenario files and ``--set``); bad input raises ``errors.BadInput``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from lstm_cli import config
from lstm_cli.errors import BadInput


def model_specs(texts: Sequence[str] | None, **defaults):
    """The ModelSpecs of ``texts`` (``kind[:key=value,...]``), ``defaults`` applied first.

    No texts: the default pair, an RNN and an LSTM, where ``recurrent_scale`` is the RNN's
    and the LSTM stays the reference at 1.
    """
    from lstm_cli.models import parse_model

    if texts:
        return [parse_model(text, **defaults) for text in texts]
    return [parse_model("rnn", **defaults),
            parse_model("lstm", **{**defaults, "recurrent_scale": config.default("model.recurrent_scale")})]


def probe_models(task: str = config.default("task"), gap: int = config.default("gap"),
                 models: Sequence[str] | None = None, batch: int = config.default("gradients.batch"),
                 seed: int = config.default("seed"), **model_defaults: Any):
    """Probe freshly initialised models, every one on the same batch; returns (profiles, settings).

    ``model_defaults`` are model settings (hidden, init, recurrent_scale, ...) applied to every
    model before the settings in its text.
    """
    from lstm_cli import probes
    from lstm_cli.tasks import check_gap, get_task, with_task_defaults

    task_spec = get_task(config.check("task", task))
    check_gap(task_spec, config.check("gap", gap))
    batch, seed = config.check("gradients.batch", batch), config.check("seed", seed)
    from lstm_cli.models import unique_labels

    specs = model_specs(models, **with_task_defaults(task_spec.name, model_defaults))
    labels = unique_labels([spec.label() for spec in specs])
    profiles = [probes.probe_at_init(spec, task_spec, gap, batch, seed, label=label)
                for spec, label in zip(specs, labels)]
    return profiles, probes.batch_settings(task_spec, gap, batch, seed)


def probe_checkpoint(run_dir: str | Path, task: str | None = None, gap: int | None = None,
                     batch: int | None = None, seed: int | None = None):
    """The gradient profile of a trained checkpoint, on a batch of the run's own task, gap,
    probe size and seed (``probe`` stream), so it compares with the run's metrics.jsonl;
    an argument that is not None overrides the run's setting. Returns (profile, settings)."""
    from lstm_cli import probes
    from lstm_cli.checkpoint import inspect_checkpoint, load_checkpoint
    from lstm_cli.tasks import check_gap, get_task
    from lstm_cli.train import TrainConfig

    spec, own = inspect_checkpoint(Path(run_dir))  # every check, before any parameter is loaded
    own = own or TrainConfig()  # a bare checkpoint: the training defaults
    task_spec = get_task(config.check("task", own.task if task is None else task))
    gap = config.check("gap", own.gap if gap is None else gap)
    batch = config.check("gradients.batch", own.probe_size if batch is None else batch)
    seed = config.check("seed", own.seed if seed is None else seed)
    check_gap(task_spec, gap)
    config.check_memory(config.probe_bytes(spec.kind, spec.hidden, batch, task_spec.length(gap), task_spec.input_size),
                 f"probing the checkpoint in {run_dir} at gap {gap} with batch {batch}")
    checkpoint = load_checkpoint(Path(run_dir))
    params = checkpoint.params
    if params["weight_ih"].shape[1] != task_spec.input_size or params["head.weight"].shape[0] != task_spec.output_size:
        raise BadInput(f"the checkpoint in {run_dir} was not made for task {task_spec.name} "
                       "(input or output size differs)")
    x, y = probes.probe_batch(task_spec, gap, batch, seed)
    profile = probes.probe(checkpoint.spec, params, task_spec, x, y, gap, label=checkpoint.spec.label())
    return profile, probes.batch_settings(task_spec, gap, batch, seed, source=str(run_dir))


def train_config(model: str = config.default("model.kind"), model_defaults: dict | None = None, **settings):
    """A ``TrainConfig`` from model text plus settings; None-valued settings take their defaults
    (a None hidden size: the task's, see ``tasks.with_task_defaults``)."""
    from lstm_cli.models import parse_model
    from lstm_cli.tasks import with_task_defaults
    from lstm_cli.train import TrainConfig

    task = config.check("task", settings.get("task") or config.default("task"))
    spec = parse_model(model, **with_task_defaults(task, model_defaults or {}))
    return TrainConfig(model=spec, **{k: v for k, v in settings.items() if v is not None})


def train_run(train_config, out: str | Path = "runs", name: str | None = None,
              on_event: Callable[[Any], None] | None = None, existing: str = "refuse") -> dict:
    """Train one ``TrainConfig`` and keep its record in OUT/NAME; returns the result record.
    An existing record there is refused unless ``existing`` is "overwrite" (or "resume":
    kept when it finished with the same settings); see ``runs.run_training``."""
    from lstm_cli import runs
    from lstm_cli.files import check_out

    check_out(out)
    return runs.run_training(train_config, Path(out), name=name, on_event=on_event, existing=existing)


def list_scenarios() -> list[tuple[str, Path, str]]:
    """The bundled scenarios: (name, path, description)."""
    from lstm_cli import scenario

    entries = scenario.bundled()
    if not entries:
        raise BadInput("no bundled scenarios found (the scenarios/ directory is not next to the package)")
    return entries


def scenario_file(name: str) -> tuple[Path, str]:
    """A scenario's path and its text, comments included (a bundled name, or a path)."""
    from lstm_cli import scenario

    from lstm_cli.files import file_problem, read_regular

    path = scenario.resolve_path(name)
    try:  # a FIFO, a device or a huge file: refused at once, by the one bounded reader
        return path, read_regular(path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a text (UTF-8) file") from None
    except (OSError, ValueError) as err:
        raise BadInput(file_problem(path, err)) from None


def load_scenario(path: str | Path, sets: Sequence[str] = ()):
    """The validated scenario of a file or bundled name, with ``--set`` overrides applied."""
    from lstm_cli import scenario

    return scenario.load(path, list(sets))


def scenario_gradients(points) -> list[tuple[list, dict]]:
    """Probe every run's model at initialisation; runs that share task, gap, batch and seed
    form one group, as `lstm-demo gradients` shows them. Returns [(profiles, settings), ...]."""
    from lstm_cli import probes
    from lstm_cli.models import unique_labels
    from lstm_cli.tasks import get_task

    groups: dict[tuple, list] = {}
    for point in points:
        groups.setdefault((point.task, point.gap, point.gradients_batch(), point.seed), []).append(point)
    results = []
    for (task_name, gap, batch, seed), members in groups.items():
        task = get_task(task_name)
        # a training axis (clip, lr, ...) does not change the model at initialisation: probe each once
        specs: dict[str, tuple] = {}
        for point in members:
            specs.setdefault(repr(point.model_spec()), (point.model_spec(), model_label(point)))
        labels = unique_labels([label for _, label in specs.values()])
        profiles = [probes.probe_at_init(spec, task, gap, batch, seed, label=label)
                    for (spec, _), label in zip(specs.values(), labels)]
        results.append((profiles, probes.batch_settings(task, gap, batch, seed)))
    return results


def model_label(point) -> str:
    """A run's model as the training table names it when an axis sets one of its keys (``forget_bias=0``);
    the model's own label when the axis is the whole model (``rnn``) or no axis changes it."""
    from lstm_cli.scenario import run_key

    axes = [(key, value) for key, value in point.values if key.startswith("model.")]
    whole = any(key == "model" for key, _ in point.values)
    return run_key(axes) if axes and not whole else point.model_spec().label()


def sweep_name(scenario, out: str | Path = "runs", name: str | None = None, existing: str = "refuse",
               points=None) -> str:
    """The directory under ``out`` that a scenario's runs (``points``, default all) go to: ``name``
    when given; the scenario's name to resume or overwrite; else the first of <scenario>,
    <scenario>-run2, ... where none of them has a record yet (``sweep.new_sweep_name``), so the
    same command can be run again."""
    from lstm_cli import sweep as sweeping

    if name is not None:
        sweeping.sweep_dir_of(scenario, Path(out), name)  # a plain directory name
        return name
    return scenario.name if existing != "refuse" else sweeping.new_sweep_name(scenario, Path(out), points)


def existing(resume: bool = False, overwrite: bool = False) -> str:
    """What to do with a record already there (``runs.EXISTING``) for ``--resume`` / ``--overwrite``."""
    if resume and overwrite:
        raise BadInput("--resume keeps the finished records and --overwrite replaces them: give one of them")
    return "resume" if resume else "overwrite" if overwrite else "refuse"


def claim_sweep(scenario, points, out: str | Path = "runs", name: str | None = None, existing: str = "refuse") -> str:
    """``sweep_name`` for ``points``, then ``check_scenario_free``: the directory's name, or the
    refusal before any work."""
    name = sweep_name(scenario, out, name, existing, points)
    check_scenario_free(scenario, points, out, name, existing)
    return name


def check_scenario_free(scenario, points, out: str | Path = "runs", name: str | None = None,
                        existing: str = "refuse") -> None:
    """BadInput before any work when a run of ``points`` would be refused (``runs.check_free``)."""
    from lstm_cli import runs
    from lstm_cli.sweep import sweep_dir_of

    if existing not in runs.EXISTING:
        raise ValueError(f"existing must be one of {runs.EXISTING}, got {existing!r}")
    sweep_dir = sweep_dir_of(scenario, Path(out), name)
    for point in points:
        runs.check_free(sweep_dir / point.key, existing)


def scenario_training(scenario, points, out: str | Path = "runs",
                      on_done: Callable[[Any, dict, Any], None] | None = None,
                      existing: str = "refuse", name: str | None = None) -> tuple[Path, list[dict]]:
    """Train every run in this process (records under OUT/NAME/<key>/, NAME the scenario's name by
    default, see ``sweep_name``); (sweep_dir, records). ``existing``: what to do with a record
    already there (``runs.run_training``)."""
    from lstm_cli import runs
    from lstm_cli.files import check_out, make_directory
    from lstm_cli.sweep import sweep_dir_of

    check_out(out)
    check_scenario_free(scenario, points, out, name, existing)
    sweep_dir = sweep_dir_of(scenario, Path(out), name)
    # as a sweep does: a scenario directory that is a link (out of --out) is refused, not written through
    make_directory(sweep_dir, "scenario directory")
    records = []
    for point in points:
        record = runs.run_training(point.train_config(), sweep_dir, name=point.key, existing=existing)
        if on_done is not None:
            on_done(point, record, None)
        records.append(record)
    return sweep_dir, records


def run_scenario(scenario, index: int | None = None, out: str | Path = "runs", existing: str = "refuse",
                 name: str | None = None) -> dict:
    """Run a scenario (every point of its grid, or only the ``index``-th): its gradients probe
    and/or its training, into OUT/``sweep_name(...)``. Returns {"points", "gradients":
    [(profiles, settings)], "sweep_dir", "records"}; a refusal comes before any work."""
    points = scenario.points() if index is None else [scenario.point(index)]
    result: dict = {"points": points}
    if "train" in scenario.parts:
        name = claim_sweep(scenario, points, out, name, existing)
    if "gradients" in scenario.parts:
        result["gradients"] = scenario_gradients(points)
    if "train" in scenario.parts:
        result["sweep_dir"], result["records"] = scenario_training(scenario, points, out, existing=existing,
                                                                   name=name)
    return result


def sweep(scenario, out: str | Path = "runs", jobs: int | None = None, resume: bool = False,
          on_plan: Callable | None = None, on_done: Callable | None = None,
          scheduler: str | None = None, scheduler_file: str | None = None, stack: bool = False,
          name: str | None = None):
    """Run a scenario's sweep grid in worker processes (``pool.run_jobs``), or on the Dask
    scheduler ``scheduler`` / ``scheduler_file`` (``pool_dask``); returns a SweepResult. With
    ``stack``, the runs that differ only in their seed train together (``seed_stacks.stacks``).
    The records go to OUT/``sweep_name(scenario, out, name, ...)``: without a name or ``resume``,
    a new directory."""
    from lstm_cli import pool, sweep as sweeping
    from lstm_cli.files import check_out

    if jobs is not None and jobs < 1:
        raise BadInput(f"--jobs must be at least 1, got {jobs}")
    check_out(out)
    if "train" not in scenario.parts:
        raise BadInput(f"{scenario.name} has no train: section, so there is nothing to sweep")
    executor = executor_for(jobs, scheduler, scheduler_file) or pool.run_jobs
    if scheduler is not None:  # local:N: N workers to give a unit of work each (Dask's executor needs no count)
        from lstm_cli.pool_dask import local_workers

        jobs = local_workers(scheduler)
    name = sweep_name(scenario, out, name, "resume" if resume else "refuse")
    return sweeping.run_sweep(scenario, Path(out), jobs=jobs, resume=resume, on_plan=on_plan, on_done=on_done,
                              executor=executor, stack=stack, name=name)


def executor_for(jobs: int | None, scheduler: str | None, scheduler_file: str | None):
    """The Dask executor for ``--scheduler`` / ``--scheduler-file``, None without them; BadInput when
    the target is wrong or Dask is not installed."""
    if scheduler is None and scheduler_file is None:
        return None
    from lstm_cli import pool_dask

    if jobs is not None:
        raise BadInput("--jobs sets the local worker processes; with --scheduler the cluster's workers "
                       "run the sweep (local:N for N of them)")
    return pool_dask.executor(scheduler, scheduler_file)


def list_runs(directory: str | Path = "runs", where: Sequence[str] = (), sort: str | None = None):
    """The run records under ``directory``: a ``records.Listing`` (rows, and problems in words), its
    rows filtered by every ``KEY=VALUE`` of ``where`` and sorted by ``sort`` (a field, or a setting
    such as ``model.forget_bias``; ``-key`` descending; default the name), numbers in names as
    numbers (``listing``)."""
    from lstm_cli import listing, records

    found = records.list_records(Path(directory))
    found.rows = listing.sort_rows(listing.select(found.rows, list(where), directory), sort, directory)
    return found


def runs_request(arguments: Sequence[str], directory: str | Path = "runs", where: Sequence[str] = (),
                 sort: str | None = None) -> tuple[str, Any]:
    """``lstm-demo runs``' arguments: ``[DIR]``, ``show RUN`` or ``compare RUN RUN...`` ->
    ("list", ``list_runs``), ("show", ``show_run``) or ("compare", ``compare_runs``)."""
    action, *rest = list(arguments) or [str(directory)]
    if action in ("show", "compare"):
        if where or sort:
            raise BadInput(f"--where and --sort choose rows of the listing; runs {action} takes run names")
        if action == "show" and len(rest) != 1:
            raise BadInput(f"usage: lstm-demo runs show RUN, got {len(rest)} run(s)")
        return action, show_run(rest[0], directory) if action == "show" else compare_runs(rest, directory)
    if rest:
        raise BadInput(f"usage: lstm-demo runs [DIR] | show RUN | compare RUN RUN...; got {' '.join(arguments)!r}")
    return "list", list_runs(action, where, sort)


def show_run(run: str | Path, directory: str | Path = "runs") -> dict:
    """One run record (a path, or a name below ``directory``): its settings, outcome, provenance and
    gradient summary, each a flat mapping (``listing.show``)."""
    from lstm_cli import listing

    return listing.show(run, directory)


def compare_runs(runs_given: Sequence[str], directory: str | Path = "runs") -> dict:
    """Two or more run records side by side: the settings that differ, outcomes and gradient
    summaries (``listing.compare``)."""
    from lstm_cli import listing

    return listing.compare(list(runs_given), directory)


def prepare_plot(path: str | Path | None) -> Path | None:
    """Check a figure's path before any work: a known suffix, an existing directory, matplotlib
    installed (BadInput naming the plot extra otherwise). None: no figure asked for."""
    if path is None:
        return None
    from lstm_cli.render import figures

    return figures.prepare(path)


def plot_run(record: dict, path: str | Path) -> Path:
    """Draw the training figure of one run from its result record and metrics.jsonl; returns the path."""
    from lstm_cli import rundir
    from lstm_cli.render import figures

    figures.plot_training(record, rundir.read_metrics(Path(record["run_dir"])), path,
                          title=figures.training_title(record))
    return Path(path)


def plot_runs(scenario, points, records: list[dict], path: str | Path) -> Path:
    """``run --plot``: the training figure of a single run; a few runs of one seed side by side
    (profiles and learning curves); else the success rate of the runs against the swept axis
    (as ``sweep --plot``). Returns the path."""
    from lstm_cli.render import compare

    if len(records) == 1:
        return plot_run(records[0], path)
    compare.plot_runs(scenario, points, records, path)
    return Path(path)


def plot_sweep(result, scenario, path: str | Path) -> Path:
    """``sweep --plot``: the success rate against the swept axis, from a SweepResult's summary."""
    from lstm_cli.render import figures

    figures.plot_sweep(result.summary, result.axes, path, title=f"{scenario.name}: {scenario.description}")
    return Path(path)


def version_lines(verbose: bool = False) -> list[str]:
    """``lstm-demo --version``; ``verbose``: also the platform that decides the float64 bits."""
    from lstm_cli import __version__, provenance

    return [f"lstm-demo {__version__}", *(provenance.platform_lines() if verbose else [])]


def inspect_run(run_dir: str | Path, index: int = 0, units: int | None = None):
    """What a trained checkpoint's cell does on held-out sequence ``index`` of its run (the
    ``heldout`` stream of its seed, the sequences its accuracy was measured on): an
    ``inspect.Inspection`` with the gates, cell state and output per step of the units that
    contribute most to the answer, and sentences derived from them."""
    from lstm_cli import inspect as inspecting
    from lstm_cli.checkpoint import inspect_checkpoint, load_checkpoint
    from lstm_cli.rundir import read_result
    from lstm_cli.seeds import stream
    from lstm_cli.tasks import get_task
    from lstm_cli.train import TrainConfig

    units = inspecting.DEFAULT_UNITS if units is None else units
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise BadInput(f"--units must be an integer >= 1, got {units!r}")
    record = read_result(Path(run_dir)) if Path(run_dir).is_dir() else None
    if record is not None and not (Path(run_dir) / "checkpoint.npz").exists():
        raise BadInput(f"{run_dir}: the run's status is {record.get('status')} (step {record.get('diverged_at', record.get('steps'))}) "
                       "and it kept no checkpoint, so there is no trained cell to inspect")
    spec, own = inspect_checkpoint(Path(run_dir))  # every check, before any parameter is loaded
    own = (own or TrainConfig()).resolved()
    task = get_task(own.task)
    size = own.eval_size
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise BadInput(f"--index must be a held-out sequence of the run, 0 to {size - 1}, got {index!r}")
    config.check_memory(config.probe_bytes(spec.kind, spec.hidden, size, task.length(own.gap), task.input_size),
                        f"inspecting the checkpoint in {run_dir} on {size} held-out sequences")
    checkpoint = load_checkpoint(Path(run_dir))
    x, y = task.generate(stream(own.seed, "heldout"), size, own.gap)
    return inspecting.inspect(checkpoint.spec, checkpoint.params, task, own.gap, x, y, index, units=units,
                              run_status=(record or {}).get("status"), source=str(run_dir))


def plot_inspection(inspection, path: str | Path) -> Path:
    """``inspect --plot``: the shown units' gates, cell state and output against the step."""
    from lstm_cli.render import inspect as view

    view.plot_inspection(inspection, path)
    return Path(path)


def report(directory: str | Path, out: str | Path) -> Path:
    """``lstm-demo report``: one self-contained HTML file for a run, a scenario's runs (``run``)
    or a sweep directory; returns its path. BadInput naming the plot extra without matplotlib."""
    from lstm_cli.render import report as view

    return view.write(Path(directory), Path(out), inspect_run)
