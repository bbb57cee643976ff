"""The help text of each command (``lstm-demo COMMAND --help``), kept apart from the code.

Plain text: the help is click's (no rich markup), so a bracket is a bracket."""

from lstm_cli import config

GRADIENTS = """\
Gradient norm per time step, RNN next to LSTM: watch the gradient vanish or explode.

Runs one forward and backward pass (backprop through time) on one batch of the task and
shows, for each step back from the loss, ||dL/dh_t|| (and ||dL/dc_t|| for the LSTM)
averaged over the batch, relative to the loss step and as a log-scale bar; the RNN's
bound (gamma*sigma_max)^k and the split of its loss into tanh' and W_hh (in decades),
the LSTM's dL/dc split into the direct path along the cell state and the rest (through
h and the gates). Every model is probed at initialisation on the same batch (same
--seed, same sequences). The text under the table is generated from these numbers.

Verdict, read at the farthest step (the LSTM by its cell state ||dL/dc||): relative norm
below 1e-3 vanishing, above 1e3 exploding, in between stable. The horizon is the first
step back where it falls below 1e-3.

The LSTM's default forget bias is 3 (gate sigmoid(3) = 0.95 open at init); PyTorch's
default, about 0, leaves the gate near 0.5 and the LSTM's dL/dc vanishes too: see the
second example and its belt and gates columns.

Examples:

lstm-demo gradients --gap 50

lstm-demo gradients --gap 50 --model lstm --model lstm:forget_bias=0

lstm-demo gradients --gap 50 --recurrent-scale 3

lstm-demo gradients -m rnn:recurrent_scale=0.5 -m rnn -m rnn:init=orthogonal,recurrent_scale=3

lstm-demo gradients --gap 100 --format json | jq '.models[].summary'

lstm-demo gradients --from runs/remember-gap50-lstm-seed0 --plot flow.png
"""

SCENARIOS = """\
List the bundled scenarios, each with a one-line description and its file;
`show NAME` prints a scenario's file, comments included.

A scenario is a short, commented YAML file naming the result it reproduces;
run one by name or by path.

Examples:

lstm-demo scenarios

lstm-demo scenarios show remember-gap > my-sweep.yaml

lstm-demo run vanishing

lstm-demo sweep remember-gap --dry-run
"""

RUN = """\
Run one experiment from a scenario file: its gradients probe and/or its training.

A scenario with a sweep runs every point of its grid here, one after the other (use
`lstm-demo sweep` for worker processes and a summary over seeds), or only the I-th
with --index (for Slurm job arrays and GNU parallel). Training records go to
OUT/<scenario>/<run key>/, the same place `lstm-demo sweep` keeps them, so
`lstm-demo sweep SCENARIO --resume` afterwards aggregates them. When those runs are
already there, the same command goes to OUT/<scenario>-run2/ (then -run3, ...): it can
always be run again; --resume keeps the finished runs, --overwrite replaces them, and
--name NAME is used exactly (refused, before any work, when it holds these runs).

A diverged run (NaN loss) is a result here, not an error: exit code 1 only when a
run fails to run.

--plot FILE draws the training figure of a single run, or the success rate against the
swept axis when the runs form a sweep (as `lstm-demo sweep --plot`).

Examples:

lstm-demo run vanishing

lstm-demo run exploding --index 1 --plot exploding.png

lstm-demo run forget-gate --set train.steps=300

lstm-demo run remember-gap --index 7 --format json

lstm-demo run my-sweep.yaml --set model=rnn,lstm --set seed=0..2
"""

SWEEP = """\
Run a scenario's sweep grid in parallel worker processes and summarise it over seeds.

Each run keeps its own record under OUT/<scenario>/<run key>/ (e.g.
runs/remember-gap/gap=50,model=lstm,seed=3/). Progress and failures go to stderr as they
happen; a failed run does not stop the others, and the exit code is 1 if any failed.
At the end, one row per setting (over the seeds): success rate, median steps and wall
time to success, median final metric, and the median gradient at the first step
relative to the answer step at initialisation; also written to summary.csv and
summary.jsonl in the sweep directory. An interrupted sweep completes by running the
same command with --resume; without --resume (or --name), a sweep whose runs are already
in OUT/<scenario>/ goes to a new OUT/<scenario>-run2/ (then -run3, ...).

--format jsonl streams: a {"type": "run", ...} line per run as it finishes (the runs kept
by --resume first, "kept": true), then a {"type": "summary", ...} line per setting.
--plot FILE draws the success rate against the swept axis (the gap, normally), one line per
model with a 95% Wilson interval over the seeds, and the median steps to success.

Examples:

lstm-demo sweep remember-gap --jobs 2 --plot remember-gap.png

lstm-demo sweep remember-gap --format jsonl | jq -c 'select(.type == "run") | [.key, .success]'

lstm-demo sweep remember-gap --set seed=0..1 --set train.steps=500 --dry-run

lstm-demo sweep remember-gap --resume --format csv > summary.csv

lstm-demo sweep adding-100 --list-runs | wc -l

lstm-demo sweep remember-gap --scheduler local:2
"""

