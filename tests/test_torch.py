"""Cross-check against PyTorch: the same parameters give the same outputs and gradients.

Skipped when torch is not installed (it is never a dependency). The parameter
dict loads into torch.nn.RNN / torch.nn.LSTM (batch_first=True) plus a
torch.nn.Linear head with load_state_dict, which also checks the names and
shapes of the layout. The per-step total dL/dh_t and dL/dc_t cannot be read
off nn.LSTM (the grad of its output tensor is only the head's share), so they
are compared with an unrolled nn.RNNCell / nn.LSTMCell loaded with the same
weights, whose per-step h_t and c_t keep their .grad.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_error

from lstm_cli import losses, models

torch = pytest.importorskip("torch")

TOL = 1e-10
B, T, D, H, K = 4, 12, 3, 7, 3


def assert_close(name, ours, theirs):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    err = relative_error(theirs, ours)
    assert err < TOL, f"{name}: max relative error {err:.3e} against torch"


def make_case(kind, activation, answer_steps, seed):
    rng = np.random.default_rng(seed)
    spec = models.ModelSpec(kind=kind, hidden=H, activation=activation) if kind == "rnn" else \
        models.ModelSpec(kind=kind, hidden=H)
    params = models.init_params(spec, D, K, rng)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, K, size=(B, len(answer_steps)))
    out, cache = models.forward(params, x, answer_steps=answer_steps, spec=spec)
    _, dout = losses.loss_and_grad("cross_entropy", out, y, reduction="mean")
    return params, x, y, out, models.backward(params, cache, dout)


def torch_loss(out, y):
    # mean over sequences of the per-sequence loss summed over answer steps (losses.py)
    return torch.nn.functional.cross_entropy(out.reshape(-1, K), torch.as_tensor(y).reshape(-1),
                                             reduction="sum") / out.shape[0]


CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh")]


@pytest.mark.parametrize("answer_steps", [(-1,), (3, -1)])
@pytest.mark.parametrize("kind,activation", CASES)
def test_outputs_and_parameter_gradients_match_torch(kind, activation, answer_steps):
    params, x, y, out, grads = make_case(kind, activation, answer_steps, seed=5)
    if kind == "lstm":
        core = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    else:
        core = torch.nn.RNN(D, H, nonlinearity=activation, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(H, K, dtype=torch.float64)
    core.load_state_dict({f"{name}_l0": torch.tensor(params[name])
                          for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    head.load_state_dict({"weight": torch.tensor(params["head.weight"]),
                          "bias": torch.tensor(params["head.bias"])})
    h_seq, _ = core(torch.tensor(x))  # (B, T, H)
    out_t = head(h_seq[:, list(answer_steps)])  # (B, S, K)
    torch_loss(out_t, y).backward()
    assert_close("outputs", out, out_t)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert_close(name, grads.params[name], getattr(core, f"{name}_l0").grad)
    assert_close("head.weight", grads.params["head.weight"], head.weight.grad)
    assert_close("head.bias", grads.params["head.bias"], head.bias.grad)


@pytest.mark.parametrize("answer_steps", [(-1,), (3, -1)])
@pytest.mark.parametrize("kind,activation", CASES)
def test_per_step_dh_and_dc_match_an_unrolled_torch_cell(kind, activation, answer_steps):
    params, x, y, out, grads = make_case(kind, activation, answer_steps, seed=6)
    if kind == "lstm":
        cell = torch.nn.LSTMCell(D, H, dtype=torch.float64)
    else:
        cell = torch.nn.RNNCell(D, H, nonlinearity=activation, dtype=torch.float64)
    cell.load_state_dict({name: torch.tensor(params[name])
                          for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    w, b = torch.tensor(params["head.weight"]), torch.tensor(params["head.bias"])
    x_t = torch.tensor(x)
    h = torch.zeros(B, H, dtype=torch.float64)
    c = torch.zeros(B, H, dtype=torch.float64)
    hs, cs = [], []
    for t in range(T):
        if kind == "lstm":
            h, c = cell(x_t[:, t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(x_t[:, t], h)
        h.retain_grad()
        hs.append(h)
    out_t = torch.stack([hs[s] @ w.T + b for s in answer_steps], dim=1)  # (B, S, K)
    torch_loss(out_t, y).backward()
    assert_close("outputs", out, out_t)
    for t in range(T):
        assert_close(f"dh[:, {t}]", grads.dh[:, t], hs[t].grad)
        if kind == "lstm":
            assert_close(f"dc[:, {t}]", grads.dc[:, t], cs[t].grad)
