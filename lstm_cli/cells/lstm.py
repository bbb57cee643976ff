"""The LSTM and its variants as a cell kind: what the rest of the tool asks of them.

The equations, the variants (``Variant``: peephole, coupled, no forget gate)
and the fused forward and backward are in ``cells/lstm_kernel.py``; their
plain reference in ``cells/lstm_reference.py``. Here: the parameters and their
init, the torch mapping (the default cell only), and the direct path along the
cell state (the article's conveyor belt) with its words.

The belt, exactly: dl/dc_t splits into what arrives along the cell state alone,

    belt_t = f_{t+1} * belt_{t+1} + o_t * tanh'(c_t) * (the head's gradient at h_t)

(what would reach c_t if h_{t-1} were detached before it feeds the gates of
step t), and the rest, dc_t - belt_t, through h and the gates.
"""

from __future__ import annotations

import math

import numpy as np

from lstm_cli.cells import lstm_reference
from lstm_cli.cells.base import ARTICLE, Cell, changed, default_of
from lstm_cli.cells.lstm_kernel import PYTORCH_GATES, LSTMCache, Variant, backward, forward
from lstm_cli.errors import BadInput


def belt_path(core: LSTMCache, dh_head: np.ndarray) -> np.ndarray:
    """(T, B, H) the LSTM's direct cell-state path (``probes``), time-major;
    dh_head (T, B, H) is the head's gradient at each h_t."""
    f = core.gate("f")  # (T, B, H)
    tanh_c = core.tanh_c.transpose(0, 2, 1)  # (T, B, H)
    local = core.gate("o") * (1.0 - tanh_c * tanh_c) * dh_head  # through h_t = o_t tanh(c_t) only
    belt = np.empty_like(local)
    belt[-1] = local[-1]
    for t in range(len(local) - 2, -1, -1):
        belt[t] = f[t + 1] * belt[t + 1] + local[t]  # c_{t+1} = f_{t+1} c_t + ...: the belt
    return belt


# ---- the cell ----

VARIANT_FLAGS = ("peephole", "coupled", "forget_gate")  # the LSTM variants' settings


def variant_of(spec) -> Variant:
    """Which LSTM ``spec`` asks for."""
    return Variant(peephole=spec.peephole, coupled=spec.coupled, forget_gate=spec.forget_gate)


