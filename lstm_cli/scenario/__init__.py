"""Scenarios: one experiment (or a grid of them) described in a short YAML file.

A scenario file, every key optional except that it must ask for ``train`` or
``gradients`` (or both)::

    description: LSTM vs RNN success rate as the gap grows   # one line, for `lstm-demo scenarios`
    task: remember          # remember | adding | temporal-order | agreement
    gap: 50                 # steps between the information and the question
    seed: 0
    model: lstm             # "kind[:key=value,...]" or a mapping {kind: lstm, hidden: 32, ...}
    gradients:              # probe the gradient flow at initialisation
      batch: 64
    train:                  # train the model (defaults: lstm_cli.train.TrainConfig)
      steps: 1500
      lr: 1e-2
      clip: 1.0             # 0 disables clipping
    sweep:                  # a grid: every combination of these settings becomes a run
      gap: [5, 10, 20, 50, 100]
      model: [rnn, lstm]
      seed: 0..4            # an inclusive integer range, same as [0, 1, 2, 3, 4]

Settings have dotted names (``gap``, ``model.hidden``, ``train.lr``,
``gradients.batch``); a leaf name that belongs to one section only may be
used alone in ``sweep:`` and ``--set`` (``lr`` for ``train.lr``). A ``model``
value in a sweep or ``--set`` is laid over the scenario's model, so with
``model: {kind: lstm, hidden: 64}``, sweeping ``model: [rnn, lstm]`` gives both
64 hidden units.

``--set key=value`` overrides one setting (a single value also replaces a
sweep axis over that key); ``--set key=a,b,c``, ``--set key=[a, b]`` or
``--set key=0..4`` makes the key a sweep axis.

YAML 1.1 traps are not inherited: the loader resolves only YAML 1.2's core
scalars, so ``1e-3`` is the float 0.001, ``yes``/``no``/``on``/``off`` are plain
strings (only ``true``/``false`` are booleans), ``010`` is ten and ``1:30`` is
not a number. A duplicate key, an empty file or a tab in the indentation is
an error. The schema is walked on the YAML nodes themselves, so every problem
is reported as ``file:line: key: what is wrong`` (one line per problem).
"""

from lstm_cli.scenario.bundled import bundled, bundled_dir, describe, resolve_path
from lstm_cli.scenario.grid import GRADIENTS_BATCH, RunPoint, Scenario, format_value, run_key, short_name
from lstm_cli.scenario.loader import apply_overrides, load, parse, parse_set
from lstm_cli.scenario.schema import MODEL_FIELDS, SECTIONS, SWEEPABLE, TOP_LEVEL, canonical_key
from lstm_cli.scenario.yamlio import MAX_RUNS, ScenarioError

__all__ = ["GRADIENTS_BATCH", "MAX_RUNS", "MODEL_FIELDS", "SECTIONS", "SWEEPABLE", "TOP_LEVEL",
           "RunPoint", "Scenario", "ScenarioError", "apply_overrides", "bundled", "bundled_dir",
           "canonical_key", "describe", "format_value", "load", "parse", "parse_set", "resolve_path",
           "run_key", "short_name"]