SCHEDULER = ("Run on a Dask cluster: local:N (N worker processes here) or a scheduler's tcp://HOST:PORT. "
             "OUT must then be a filesystem every worker shares. Needs: pip install \"lstm-demo[dask]\".")
SCHEDULER_FILE = "Run on the Dask scheduler that wrote PATH (dask scheduler --scheduler-file PATH)."

TRAIN = """\
Train an RNN or LSTM on a long-gap task and see whether it learns the dependency.

Fresh batches every step, a fixed held-out set, early stop when the task's success
criterion holds there. At every evaluation the gradient profile (relative ||dL/dh_t||,
and ||dL/dc_t|| for the LSTM, per step back) is recorded. At the end: the outcome
against chance and the criterion, the profile before and after training side by side,
and a heatmap (steps back x training step, log colour scale) of how the flow changed.

The record goes to OUT/NAME/: config.yaml, metrics.jsonl, result.json, checkpoint.npz
(PyTorch parameter names). Without --name, NAME is <task>-gap<gap>-<model>-seed<seed>, or
-run2, -run3, ... after it when that is taken, so the same command can be run again. Exit 1 if the loss becomes NaN or inf (diverged), 130 on Ctrl-C.

--plot FILE draws the same as a figure: the heatmap of ||dL/dh|| (RNN) or the cell state's
||dL/dc|| (LSTM), the profiles at init and at the end beside it, and beneath it the held-out
metric against the training step with the success threshold.

Examples:

lstm-demo train --task remember --gap 50 --model lstm

lstm-demo train --task remember --gap 50 --model rnn --plot rnn-gap50.png

lstm-demo train --task remember --gap 50 --model rnn

lstm-demo train --task adding --gap 100 --format json | jq .mse

lstm-demo train --model lstm:forget_bias=0 --steps 500

lstm-demo gradients --from runs/remember-gap50-lstm-seed0
"""

RUNS = """\
List the run records under DIR: name, status, success, task, gap, model, metric value, steps, wall time, made.

Ad-hoc `lstm-demo train` runs and a sweep's runs (DIR/<scenario>/<run key>) alike, sorted by
name with the numbers in names as numbers (gap=10 before gap=20 before gap=100). A directory
that is not a readable run record is reported on stderr in one line, and the listing goes on.
Status: completed, diverged, interrupted, failed, running, abandoned (says running, but its
process on this host is gone) or "no result". Success: the task's success criterion held at
the last evaluation of a completed run (result.json's success), so a completed run at chance
level says no.

`runs show RUN` prints one record: its settings, outcome, provenance and gradient summary.
`runs compare RUN RUN...` prints the settings that differ and the outcomes side by side. RUN
is a run directory, or its name as the listing shows it (below --dir).

Examples:

lstm-demo runs

lstm-demo runs --where status=completed --where success=no

lstm-demo runs --sort -value --where task=remember

lstm-demo runs runs/remember-gap --format csv > runs.csv

lstm-demo runs show remember-gap50-lstm-seed0

lstm-demo runs compare forget-gate/forget_bias=0 forget-gate/forget_bias=3

lstm-demo runs --format json | jq -r '.[] | select(.status == "completed") | .name'
"""

RUNS_ARGUMENTS = ("DIR: where the records are (default runs); show RUN: one record; compare RUN RUN...: "
                  "several side by side.")
WHERE_OPTION = ("Only the runs whose KEY is VALUE (a field of the listing, or a setting as runs show names it: "
                "model.forget_bias, lr; numbers as numbers, success=yes/no, * and ? as in the shell); repeatable, "
                "all must hold.")
SORT_OPTION = ("Sort by a field of the listing or a setting (-KEY: descending); numbers as numbers, missing "
               "values last.")
RUNS_DIR_OPTION = "Where show and compare look for a RUN given by name (default runs)."

VERBOSE = ("With --version: also the platform that decides the float64 bits (BLAS and its CPU core type, "
           "numpy's SIMD features).")

INSPECT = """\
What a trained cell does on one held-out sequence: its gates, cell state and output at every step.

RUN_DIR is a run of lstm-demo train (its checkpoint). The sequence is the --index-th of the
run's held-out set (the sequences its accuracy was measured on). Shown per step, for the
units that contribute most to the answer: the LSTM's gates i, f, o, its cell state c and
output h; the GRU's update and reset gates z, r and h; the RNN's pre-activation, act'
(tanh' = 1 - h^2) and h. The units are picked by an exact ablation: the drop in the right
answer's log-probability (or the rise in squared error) when the unit's h at the answer
step is set to 0, averaged over the held-out sequences. A unit stores the answer when the
target explains at least half of the variance of its memory (c, or h) at the answer step.
The sentences are generated from the numbers printed above them, and say so when the model
did not learn.

Examples:

lstm-demo train --task remember --gap 50 --seed 0

lstm-demo inspect runs/remember-gap50-lstm-seed0 --index 3

lstm-demo inspect runs/remember-gap50-lstm-seed0 --units 2 --plot inspect.png

lstm-demo inspect runs/remember-gap50-lstm-seed0 --format json | jq -r '.units[].sentence'
"""

