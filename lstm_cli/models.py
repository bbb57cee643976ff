"""Models: a recurrent core (any cell of ``cells``) plus a linear head, as plain functions.

    out = h_s W_head^T + b_head       at each answer step s (the task's last step)

Shapes, batch-major in this public API: x (B, T, D), h (B, T, H),
out (B, S, K) for S answer steps and K outputs.

Parameters are a flat ``dict[str, np.ndarray]`` with PyTorch's names and shapes
(G = 1 for the RNN, 4 for the LSTM with gate order i, f, g, o, 3 for the GRU
with r, z, n)::

    weight_ih (G*H, D)   weight_hh (G*H, H)   bias_ih (G*H,)   bias_hh (G*H,)
    head.weight (K, H)   head.bias (K,)

so ``torch.nn.RNN`` / ``torch.nn.LSTM`` / ``torch.nn.GRU`` (batch_first=True)
plus a ``torch.nn.Linear`` loaded with them compute the same numbers. The
LSTM's variants (``peephole``, ``coupled``, ``forget_gate=False``; lstm.py)
have rows only for their own gates (G = 3 without i or f) and a peephole LSTM
also ``weight_ch``; PyTorch has no such cells. ``forward`` takes the
``ModelSpec``, whose cell (``spec.cell``, looked up in ``cells``) runs the core.

Initialisers (``ModelSpec``; each is recorded with every run):

- ``init="uniform"``: PyTorch's default, every weight and bias
  U(-1/sqrt(H), 1/sqrt(H)); the head like ``torch.nn.Linear``.
- ``init="auto"`` (default): "uniform" when ``recurrent_scale`` is 1, else
  "orthogonal", so that a recurrent scale s means spectral radius s (with
  PyTorch's uniform init, 3x its W_hh has radius ~1.7, not 3, and the tanh
  RNN saturates instead of exploding). The resolved name is what is recorded.
- ``init="orthogonal"``: each H x H block of weight_hh a random orthogonal
  matrix (Saxe et al. 2014), so with ``recurrent_scale`` s its singular values
  are all exactly s.
- ``init="identity"``: each block of weight_hh the identity and recurrent
  biases zero: the IRNN of Le et al. (2015), meant for ``activation="relu"``.
- ``recurrent_scale`` multiplies weight_hh after the init above.
- LSTM ``forget_bias`` (default 3.0): bias_ih of the forget gate is set to it
  and bias_hh's to 0. Why 3: along the cell state alone (the direct path) the
  gradient through k steps is multiplied by the forget gates, sigmoid(3)^k ~
  0.953^k, ~9% after 50 steps; PyTorch's default (bias ~0, gates ~0.5) leaves
  0.5^50 ~ 1e-15, and Jozefowicz et al. (2015)'s bias 1 gives 0.73^50 ~ 1e-7.
  The whole dL/dc, which also comes back through h and the gates, is larger
  (measured at gap 50, seeds 0-4: ~1 with bias 3, 1e-4 with bias 1, 1e-10 with
  bias 0; see ``probes``). With bias 3 the LSTM learned the gap-50 remember
  task in 5 of 5 seeds (0-4, median 100 Adam steps; the remember-gap
  scenario); ``forget_bias=0`` shows the closed-gate LSTM vanishing.
- LSTM ``chrono`` T_max (Tallec & Ollivier 2018): forget bias log(U(1, T_max - 1))
  per unit and input bias its negative; overrides ``forget_bias``. Without a
  forget gate only the (negative) input bias is set; a coupled cell has no
  input bias of its own.
- LSTM ``peephole``: ``weight_ch`` U(-1/sqrt(H), 1/sqrt(H)), drawn after every
  other parameter, so a seed gives the peephole LSTM the plain LSTM's weights.
- The GRU: PyTorch's init, every weight and bias uniform as above.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np

from lstm_cli import cells, config
from lstm_cli.errors import BadInput
from lstm_cli.printed import exact

DEFAULT_FORGET_BIAS = config.default("model.forget_bias")


class _Spec:
    """The behaviour of ``ModelSpec``, whose fields are made from the table below."""

    def __post_init__(self) -> None:
        config.check("model.kind", self.kind)
        cell = self.cell
        for name, field in config.MODEL_FIELDS.items():
            value = getattr(self, name)
            if name not in cell.settings and value != field.default:
                raise BadInput(config.not_for_kind(field, self.kind))
            object.__setattr__(self, name, config.check(field.key, value))
        cell.check(self)
        if self.init == "auto":
            object.__setattr__(self, "init", cell.resolve_init(self))

    @property
    def cell(self):
        """The kind's ``cells.base.Cell``: everything the tool asks about the kind."""
        return cells.get(self.kind)

    def describe(self) -> dict:
        """The settings that matter for this kind of model (for tables and records)."""
        d = {"kind": self.kind, "hidden": self.hidden, "init": self.init,
             "recurrent_scale": self.recurrent_scale, "dtype": self.dtype}
        d.update(self.cell.describe(self))
        # a setting added to the table shows up here when it applies and differs from its default
        d.update((name, getattr(self, name)) for name, field in config.MODEL_FIELDS.items()
                 if name not in d and name in self.cell.settings and name not in _DESCRIBED_BY_CELL
                 and getattr(self, name) != field.default)
        return d

    @property
    def gates(self) -> str:
        """The gate blocks of the recurrent parameters, in the order of their rows."""
        return self.cell.gates(self)

    def label(self) -> str:
        """A short name: the kind plus every setting that differs from the defaults."""
        default = ModelSpec(kind=self.kind, recurrent_scale=self.recurrent_scale)
        parts = [f"{key}={exact(value)}" if isinstance(value, float) else
                 f"{key}={str(value).lower()}" if isinstance(value, bool) else f"{key}={value}"
                 for key, value in self.describe().items()
                 if key != "kind" and (key == "recurrent_scale" or value != getattr(default, key))
                 and not (key == "recurrent_scale" and value == 1)]
        return self.kind + (":" + ",".join(parts) if parts else "")


