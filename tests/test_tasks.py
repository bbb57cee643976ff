"""Generated tasks: shapes, determinism, random distractors, and that the answer is in the data."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import losses, tasks
from lstm_cli.errors import BadInput

NAMES = ["remember", "adding", "temporal-order", "agreement", "copy"]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_types(name):
    task = tasks.get_task(name)
    x, y = task.generate(np.random.default_rng(0), 7, 12)
    assert x.shape == (7, task.length(12), task.input_size) and x.dtype == np.float64
    assert y.shape == (7, len(task.answer_steps))
    if task.loss == "cross_entropy":
        assert np.issubdtype(y.dtype, np.integer) and y.min() >= 0 and y.max() < task.output_size
        assert np.all(x.sum(axis=-1) == 1.0) and set(np.unique(x)) == {0.0, 1.0}  # one-hot
    else:
        assert task.output_size == 1 and y.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_same_generator_seed_same_batch(name):
    task = tasks.get_task(name)
    a = task.generate(np.random.default_rng(5), 16, 20)
    b = task.generate(np.random.default_rng(5), 16, 20)
    c = task.generate(np.random.default_rng(6), 16, 20)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name,first,last", [("remember", 1, -1), ("temporal-order", 1, -2),
                                             ("agreement", 1, -1)])
def test_distractors_inside_the_gap_are_random(name, first, last):
    """Inside the gap every distractor symbol occurs, and not as one constant filler per sequence."""
    task = tasks.get_task(name)
    gap = 40
    x, _ = task.generate(np.random.default_rng(1), 64, gap)
    ids = x.argmax(axis=-1)[:, first:x.shape[1] + last]  # (B, gap) symbol ids inside the gap
    assert ids.shape[1] == gap
    assert all(len(np.unique(row)) > 1 for row in ids)  # no sequence has a constant filler
    symbols_at_answer = set(x.argmax(axis=-1)[:, 0]) | set(x.argmax(axis=-1)[:, -1])
    assert not set(np.unique(ids)) & symbols_at_answer  # distractors are not symbols that carry the answer
    counts = np.bincount(ids.ravel())
    counts = counts[counts > 0]
    assert counts.min() > 0.5 * counts.mean()  # roughly uniform


def test_remember_answer_is_the_first_symbol():
    x, y = tasks.get_task("remember").generate(np.random.default_rng(2), 200, 30)
    np.testing.assert_array_equal(x[:, 0].argmax(axis=-1), y[:, 0])
    assert set(y[:, 0]) == set(range(tasks.N_SYMBOLS))
    assert np.all(x[:, -1].argmax(axis=-1) == tasks.N_SYMBOLS + tasks.N_DISTRACTORS)  # the query marker


def test_adding_target_is_the_sum_of_the_marked_values():
    gap = 30
    x, y = tasks.get_task("adding").generate(np.random.default_rng(3), 200, gap)
    values, markers = x[..., 0], x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :gap // 2].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=1e-15)
    assert np.all((values >= 0) & (values < 1)) and len(np.unique(values)) > 0.99 * values.size


def test_adding_baseline_predicting_one_has_mse_one_sixth():
    """y = U1 + U2 has mean 1 and variance 2/12: predicting 1.0 scores MSE 1/6, the chance level."""
    task = tasks.get_task("adding")
    _, y = task.generate(np.random.default_rng(4), 200_000, 20)
    mse = losses.metric("mse", np.ones((y.shape[0], 1, 1)), y)
    assert mse == pytest.approx(1 / 6, abs=0.003)
    assert task.chance == pytest.approx(1 / 6)
    assert not task.succeeded(mse) and task.succeeded(0.005)


def test_temporal_order_class_is_the_order_of_the_two_symbols():
    gap = 25
    x, y = tasks.get_task("temporal-order").generate(np.random.default_rng(5), 400, gap)
    ids = x.argmax(axis=-1)
    first, second = ids[:, 0], ids[:, gap + 1]
    assert set(first) | set(second) == {0, 1}
    np.testing.assert_array_equal(y[:, 0], 2 * first + second)
    assert set(y[:, 0]) == {0, 1, 2, 3}


def test_agreement_verb_agrees_with_the_subject():
    x, y = tasks.get_task("agreement").generate(np.random.default_rng(6), 100, 8)
    for row, label in zip(x, y[:, 0]):
        words = tasks.agreement_sentence(row).split()
        assert words[-1] == "___"
        subject_is_plural = words[1].endswith("s") or words[1] == "children"
        assert subject_is_plural == bool(label)
    assert set(y[:, 0]) == {0, 1}


@pytest.mark.parametrize("name", NAMES)
def test_answer_depends_on_the_information_not_the_gap(name):
    """Labels are balanced across classes (chance = 1/K) and the information steps determine them:
    a lookup from the information steps alone is always right."""
    task = tasks.get_task(name)
    x, y = task.generate(np.random.default_rng(7), 4000, 15)
    if task.metric == "accuracy":
        freq = np.bincount(y[:, 0], minlength=task.output_size) / y.shape[0]
        np.testing.assert_allclose(freq, task.chance, atol=0.03)
        assert task.chance == pytest.approx(1 / task.output_size)
    info = {"remember": [0], "adding": None, "temporal-order": [0, 16], "agreement": [0], "copy": [0]}[name]
    if info is not None:
        keys = [tuple(k) for k in x[:, info].argmax(axis=-1)]
        answers = {}
        for key, label in zip(keys, y[:, 0]):
            assert answers.setdefault(key, label) == label


def test_chance_levels_and_criteria():
    assert {n: t.chance for n, t in tasks.TASKS.items()} == pytest.approx(
        {"remember": 0.25, "adding": 1 / 6, "temporal-order": 0.25, "agreement": 0.5, "copy": 1 / 8})
    remember = tasks.get_task("remember")
    assert remember.criterion == "accuracy >= 0.99"
    assert remember.succeeded(0.99) and not remember.succeeded(0.98)
    assert tasks.get_task("adding").criterion == "mse < 0.01"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("gap", [0, -3, 2.5, True, "10", None])
def test_bad_gap_raises_bad_input(name, gap):
    task = tasks.get_task(name)
    if gap == 0 and task.min_gap == 0:
        pytest.fail("every task needs a gap of at least 1")
    with pytest.raises(BadInput, match="gap"):
        task.generate(np.random.default_rng(0), 4, gap)


def test_adding_needs_two_steps_and_numpy_integers_work():
    task = tasks.get_task("adding")
    with pytest.raises(BadInput, match=">= 2"):
        task.generate(np.random.default_rng(0), 4, 1)
    x, _ = task.generate(np.random.default_rng(0), 4, np.int64(2))
    assert x.shape == (4, 2, 2)


@pytest.mark.parametrize("batch", [0, -1, 2.5, True])
def test_bad_batch_raises_bad_input(batch):
    with pytest.raises(BadInput, match="batch"):
        tasks.get_task("remember").generate(np.random.default_rng(0), batch, 5)


def test_unknown_task_names_the_choices():
    with pytest.raises(BadInput, match="remember, adding, temporal-order, agreement, copy"):
        tasks.get_task("kopy")


def test_copy_layout_symbols_blanks_delimiter_and_the_answers():
    """10 symbols of 8, gap blanks, the delimiter, 10 blanks; the targets are the 10 symbols, answered
    at the last 10 steps, each gap + 11 steps after it was seen."""
    gap = 7
    task = tasks.get_task("copy")
    x, y = task.generate(np.random.default_rng(8), 500, gap)
    assert x.shape == (500, 10 + gap + 1 + 10, 10) and y.shape == (500, 10)
    ids = x.argmax(axis=-1)
    blank, delimiter = 8, 9
    np.testing.assert_array_equal(ids[:, :10], y)
    assert set(np.unique(y)) == set(range(8))
    assert np.all(ids[:, 10:10 + gap] == blank)
    assert np.all(ids[:, 10 + gap] == delimiter)
    assert np.all(ids[:, -10:] == blank)
    assert task.answer_steps == tuple(range(-10, 0))
    steps = np.arange(x.shape[1])
    answer_at = steps[list(task.answer_steps)]
    np.testing.assert_array_equal(answer_at - np.arange(10), gap + 11)


def test_copy_memoryless_baseline():
    """A model that remembers nothing predicts the same distribution at every answer step: the best one,
    uniform over the 8 symbols, costs log 8 per step, 10 log 8 per sequence, and 10 log 8 / (T + 20)
    averaged over Arjovsky et al.'s T + 20 steps (T = gap + 1); the best constant guess scores 1/8."""
    task = tasks.get_task("copy")
    gap = 30
    x, y = task.generate(np.random.default_rng(9), 20_000, gap)
    per_seq, _ = losses.cross_entropy(np.zeros((y.shape[0], 10, 8)), y)
    np.testing.assert_allclose(per_seq, 10 * np.log(8), rtol=1e-14)
    arjovsky_t = gap + 1
    assert x.shape[1] == arjovsky_t + 20
    best_constant = np.bincount(y.ravel()).argmax()
    guess = np.zeros((y.shape[0], 10, 8))
    guess[..., best_constant] = 1.0
    assert losses.metric("accuracy", guess, y) == pytest.approx(1 / 8, abs=0.01)
    assert task.chance == 1 / 8 and task.criterion == "accuracy >= 0.99"
    assert not task.succeeded(0.98) and task.succeeded(0.99)
