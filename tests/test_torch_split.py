"""The probe's split of the gradient, recomputed with torch autograd (skipped without torch).

RNN: autograd gives dL/dh_t and u_t = dL/da_t (a_t the pre-activation) of an unrolled
RNN; the activation's share ||u_t|| / ||dh_t|| and the recurrent matrix's share
||dh_{t-1}|| / ||u_t||, summed in log10 and averaged over the batch, must equal the
probe's ``decades_activation`` and ``decades_recurrent``.

LSTM: the direct path of the cell state is what autograd gives for dL/dc_t when
h_{t-1} is detached before it feeds the gates of step t (only the cell state
carries gradient back); the rest is the full model's dL/dc_t minus it.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import models, probes, tasks

torch = pytest.importorskip("torch")

TOL = 1e-9
ADDING = tasks.get_task("adding")  # D = 2, T = gap
B, H = 2, 5


def case(text, gap, seed):
    spec = models.parse_model(text, hidden=H)
    params = models.init_params(spec, ADDING.input_size, ADDING.output_size, np.random.default_rng(seed))
    x, y = ADDING.generate(np.random.default_rng(seed + 1), B, gap)
    profile = probes.probe(spec, params, ADDING, x, y, gap)
    weights = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    return profile, weights, torch.tensor(x), torch.tensor(y)


def head_loss(weights, h_last, y):
    out = h_last @ weights["head.weight"].T + weights["head.bias"]  # (B, 1)
    return ((out - y) ** 2).sum()  # the sequences' summed squared error: the probe's reduction="sum"


def log10_norm(v):
    return torch.log10(torch.linalg.vector_norm(v, dim=-1))  # (B,)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("gap", [4, 12])
def test_rnn_split_by_autograd(activation, gap):
    profile, w, x, y = case(f"rnn:activation={activation}", gap, seed=gap)
    act = torch.tanh if activation == "tanh" else torch.relu
    h, pres, hs = torch.zeros(B, H, dtype=torch.float64), [], []
    for t in range(gap):
        a = x[:, t] @ w["weight_ih"].T + w["bias_ih"] + w["bias_hh"] + h @ w["weight_hh"].T
        a.retain_grad()
        h = act(a)
        h.retain_grad()
        pres.append(a)
        hs.append(h)
    head_loss(w, h, y).backward()
    activation_share = torch.zeros(B, dtype=torch.float64)
    recurrent_share = torch.zeros(B, dtype=torch.float64)
    expected_a, expected_w = [0.0], [0.0]
    for t in range(gap - 1, 0, -1):  # the step from t back to t-1
        activation_share += log10_norm(pres[t].grad) - log10_norm(hs[t].grad)
        recurrent_share += log10_norm(hs[t - 1].grad) - log10_norm(pres[t].grad)
        expected_a.append(float(activation_share.mean()))
        expected_w.append(float(recurrent_share.mean()))
    np.testing.assert_allclose(profile.decades_activation, expected_a, rtol=0, atol=TOL)
    np.testing.assert_allclose(profile.decades_recurrent, expected_w, rtol=0, atol=TOL)
    total = (log10_norm(hs[0].grad) - log10_norm(hs[-1].grad)).mean()
    assert profile.summary["decades"]["total"] == pytest.approx(float(total), abs=TOL)


def lstm_cell_states(w, x, detach_h):
    """The unrolled LSTM (gate order i, f, g, o); each c_t keeps its .grad."""
    h = c = torch.zeros(B, H, dtype=torch.float64)
    cells = []
    for t in range(x.shape[1]):
        h_in = h.detach() if detach_h else h  # detached: only the cell state carries gradient back
        z = x[:, t] @ w["weight_ih"].T + w["bias_ih"] + w["bias_hh"] + h_in @ w["weight_hh"].T
        i, f, g, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), torch.tanh(z[:, 2 * H:3 * H]), \
            torch.sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        c.retain_grad()
        h = o * torch.tanh(c)
        cells.append(c)
    return h, cells


@pytest.mark.parametrize("text", ["lstm", "lstm:forget_bias=0", "lstm:recurrent_scale=3"])
@pytest.mark.parametrize("gap", [4, 12])
def test_lstm_direct_path_by_autograd(text, gap):
    profile, w, x, y = case(text, gap, seed=gap + 1)
    h, cells = lstm_cell_states(w, x, detach_h=False)
    head_loss(w, h, y).backward()
    dc = torch.stack([c.grad for c in cells], dim=1)  # (B, T, H) the full dL/dc_t
    h, cells = lstm_cell_states(w, x, detach_h=True)
    head_loss(w, h, y).backward()
    belt = torch.stack([c.grad for c in cells], dim=1)  # the direct path alone
    at_loss = torch.linalg.vector_norm(dc[:, -1], dim=-1).mean()
    belt_rel = (torch.linalg.vector_norm(belt, dim=-1).mean(dim=0) / at_loss).numpy()[::-1]
    gates_rel = (torch.linalg.vector_norm(dc - belt, dim=-1).mean(dim=0) / at_loss).numpy()[::-1]
    np.testing.assert_allclose(profile.belt_rel, belt_rel, rtol=TOL, atol=1e-300)
    np.testing.assert_allclose(profile.gates_rel, gates_rel, rtol=1e-7, atol=TOL * float(gates_rel.max()))
    assert profile.summary["belt_rel"] == pytest.approx(belt_rel[-1], rel=TOL)