_ALWAYS_SAID = ("hidden", "recurrent_scale")


def model_text(model: dict, **changes) -> str:
    """A ``--model`` text for ``model`` (a ``ModelSpec.describe()``) with ``changes`` made: every
    changed setting, and every other setting that differs from its default (as in ``label``), so
    the text builds this model but for the changes whatever options it is given beside (the
    text's keys win over ``--hidden``, ``--recurrent-scale``, ...). The hidden size and recurrent
    scale are always said: a task has its own hidden size, and the default pair keeps the LSTM at
    scale 1 whatever ``--recurrent-scale`` says, so the options alone may not rebuild them."""
    settings = {key: value for key, value in model.items() if key != "kind"}
    settings.update(changes)
    spec = ModelSpec(kind=model["kind"], **settings)
    default = ModelSpec(kind=spec.kind, recurrent_scale=spec.recurrent_scale)
    parts = [f"{key}={exact(value)}" if isinstance(value, float) else
             f"{key}={str(value).lower()}" if isinstance(value, bool) else f"{key}={value}"
             for key, value in spec.describe().items()
             if key != "kind" and (key in changes or key in _ALWAYS_SAID or value != getattr(default, key))]
    return spec.kind + (":" + ",".join(parts) if parts else "")


def unique_labels(labels: Sequence[str]) -> list[str]:
    """``labels`` with each repeat marked by its rank among equals (``rnn:recurrent_scale=3 (2)``):
    two models in one output never share a label, even when they are the same model (``rnn`` and
    ``rnn:init=orthogonal`` at a recurrent scale other than 1, where init auto-resolves to orthogonal)."""
    taken = set(labels)
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        name, rank = label, seen[label]
        while rank > 1 and (name := f"{label} ({rank})") in taken:
            rank += 1
        if rank > 1:
            seen[label] = rank
            taken.add(name)
        out.append(name)
    return out


# Everything needed to build a model, besides the task's input and output sizes: one field
# per ``model.*`` row of ``config.FIELDS`` (its default there; its bounds checked by
# ``__post_init__``), so a new model setting is one row in that table.
ModelSpec = dataclasses.make_dataclass(
    "ModelSpec",
    [("kind", str, dataclasses.field(default=config.default("model.kind"))),
     *((name, field.type, dataclasses.field(default=field.default)) for name, field in config.MODEL_FIELDS.items())],
    bases=(_Spec,), frozen=True)
ModelSpec.__module__ = __name__
ModelSpec.__doc__ = "Everything needed to build a model (the ``model.*`` rows of ``config.FIELDS``)."
# settings a cell shows by its own rules (the LSTM shows chrono instead of forget_bias)
_DESCRIBED_BY_CELL = {"chrono", "forget_bias"}


def parse_model(text: str, **defaults) -> ModelSpec:
    """Parse ``kind[:key=value,...]``, e.g. ``lstm:forget_bias=0`` or ``rnn:init=orthogonal,recurrent_scale=3``.

    ``defaults`` (from command-line options) apply first; the keys in ``text`` win.
    """
    kind, settings = config.parse_model_text(text, defaults)
    return ModelSpec(kind=kind, **settings)


