"""Generated long-gap sequence tasks.

Every task is a pure function of an ``np.random.Generator``:
``task.generate(rng, batch, gap) -> (x, y)`` with x (B, T, D) float64 inputs
and y (B, S) targets for the task's S answer steps (``task.answer_steps``,
counted from the end: (-1,), the last step, for every task but copy, whose
answers are its last 10 steps).
``gap`` is the number of steps between the information and the step where it
is needed; the steps inside the gap are *random* distractors (with a constant
filler a tanh RNN can park its state in a fixed point, and the task would say
nothing about long-term memory).

| task           | T        | target                          | chance level        | success            |
|----------------|----------|---------------------------------|---------------------|--------------------|
| remember       | gap + 2  | first symbol (of 4)             | accuracy 1/4        | accuracy >= 0.99   |
| adding         | gap      | sum of the two marked values    | MSE 1/6 ~ 0.167     | MSE < 0.01         |
| temporal-order | gap + 3  | order of two marked symbols     | accuracy 1/4        | accuracy >= 0.99   |
| agreement      | gap + 2  | verb agrees with the subject    | accuracy 1/2        | accuracy >= 0.99   |
| copy           | gap + 21 | the first 10 symbols (of 8)     | accuracy 1/8        | accuracy >= 0.99   |

Sources: remember is the latching problem of Bengio et al. (1994) and
Hochreiter & Schmidhuber (1997); adding is Hochreiter & Schmidhuber's
experiment 4 in the form of Le et al. (2015), with the first marker in the
first half and the second in the second half of T = gap steps; temporal-order
is their experiment 6a; agreement is the example of "Understanding LSTM
Networks" (a singular or plural subject, then filler words, then the verb).

copy is the copying memory problem (Hochreiter & Schmidhuber 1997; in the form
of Arjovsky, Shah & Bengio 2016): 10 symbols drawn from 8, then ``gap`` blanks,
a delimiter, and 10 more blanks during which the model must output the 10
symbols in order, so every symbol is recalled gap + 11 steps after it was
seen. The loss is summed over the last 10 steps and the metric is per-symbol
accuracy over them. A model with no memory can only guess: accuracy 1/8, and
cross-entropy log 8 per answer step, 10 log 8 per sequence, or, averaged over
every step as Arjovsky et al. count it (blanks are free to predict),
10 log 8 / (T + 20) with their T = gap + 1. The gap is made of blanks, not
random distractors, as in both papers: no fixed point can hold 8^10 different
sequences, so the task measures memory even with a constant filler.

Imports numpy only inside its functions: the command line reads the table (names, step
budgets) for its help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy as np

from lstm_cli.errors import BadInput

N_SYMBOLS = 4  # remember: the symbols to recall
N_DISTRACTORS = 4  # remember, temporal-order: the noise alphabet inside the gap
COPY_LENGTH = 10  # copy: the symbols to reproduce
COPY_CATEGORIES = 8  # copy: the alphabet they are drawn from
# copy's models hold 10 symbols of 3 bits each for gap + 20 steps. A 32-unit LSTM levels off
# below the 0.99 criterion (gap 20, seeds 0-4: 0.90-0.97 after 5,000 steps at Adam 1e-2 or 2e-2;
# no better with a larger batch or with the step cut tenfold halfway); 64 units reach it on every
# seed (docs/variants.md). So copy's models have 64 units unless told otherwise.
COPY_HIDDEN = 64

SINGULAR = ("the cat", "the dog", "the cloud", "the child")
PLURAL = ("the cats", "the dogs", "the clouds", "the children")
FILLERS = ("that", "we", "saw", "near", "the", "old", "red", "house", "yesterday", "in", "town", "again")


@dataclass(frozen=True)
class Task:
    """A generated task: its data generator and how to judge an answer."""

    name: str
    description: str
    input_size: int  # D
    output_size: int  # K: classes, or 1 for regression
    loss: str  # "cross_entropy" or "mse"
    metric: str  # "accuracy" (higher is better) or "mse" (lower is better)
    chance: float  # the metric of a model that knows nothing
    success: float  # the threshold the metric must reach
    min_gap: int
    length: Callable[[int], int]  # T as a function of gap
    make: Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]
    reference: str
    # the training step budget: enough for the default LSTM at gap 50-100, so that a model that has
    # not succeeded by then has honestly failed
    steps: int
    # Adam's step when it is not config.DEFAULT_LR's. adding: its regression gradient stays small
    # until the markers are found, and at 1e-3 the LSTM needed more than 4000 steps at gap 100; at
    # 3e-3 remember failed 3 of 5 seeds at gap 100, so the step is per task. copy learns slowly at
    # 1e-3 (gap 20, seed 0: per-symbol accuracy 0.42 after 3000 steps); at 1e-2 its default LSTM
    # (H = 64, COPY_HIDDEN) succeeds on seeds 0-4 in 1950-4000 steps; at 2e-2 seed 0 reached only
    # 0.83 (docs/variants.md).
    adam_lr: float | None = None
    answer_steps: tuple[int, ...] = (-1,)  # the steps that carry a target and a loss, counted from the end
    hidden: int | None = None  # the models' hidden units when none are given (None: model.hidden's default)

    def generate(self, rng: np.random.Generator, batch: int, gap: int) -> tuple[np.ndarray, np.ndarray]:
        """One batch: x (B, T, D) float64, y (B, S) int64 labels or float64 targets, S answer steps."""
        import numpy as np

        check_gap(self, gap)
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise BadInput(f"batch must be an integer >= 1, got {batch!r}")
        return self.make(rng, batch, gap)

    def succeeded(self, value: float) -> bool:
        """Whether a held-out metric meets the success criterion."""
        if self.metric == "accuracy":
            return bool(value >= self.success)
        return bool(value < self.success)

    @property
    def criterion(self) -> str:
        op = ">=" if self.metric == "accuracy" else "<"
        return f"{self.metric} {op} {self.success:g}"


def with_task_defaults(task_name: str, model_settings: dict) -> dict:
    """``model_settings`` with the task's own hidden size where none (or None) is given; without
    one of the task's, a None hidden is dropped (the model's default applies)."""
    task, settings = get_task(task_name), dict(model_settings)
    if settings.get("hidden") is None:
        settings.pop("hidden", None)
        if task.hidden is not None:
            settings["hidden"] = task.hidden
    return settings


def check_gap(task: Task, gap: int) -> None:
    import numpy as np

    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < task.min_gap:
        raise BadInput(f"gap: must be an integer >= {task.min_gap} for task {task.name}, got {gap!r}")


def _one_hot(ids: np.ndarray, depth: int) -> np.ndarray:
    import numpy as np

    out = np.zeros(ids.shape + (depth,))
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def _remember(rng, batch, gap):
    import numpy as np

    # ids: 0..3 the symbols, 4..7 distractors, 8 the query marker
    T = gap + 2
    symbol = rng.integers(0, N_SYMBOLS, size=batch)
    ids = np.empty((batch, T), dtype=np.int64)
    ids[:, 0] = symbol
    ids[:, 1:T - 1] = N_SYMBOLS + rng.integers(0, N_DISTRACTORS, size=(batch, gap))
    ids[:, T - 1] = N_SYMBOLS + N_DISTRACTORS
    return _one_hot(ids, N_SYMBOLS + N_DISTRACTORS + 1), symbol[:, None]


def _adding(rng, batch, gap):
    import numpy as np

    T = gap
    values = rng.uniform(0.0, 1.0, size=(batch, T))
    first = rng.integers(0, T // 2, size=batch)
    second = rng.integers(T // 2, T, size=batch)
    markers = np.zeros((batch, T))
    rows = np.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = values[rows, first] + values[rows, second]
    return x, y[:, None]


def _temporal_order(rng, batch, gap):
    import numpy as np

    # ids: 0 = X, 1 = Y, 2..5 distractors, 6 the query marker
    T = gap + 3
    first = rng.integers(0, 2, size=batch)
    second = rng.integers(0, 2, size=batch)
    ids = np.empty((batch, T), dtype=np.int64)
    ids[:, 0] = first
    ids[:, 1:gap + 1] = 2 + rng.integers(0, N_DISTRACTORS, size=(batch, gap))
    ids[:, gap + 1] = second
    ids[:, T - 1] = 2 + N_DISTRACTORS
    return _one_hot(ids, 2 + N_DISTRACTORS + 1), (2 * first + second)[:, None]


def _agreement(rng, batch, gap):
    import numpy as np

    # ids: singular subjects, plural subjects, fillers, then the verb slot
    T = gap + 2
    n_subj = len(SINGULAR)
    plural = rng.integers(0, 2, size=batch)
    ids = np.empty((batch, T), dtype=np.int64)
    ids[:, 0] = plural * n_subj + rng.integers(0, n_subj, size=batch)
    ids[:, 1:T - 1] = 2 * n_subj + rng.integers(0, len(FILLERS), size=(batch, gap))
    ids[:, T - 1] = 2 * n_subj + len(FILLERS)
    return _one_hot(ids, 2 * n_subj + len(FILLERS) + 1), plural[:, None]


def _copy(rng, batch, gap):
    import numpy as np

    # ids: 0..7 the symbols, 8 blank, 9 the delimiter
    blank, delimiter = COPY_CATEGORIES, COPY_CATEGORIES + 1
    T = gap + 2 * COPY_LENGTH + 1
    symbols = rng.integers(0, COPY_CATEGORIES, size=(batch, COPY_LENGTH))
    ids = np.full((batch, T), blank, dtype=np.int64)
    ids[:, :COPY_LENGTH] = symbols
    ids[:, T - COPY_LENGTH - 1] = delimiter
    return _one_hot(ids, COPY_CATEGORIES + 2), symbols


def agreement_sentence(x_row: np.ndarray) -> str:
    """The words of one agreement sequence (B, T, D)[b], with '___' for the verb slot."""
    words = SINGULAR + PLURAL + FILLERS + ("___",)
    return " ".join(words[int(i)] for i in x_row.argmax(axis=-1))


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("remember", "recall the first of 4 symbols after gap random distractors",
             N_SYMBOLS + N_DISTRACTORS + 1, N_SYMBOLS, "cross_entropy", "accuracy",
             1.0 / N_SYMBOLS, 0.99, 1, lambda gap: gap + 2, _remember,
             "Bengio et al. 1994; Hochreiter & Schmidhuber 1997", steps=1500),
        Task("adding", "sum the two marked values of a sequence of T = gap random numbers",
             2, 1, "mse", "mse", 1.0 / 6.0, 0.01, 2, lambda gap: gap, _adding,
             "Hochreiter & Schmidhuber 1997; Le et al. 2015", steps=4000, adam_lr=3e-3),
        Task("temporal-order", "classify the order (XX, XY, YX, YY) of two symbols gap steps apart",
             2 + N_DISTRACTORS + 1, 4, "cross_entropy", "accuracy", 0.25, 0.99, 1,
             lambda gap: gap + 3, _temporal_order, "Hochreiter & Schmidhuber 1997, experiment 6a", steps=2000),
        Task("agreement", "pick 'is' or 'are' to agree with a subject gap words back",
             2 * len(SINGULAR) + len(FILLERS) + 1, 2, "cross_entropy", "accuracy", 0.5, 0.99, 1,
             lambda gap: gap + 2, _agreement, "Olah 2015, Understanding LSTM Networks", steps=1500),
        Task("copy", "reproduce 10 symbols (of 8) after gap blanks and a delimiter",
             COPY_CATEGORIES + 2, COPY_CATEGORIES, "cross_entropy", "accuracy", 1.0 / COPY_CATEGORIES,
             0.99, 1, lambda gap: gap + 2 * COPY_LENGTH + 1, _copy,
             "Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016",
             answer_steps=tuple(range(-COPY_LENGTH, 0)), hidden=COPY_HIDDEN, steps=5000, adam_lr=1e-2),
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise BadInput(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None