INSPECT_INDEX_OPTION = "Which held-out sequence of the run (0-based, below the run's train.eval_size)."
INSPECT_UNITS_OPTION = "How many units to show, those with the largest contribution to the answer first."

REPORT = """\
Write one self-contained HTML file for a run, a scenario's runs or a sweep directory.

The settings, the outcome, the sentences derived from the numbers, the tables, every figure
inline as SVG (for a run, also what its trained cell does, as lstm-demo inspect shows it) and
the provenance of every run. No script, no network: it opens from a laptop's disk or from a
cluster's shared file system. Needs the plot extra (pip install "lstm-demo[plot]").

Examples:

lstm-demo report runs/remember-gap50-lstm-seed0 -o lstm.html

lstm-demo report runs/forget-gate -o forget-gate.html

lstm-demo report runs/remember-gap -o remember-gap.html
"""

PLOT_OPTION = 'Also draw the figure to FILE.png, .svg or .pdf (needs the plot extra: pip install "lstm-demo[plot]").'
ROWS_OPTION = ("Steps back shown in the table: default (0,1,2,5,10,20,... and the farthest), all, "
               "or a list like 0,5,10. JSON and CSV always hold every step.")
SET_OPTION = ("Override a setting (dotted keys: train.lr=1e-3, model.hidden=16, gap=20); repeatable. "
              "KEY=a,b,c, KEY=[a, b] or KEY=0..4 makes KEY a sweep axis; a single value replaces an axis.")
INDEX_OPTION = "Run only the I-th run of the sweep grid (0-based; the order of `lstm-demo sweep SCENARIO --list-runs`)."
JOBS_OPTION = "Worker processes (default: the number of cores); BLAS is pinned to one thread per worker."
STACK_OPTION = ("Train the runs that differ only in their seed together, as one stack; each run's record is "
                "the one it writes alone. Off by default: at H = 32 a stack was slower than the runs alone "
                "(docs/benchmarks.md).")
RESUME_OPTION = ("Keep the runs whose record says they finished (with the same settings); run the rest. "
                 "Without it (and without a name), the runs go to a new directory.")
LIST_RUNS_OPTION = "Print one run key per line and exit; line I is `lstm-demo run SCENARIO --index I`."
SCENARIO_OUT_OPTION = "Directory of run records; a scenario's runs go to OUT/<scenario>/<run key>/."
RUN_ROWS_OPTION = "Gradient table: steps back shown (default, all, or a list like 0,5,10)."
SWEEP_FORMAT_OPTION = ("table (for people), or json, jsonl (a line per run as it finishes, then the summary) "
                       "or csv (for programs).")
NAME_OPTION = ("Run directory name, used exactly (refused when it holds a record, unless --overwrite or --resume). "
               "Default: <task>-gap<gap>-<model>-seed<seed>, or -run2, -run3, ... after it when that is taken.")
SWEEP_NAME_OPTION = ("The directory under OUT, used exactly (refused when it holds records of these runs, "
                     "unless --resume). Default: the scenario's name, or -run2, -run3, ... after it when that "
                     "holds records; with --resume or --overwrite, the scenario's name.")
TRAIN_FORMAT_OPTION = ("table (for people), or json (the result record), jsonl (the record on one line) or csv "
                       "(its one-value fields, one row).")
KINDS = ", ".join(config.KINDS[:-1]) + " or " + config.KINDS[-1]  # the registered cells (lstm_cli/cells)
TRAIN_MODEL_OPTION = (f"{KINDS}, optionally with settings that override the options below, e.g. "
                      "lstm:forget_bias=0 or lstm:peephole=true.")

MODEL_OPTION = (f"A model to probe; repeat for several side by side. KIND is {KINDS}; the keys "
                "(hidden, init, recurrent_scale, forget_bias, chrono, activation, dtype) override the "
                "options below for this model only, and peephole, coupled, forget_gate (true or false) "
                "pick an LSTM variant, e.g. lstm:forget_gate=false. Default: rnn and lstm.")

GRADIENT_SCALE_OPTION = ("Multiplies W_hh (with orthogonal init, the spectral radius). Without --model it "
                         "scales the RNN only and the LSTM stays the reference at 1; with --model it is "
                         "the default of every model.")

FROM_OPTION = ("Probe the checkpoint of a training run (lstm-demo train) instead of a fresh "
               "initialisation, on a batch of the run's own task, gap, seed and probe size (--task, "
               "--gap, --batch, --seed override them).")

SCENARIOS_SHOW = "show NAME: print the scenario file NAME (a bundled name), comments included."
OVERWRITE_OPTION = ("Replace an existing run record of the same name (refused without it, so that no "
                    "result is lost; without a name the run goes to a new directory instead).")


def command(text: str) -> dict:
    """A command's help, and its line in ``lstm-demo --help``: the help's first paragraph, whole."""
    return {"help": text, "short_help": " ".join(text.split("\n\n")[0].split())}
