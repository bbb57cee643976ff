"""What every cell kind carries: the ``Cell`` base that each module of this package subclasses.

A cell works on *time-major* arrays: x (T, B, D) in, h (T, B, H) out. Its
parameters are the recurrent part of the model's flat dict (``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh`` and the kind's own); the head
(``head.weight`` (K, H), ``head.bias`` (K,)) is the model's, around any cell.

The defaults below are those of a cell with G gate blocks of PyTorch's
layout (G*H rows per parameter, every weight and bias drawn U(-1/sqrt(H),
1/sqrt(H))); a kind overrides what differs. A ``spec`` is a
``models.ModelSpec`` (read by attribute; this package sits below ``models``).
"""

from __future__ import annotations

import math

import numpy as np

from lstm_cli.printed import exact

ARTICLE = 'C. Olah, "Understanding LSTM Networks", 2015'
SHARED_SETTINGS = ("hidden", "init", "recurrent_scale", "dtype")  # the model settings every kind takes


def orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random orthogonal n x n matrix (Haar-distributed: the sign fix below makes it so)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class Cell:
    """One kind of recurrent cell. Subclasses set the attributes and override what differs."""

    name = ""  # the kind, as written in ``--model`` and scenario files
    label = ""  # the cell in words, the way an explanation names it ("the vanilla RNN")
    settings: tuple[str, ...] = SHARED_SETTINGS  # the model.* settings it takes
    examples: tuple[str, ...] = ()  # model texts the test battery runs besides the bare name (its variants)
    gate_names = "h"  # one letter per block of G*H rows of its parameters
    has_cell_state = False  # True: carries a second state c besides h (the LSTM); dL/dc is reported
    direct_gate: str | None = None  # the gate whose product is its direct path (the LSTM's f, the GRU's z)
    # the split of each step back into two causes (``probes``): their names in tables and sentences
    # (None: the kind reports its direct path instead)
    split_names: tuple[str, str] | None = None
    # the words of the gradient table's legend (render/gradients.py) and of the explanation (explain.py)
    carrier_words = ""  # the norm that judges it, e.g. "||dL/dh|| for an RNN"
    split_legend = ""  # how the recurrent share of the split is computed
    bound_legend = ""  # what the "bound" column is
    belt_legend = ""  # what the "belt" and "gates" columns are
    belt_state = "the cell state"  # whose gradient the direct path carries
    belt_rest = "the paths through h and the gates"  # everything else

    # ---- parameters ----

    def gates(self, spec) -> str:
        """The gate blocks of the recurrent parameters, in the order of their rows."""
        return self.gate_names

    def describe(self, spec) -> dict:
        """The kind's own settings as records and tables show them (after the shared ones)."""
        return {}

    def check(self, spec) -> None:
        """BadInput for settings that cannot go together in this kind."""

    def resolve_init(self, spec) -> str:
        """The init that "auto" means: "uniform" when recurrent_scale is 1, else "orthogonal"
        (a recurrent scale is only a spectral radius for an orthogonal matrix)."""
        return "uniform" if spec.recurrent_scale == 1 else "orthogonal"

    def param_shapes(self, spec, input_size: int) -> dict[str, tuple[int, ...]]:
        """The name and shape of every recurrent parameter."""
        H, G = spec.hidden, len(self.gates(spec))
        return {"weight_ih": (G * H, input_size), "weight_hh": (G * H, H), "bias_ih": (G * H,),
                "bias_hh": (G * H,)}

    def init_params(self, spec, input_size: int, output_size: int,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Fresh float64 parameters, the head included (``models`` casts them to spec.dtype).

        Drawn in PyTorch's parameter order, so a seed always gives the same numbers:
        every weight and bias U(-1/sqrt(H), 1/sqrt(H)), then weight_hh replaced by
        ``spec.init`` and multiplied by ``spec.recurrent_scale``.
        """
        H, D, K = spec.hidden, input_size, output_size
        G = len(self.gates(spec))
        bound = 1.0 / math.sqrt(H)
        params = {
            "weight_ih": rng.uniform(-bound, bound, size=(G * H, D)),
            "weight_hh": rng.uniform(-bound, bound, size=(G * H, H)),
            "bias_ih": rng.uniform(-bound, bound, size=G * H),
            "bias_hh": rng.uniform(-bound, bound, size=G * H),
            "head.weight": rng.uniform(-bound, bound, size=(K, H)),
            "head.bias": rng.uniform(-bound, bound, size=K),
        }
        if spec.init == "orthogonal":
            params["weight_hh"] = np.concatenate([orthogonal(rng, H) for _ in range(G)])
        elif spec.init == "identity":
            params["weight_hh"] = np.concatenate([np.eye(H)] * G)
            params["bias_ih"][:] = 0.0
            params["bias_hh"][:] = 0.0
        params["weight_hh"] *= spec.recurrent_scale
        return params

    # ---- the kernels (time-major) ----

    def forward(self, params: dict[str, np.ndarray], x: np.ndarray, spec):
        """h (T, B, H) and the cache of the fast kernel."""
        raise NotImplementedError

    def backward(self, params: dict[str, np.ndarray], cache, dh_out: np.ndarray):
        """The fast backward: a NamedTuple with ``params`` (gradients keyed like the recurrent
        parameters), ``dh`` (T, B, H) total dL/dh_t, ``dpre`` (T, B, G*H) the gradient at the
        recurrent pre-activations, and ``dc`` (T, B, H) for a kind with a cell state."""
        raise NotImplementedError

    def reference(self, params: dict[str, np.ndarray], x: np.ndarray, dh_out: np.ndarray, spec) -> dict:
        """The plain reference, batch-major: x (B, T, D), dh_out (B, T, H) the gradient arriving at
        each h_t from outside -> {"h", "grads", "dh"} (and "dc" with a cell state), all batch-major."""
        raise NotImplementedError

    def step_weight_grad(self, dpre: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
        """(T, ...) step t's share of dL/dW_hh summed over the batch, dpre (T, B, G*H), h_prev (T, B, H):
        dpre_t^T h_{t-1}, a (G*H, H) matrix per step."""
        return dpre.transpose(0, 2, 1) @ h_prev

    # ---- memory ----
    # Bytes (float64) of a probe of T steps, B sequences of D inputs, H units, G gate blocks:
    #     fixed + 8 T (weight_copies 3 G H^2 + words_per_unit B H + words_per_input B D + words_per_sequence B)
    # the 3 G H^2 being the probe's per-step share of dL/dW_hh, (G*H, H) a step, and the temporaries of
    # its norm. Each kind's coefficients are fitted to tracemalloc peaks of ``probes.probe_at_init`` over
    # the five tasks and H 1-512, B 4-256, T 5-202, then raised so that the estimate is never below the
    # peak: it is 1.0-1.45x the peak there (tests/test_cells.py checks each registered cell).
    memory_fixed = 16384.0
    forward_words_per_unit = 8.0  # per sequence, step and unit: what a forward pass alone keeps (evaluation)
    weight_copies = 1.2
    words_per_unit = 8.0  # per sequence, step and hidden unit: the caches of the forward and backward
    words_per_input = 3.0
    words_per_sequence = 24.0

    def gate_count(self) -> int:
        """The most gate blocks a cell of this kind has (the memory estimate's bound)."""
        return len(self.gate_names)

    def step_bytes(self, hidden: int, batch: int, input_size: int) -> float:
        """Bytes per sequence step of a forward and backward pass over ``batch`` sequences."""
        return 8.0 * (self.words_per_unit * batch * hidden + self.words_per_input * batch * input_size
                      + self.words_per_sequence * batch)

    def weight_grad_bytes(self, hidden: int) -> float:
        """Bytes per step of the probe's per-step share of dL/dW_hh and its norm's temporaries."""
        return 8.0 * self.weight_copies * 3 * self.gate_count() * hidden * hidden

    def probe_bytes(self, hidden: int, batch: int, length: int, input_size: int) -> float:
        """Bytes of a gradient probe (the model above)."""
        return self.memory_fixed + length * (self.weight_grad_bytes(hidden) + self.step_bytes(hidden, batch, input_size))

    def train_bytes(self, hidden: int, length: int, input_size: int, batch: int, eval_size: int,
                    probe_size: int) -> float:
        """Bytes of a training run: the largest of a training step, the held-out evaluation (a forward
        pass over eval_size sequences, their data kept for the run, while the last step's forward
        cache is still alive) and the probe, times 1.15 for what lives beside them; fitted to
        tracemalloc peaks of ``runs.run_training`` (1.0-1.4x over four kinds and tasks)."""
        step = self.memory_fixed + length * self.step_bytes(hidden, batch, input_size)
        heldout = self.memory_fixed + 8.0 * length * (self.forward_words_per_unit * hidden * (eval_size + batch)
                                                      + 2.0 * eval_size * input_size)
        probe = self.probe_bytes(hidden, probe_size, length, input_size)
        return 1.15 * max(step, heldout, probe)

    # ---- torch ----

    def torch_module(self, spec, input_size: int):
        """A ``torch.nn`` module (batch_first, float64) that computes the same numbers once loaded
        with ``torch_state``; None when PyTorch has no such cell."""
        return None

    def torch_state(self, params: dict[str, np.ndarray]) -> dict:
        """The recurrent parameters under the names of ``torch_module``'s state dict."""
        return {f"{name}_l0": params[name] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    # ---- the probe: the kind's own quantities, its split and its direct path ----

    def probe(self, profile, params: dict[str, np.ndarray], cache, grads, dh_head: np.ndarray,
              first_answer: int, tools) -> None:
        """Fill the kind's own fields of ``profile`` (a ``probes.GradientProfile``); ``tools`` is the
        ``probes`` module (its norms and splits), passed down because this package sits below it."""

    def belt_path_words(self, factor: str, gate: str | None) -> str:
        """The direct path in words, e.g. "the conveyor belt (the product of f, the cell state alone)"."""
        return f"the product of {factor}"

    def belt_advice(self, profile) -> str:
        """What opens a closed direct path, for a fresh model ("" if nothing to say)."""
        return ""

    def belt_words(self, model: dict) -> tuple[str, str | None]:
        """(the direct path's factor, the gate that factor is; None when the factor is exactly 1)."""
        return (self.direct_gate or "", None)

    def init_words(self, profile) -> tuple[list[str], list[str]]:
        """The words for the kind's own init numbers: those before W_hh's init and scale, and
        those after them (H comes last)."""
        return [], []

    def explain_cause(self, profile, cause: str, lost: bool, trained: bool) -> str:
        """The sentence that says what the main cause of the split (a key of split_names) is."""
        raise NotImplementedError

    def split_about(self, profile) -> dict[str, str]:
        """The number behind each cause, e.g. {"activation": "mean tanh' 0.52", ...}."""
        raise NotImplementedError

    # ---- what ``lstm-demo inspect`` shows of a trained cell ----
    memory_value = "h"  # the inner value that carries information from step to step
    inspect_clauses = "plain"  # which sentences describe a unit: "plain" (act'), "gru" (z), "lstm" (i, f, o)

    def inner_values(self, params: dict[str, np.ndarray], core) -> dict[str, np.ndarray]:
        """What the core computed at every step besides h, by name, each (T, B, H) time-major."""
        raise NotImplementedError


def activation_values(pre: np.ndarray, h: np.ndarray, activation: str) -> dict[str, np.ndarray]:
    """A plain cell's pre-activation a_t and act'(a_t) (1 - h_t^2 for tanh, [a_t > 0] for relu)."""
    slope = 1.0 - h ** 2 if activation == "tanh" else (pre > 0).astype(pre.dtype)
    return {"pre": pre, "slope": slope}


def default_of(spec, name: str):
    """The default of model setting ``name`` (the ModelSpec dataclass's field default)."""
    return type(spec).__dataclass_fields__[name].default


def changed(model: dict, **changes) -> list[str]:
    """The ``key=value`` of each of ``changes`` that differs from ``model`` (what advice changes)."""
    return [f"{key}={exact(value)}" if isinstance(value, float) else f"{key}={value}"
            for key, value in changes.items() if value is not None and model.get(key) != value]
