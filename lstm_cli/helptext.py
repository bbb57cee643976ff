"""The help text of each command (``lstm-demo COMMAND --help``), kept apart from the code."""

GRADIENTS = """\
Gradient norm per time step, RNN next to LSTM: watch the gradient vanish or explode.

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

SCENARIOS = """\
List the bundled scenarios, each with a one-line description.

A scenario is a short, commented YAML file naming the result it reproduces;
run one by name or by path.

Examples:

lstm-demo scenarios

lstm-demo run vanishing

lstm-demo sweep remember-gap --dry-run
"""

RUN = """\
Run one experiment from a scenario file: its gradients probe and/or its training.

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

SWEEP = """\
Run a scenario's sweep grid in parallel worker processes and summarise it over seeds.

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

TRAIN = """\
Train an RNN or LSTM on a long-gap task and see whether it learns the dependency.

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

MODEL_OPTION = ("A model to probe; repeat for several side by side. KIND is rnn or lstm; the keys "
                "(hidden, init, recurrent_scale, forget_bias, chrono, activation, dtype) override the "
                "options below for this model only. Default: rnn and lstm.")

GRADIENT_SCALE_OPTION = ("Multiplies W_hh (with orthogonal init, the spectral radius). Without --model it "
                         "scales the RNN only and the LSTM stays the reference at 1; with --model it is "
                         "the default of every model.")

FROM_OPTION = ("Probe the checkpoint of a training run (lstm-demo train) instead of a fresh "
               "initialisation, on a batch of the run's own task, gap, seed and probe size (--task, "
               "--gap, --batch, --seed override them).")