class LSTMCell(Cell):
    """The LSTM and its variants: a cell state c whose direct path (the belt) is the product of f."""

    name = "lstm"
    label = "LSTM"
    settings = Cell.settings + ("forget_bias", "chrono") + VARIANT_FLAGS
    examples = ("lstm:peephole=true", "lstm:coupled=true", "lstm:forget_gate=false",
                "lstm:peephole=true,coupled=true", "lstm:chrono=20")
    gate_names = PYTORCH_GATES
    has_cell_state = True
    direct_gate = "f"
    carrier_words = "the cell state's ||dL/dc|| for an LSTM"
    belt_legend = (f"belt, gates: dL/dc split into the direct path along the cell state (the conveyor belt of "
                   f"the article, {ARTICLE}: what arrives with h detached before it feeds the gates) "
                   f"and the rest, through h and the gates; each relative to ||dL/dc|| at the loss step.")

    # memory (cells/base.py): fitted to tracemalloc peaks of its probe
    memory_fixed, weight_copies, words_per_unit, words_per_input, words_per_sequence = 14500.0, 1.07, 19.5, 3.0, 22.0
    forward_words_per_unit = 7.3  # measured: a forward pass alone (tracemalloc)

    def gates(self, spec) -> str:
        return variant_of(spec).gates

    def check(self, spec) -> None:
        variant_of(spec).check()
        if not spec.forget_gate and spec.forget_bias != default_of(spec, "forget_bias"):
            raise BadInput(f"model.forget_bias: a cell without a forget gate has no forget bias "
                           f"(got {spec.forget_bias:g})")

    def describe(self, spec) -> dict:
        d = {}
        if spec.chrono is not None:
            d["chrono"] = spec.chrono
        elif spec.forget_gate:
            d["forget_bias"] = spec.forget_bias
        d.update((name, getattr(spec, name)) for name in VARIANT_FLAGS
                 if getattr(spec, name) != default_of(spec, name))
        return d

    def param_shapes(self, spec, input_size):
        shapes = super().param_shapes(spec, input_size)
        if spec.peephole:
            shapes["weight_ch"] = (len(variant_of(spec).peephole_gates) * spec.hidden,)
        return shapes

    def init_params(self, spec, input_size, output_size, rng):
        """The shared init, then the forget bias (or chrono) and the peephole weights, drawn
        after every other parameter so that a seed gives the peephole LSTM the plain LSTM's weights."""
        params = super().init_params(spec, input_size, output_size, rng)
        H = spec.hidden
        rows = {gate: slice(k * H, (k + 1) * H) for k, gate in enumerate(self.gates(spec))}
        forget, inputs = rows.get("f"), rows.get("i")
        b_f = spec.forget_bias
        if spec.chrono is not None:
            b_f = np.log(rng.uniform(1.0, spec.chrono - 1.0, size=H))
            if inputs is not None:
                params["bias_ih"][inputs] = -b_f
                params["bias_hh"][inputs] = 0.0
        if forget is not None:
            params["bias_ih"][forget] = b_f
            params["bias_hh"][forget] = 0.0
        if spec.peephole:
            bound = 1.0 / math.sqrt(H)
            params["weight_ch"] = rng.uniform(-bound, bound, size=len(variant_of(spec).peephole_gates) * H)
        return params

    def forward(self, params, x, spec):
        return forward(params, x, variant=variant_of(spec))

    def backward(self, params, cache, dh_out):
        return backward(params, cache, dh_out)

    def reference(self, params, x, dh_out, spec) -> dict:
        """The default cell's forward and backward; a variant's forward only (its backward is
        checked against centred differences, tests/test_cells.py)."""
        variant = variant_of(spec)
        if variant == Variant():
            h, c, states = lstm_reference.reference_forward(params, x)
            grads, dh, dc = lstm_reference.reference_backward(params, x, states, dh_out)
            return {"h": h, "c": c, "grads": grads, "dh": dh, "dc": dc}
        B, H = x.shape[0], spec.hidden
        h, c, hs, cs = np.zeros((B, H)), np.zeros((B, H)), [], []
        for t in range(x.shape[1]):
            h, c, _ = lstm_reference.reference_step(params, variant, x[:, t], h, c)
            hs.append(h)
            cs.append(c)
        return {"h": np.stack(hs, axis=1), "c": np.stack(cs, axis=1)}

    def torch_module(self, spec, input_size):
        if variant_of(spec) != Variant():
            return None  # PyTorch has no peephole, coupled or forget-gate-free LSTM
        import torch

        return torch.nn.LSTM(input_size, spec.hidden, batch_first=True, dtype=torch.float64)

    def probe(self, profile, params, cache, grads, dh_head, first_answer, tools) -> None:
        """dL/dc, the forget gates and the belt: the direct path along c, and the rest."""
        profile.dc = tools.NormStats.of(tools.safe_norm(grads.dc))
        profile.forget, profile.forget_product = tools.belt_gate(cache.gate("f"))
        belt = belt_path(cache, dh_head)  # (T, B, H)
        tools.belt_split(profile, belt, grads.dc.transpose(1, 0, 2), profile.dc.mean[0])

    def belt_words(self, model: dict) -> tuple[str, str | None]:
        # the 1997 cell (c_t = c_{t-1} + i g) has no gate on its direct path: exactly 1 per step
        return ("f", "forget gate") if model.get("forget_gate", True) else ("1 (no forget gate)", None)

    def init_words(self, profile) -> tuple[list[str], list[str]]:
        m = profile.model
        if "chrono" in m:
            first = f"chrono init T_max {m['chrono']:g}"
        elif "forget_bias" not in m:
            first = "no forget gate (f = 1)"
        else:
            bias = m["forget_bias"]  # the sigmoid written so that exp never overflows (bias <= -710)
            gate = 1.0 / (1.0 + math.exp(-bias)) if bias >= 0 else math.exp(bias) / (1.0 + math.exp(bias))
            first = f"forget bias {m['forget_bias']:g} (sigmoid = {gate:.2f})"
        if profile.forget is not None and ("forget_bias" in m or "chrono" in m):  # not the 1997 cell: f = 1
            values = [float(v) for v in profile.forget]
            return [first], [f"mean forget gate {sum(values) / len(values):.2f}"]
        return [first], []

    def belt_path_words(self, factor: str, gate: str | None) -> str:
        return ("the constant error carousel (no forget gate: the cell state alone, times exactly 1 per step)"
                if gate is None else f"the conveyor belt (the product of {factor}, the cell state alone)")

    def belt_advice(self, profile) -> str:
        """A larger forget bias (or chrono T_max) than the model has: sigmoid(bias) is the gate's
        value where its other inputs are zero, so raising it raises mean f and lengthens the direct
        path. Proposed as a --model text that keeps every other setting."""
        m = profile.model
        if "chrono" in m:  # b_f ~ log U(1, T_max - 1): a larger T_max draws larger biases
            proposal = {"chrono": float(max(2 * m["chrono"], profile.gap))}
        elif "forget_bias" in m:  # sigmoid(3) = 0.95; past it, two more
            proposal = {"forget_bias": float(max(3.0, math.floor(m["forget_bias"]) + 2.0))}
        else:
            return ""
        return (f" With {changed(m, **proposal)[0]} (--model {profile.model_text(**proposal)}), mean f rises and "
                f"the direct path lengthens.")

    memory_value = "c"
    inspect_clauses = "lstm"

    def inner_values(self, params: dict[str, np.ndarray], core: LSTMCache) -> dict[str, np.ndarray]:
        """The gates it has (no "f" without a forget gate; a coupled cell's "i" is 1 - f) and c_t."""
        values = {gate: core.gate(gate) for gate in "ifo" if gate != "f" or core.variant.forget_gate}
        values["c"] = core.cells[1:]
        return values


CELL = LSTMCell()