def init_params(spec: ModelSpec, input_size: int, output_size: int,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh parameters for ``spec`` (see the module docstring for the initialisers)."""
    params = spec.cell.init_params(spec, input_size, output_size, rng)
    return {k: v.astype(spec.dtype) for k, v in params.items()}


def param_shapes(spec: ModelSpec, input_size: int, output_size: int) -> dict[str, tuple[int, ...]]:
    """The name and shape of every parameter of ``spec`` (what init_params returns)."""
    return {**spec.cell.param_shapes(spec, input_size),
            "head.weight": (output_size, spec.hidden), "head.bias": (output_size,)}


class Cache(NamedTuple):
    cell: object  # the cells.base.Cell that made ``core``
    core: object  # the cell's own cache (cells/rnn.py's RNNCache, ...)
    h: np.ndarray  # (T, B, H) hidden states, time-major (a view into the core's cache)
    answer_steps: tuple[int, ...]


class Grads(NamedTuple):
    params: dict[str, np.ndarray]  # dL/d(every parameter), same keys as the parameters
    dh: np.ndarray  # (B, T, H) total dL/dh_t
    dc: np.ndarray | None  # (B, T, H) total dL/dc_t (a cell with a cell state, the LSTM), else None
    dpre: np.ndarray  # (B, T, G*H) dL/d(pre-activations): step t's share of dL/dW is dpre_t^T h_{t-1}


def forward(params: dict[str, np.ndarray], x: np.ndarray, answer_steps: tuple[int, ...] = (-1,), *,
            spec: ModelSpec) -> tuple[np.ndarray, Cache]:
    """Outputs (B, S, K) of the head at the answer steps, and the cache for ``backward``."""
    dtype = params["weight_hh"].dtype
    x_tm = np.asarray(x, dtype=dtype).transpose(1, 0, 2)  # (T, B, D), a view
    cell = spec.cell
    h, core = cell.forward(params, x_tm, spec)
    h_ans = h[list(answer_steps)].transpose(1, 0, 2)  # (B, S, H)
    out = h_ans @ params["head.weight"].T + params["head.bias"]  # (B, S, K)
    return out, Cache(cell=cell, core=core, h=h, answer_steps=tuple(answer_steps))


def inner_values(params: dict[str, np.ndarray], cache: Cache) -> dict[str, np.ndarray]:
    """What the core computed at every step, by name, each (B, T, H) batch-major, from ``forward``'s cache:

    - LSTM: "i", "f", "o" (the gates it has: no "f" without a forget gate; a coupled cell's
      "i" is 1 - f), "c" the cell state c_t, "h" the output h_t = o_t tanh(c_t);
    - GRU: "z" (update), "r" (reset), "h";
    - RNN: "pre" the pre-activation a_t = x_t W_ih^T + b + h_{t-1} W_hh^T, "slope" act'(a_t)
      (1 - h_t^2 for tanh, [a_t > 0] for relu), "h"; the IndRNN likewise, with u * h_{t-1}.
    """
    values = cache.cell.inner_values(params, cache.core)
    values["h"] = cache.h
    return {name: np.ascontiguousarray(value.transpose(1, 0, 2)) for name, value in values.items()}


def head_gradient(params: dict[str, np.ndarray], cache: Cache, dout: np.ndarray) -> np.ndarray:
    """(T, B, H) time-major: the gradient the head sends into each h_t (zero off the answer steps),
    in the core's memory layout."""
    dout_tm = np.asarray(dout, dtype=params["weight_hh"].dtype).transpose(1, 0, 2)  # (S, B, K)
    dh_out = np.zeros_like(cache.h)  # (T, B, H)
    np.add.at(dh_out, list(cache.answer_steps), dout_tm @ params["head.weight"])
    return dh_out


def backward(params: dict[str, np.ndarray], cache: Cache, dout: np.ndarray) -> Grads:
    """Gradients of every parameter and the per-step dL/dh_t (and dL/dc_t) from dL/d(out) (B, S, K)."""
    dout = np.asarray(dout, dtype=params["weight_hh"].dtype)
    h_ans = cache.h[list(cache.answer_steps)]  # (S, B, H)
    dout_tm = dout.transpose(1, 0, 2)  # (S, B, K)
    dh_out = head_gradient(params, cache, dout)
    K = dout.shape[-1]
    core = cache.cell.backward(params, cache.core, dh_out)
    dc = core.dc.transpose(1, 0, 2) if cache.cell.has_cell_state else None
    grads = dict(core.params)
    grads["head.weight"] = dout_tm.reshape(-1, K).T @ h_ans.reshape(-1, h_ans.shape[-1])
    grads["head.bias"] = dout_tm.reshape(-1, K).sum(axis=0)
    return Grads(params=grads, dh=core.dh.transpose(1, 0, 2), dc=dc, dpre=core.dpre.transpose(1, 0, 2))

