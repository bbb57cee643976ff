"""The GRU against PyTorch: the same parameters give the same outputs and gradients.

Skipped when torch is not installed. The parameter dict loads into
torch.nn.GRU (batch_first=True) plus a torch.nn.Linear head with
load_state_dict, which also checks PyTorch's names, shapes and gate order
(r, z, n, with b_hn inside the reset product). The per-step total dL/dh_t is
compared with an unrolled torch.nn.GRUCell, whose per-step h_t keep their .grad.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_error

from lstm_cli import losses
from lstm_cli.cells import gru

torch = pytest.importorskip("torch")

TOL = 1e-10
B, T, D, H, K = 4, 12, 3, 7, 3
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def assert_close(name, ours, theirs):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    err = relative_error(theirs, ours)
    assert err < TOL, f"{name}: max relative error {err:.3e} against torch"


def make_case(answer_steps, seed):
    """PyTorch's init U(-1/sqrt(H), 1/sqrt(H)) for the GRU and the head; ours forward and backward."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(H)
    shapes = {"weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,), "bias_hh": (3 * H,),
              "head.weight": (K, H), "head.bias": (K,)}
    params = {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, K, size=(B, len(answer_steps)))
    h, cache = gru.forward(params, np.ascontiguousarray(x.transpose(1, 0, 2)))  # (T, B, H)
    h_ans = h[list(answer_steps)].transpose(1, 0, 2)  # (B, S, H)
    out = h_ans @ params["head.weight"].T + params["head.bias"]  # (B, S, K)
    _, dout = losses.loss_and_grad("cross_entropy", out, y, reduction="mean")
    dh_out = np.zeros_like(h)
    np.add.at(dh_out, list(answer_steps), dout.transpose(1, 0, 2) @ params["head.weight"])
    grads = gru.backward(params, cache, dh_out)
    grads.params["head.weight"] = np.einsum("bsk,bsh->kh", dout, h_ans)
    grads.params["head.bias"] = dout.sum(axis=(0, 1))
    return params, x, y, out, grads


def torch_loss(out, y):
    # mean over sequences of the per-sequence loss summed over answer steps (losses.py)
    return torch.nn.functional.cross_entropy(out.reshape(-1, K), torch.as_tensor(y).reshape(-1),
                                             reduction="sum") / out.shape[0]


def torch_head(params):
    head = torch.nn.Linear(H, K, dtype=torch.float64)
    head.load_state_dict({"weight": torch.tensor(params["head.weight"]), "bias": torch.tensor(params["head.bias"])})
    return head


@pytest.mark.parametrize("answer_steps", [(-1,), (3, -1), tuple(range(-10, 0))])
def test_outputs_and_parameter_gradients_match_torch(answer_steps):
    params, x, y, out, grads = make_case(answer_steps, seed=41)
    core = torch.nn.GRU(D, H, batch_first=True, dtype=torch.float64)
    core.load_state_dict({f"{name}_l0": torch.tensor(params[name]) for name in NAMES})
    head = torch_head(params)
    h_seq, _ = core(torch.tensor(x))  # (B, T, H)
    out_t = head(h_seq[:, list(answer_steps)])  # (B, S, K)
    torch_loss(out_t, y).backward()
    assert_close("outputs", out, out_t)
    for name in NAMES:
        assert_close(name, grads.params[name], getattr(core, f"{name}_l0").grad)
    assert_close("head.weight", grads.params["head.weight"], head.weight.grad)
    assert_close("head.bias", grads.params["head.bias"], head.bias.grad)


@pytest.mark.parametrize("answer_steps", [(-1,), (3, -1)])
def test_per_step_dh_matches_an_unrolled_torch_cell(answer_steps):
    params, x, y, out, grads = make_case(answer_steps, seed=42)
    cell = torch.nn.GRUCell(D, H, dtype=torch.float64)
    cell.load_state_dict({name: torch.tensor(params[name]) for name in NAMES})
    w, b = torch.tensor(params["head.weight"]), torch.tensor(params["head.bias"])
    x_t = torch.tensor(x)
    h = torch.zeros(B, H, dtype=torch.float64)
    hs = []
    for t in range(T):
        h = cell(x_t[:, t], h)
        h.retain_grad()
        hs.append(h)
    out_t = torch.stack([hs[s] @ w.T + b for s in answer_steps], dim=1)  # (B, S, K)
    torch_loss(out_t, y).backward()
    assert_close("outputs", out, out_t)
    for t in range(T):
        assert_close(f"dh[{t}]", grads.dh[t], hs[t].grad)


def test_a_trained_gru_checkpoint_loads_into_torch_and_predicts_the_same(tmp_path):
    """lstm-demo train --model gru writes checkpoint.npz under nn.GRU's state-dict names."""
    from lstm_cli import models, runs
    from lstm_cli.checkpoint import load_checkpoint
    from lstm_cli.models import ModelSpec
    from lstm_cli.seeds import stream
    from lstm_cli.tasks import get_task
    from lstm_cli.train import TrainConfig

    config = TrainConfig(task="remember", gap=5, model=ModelSpec(kind="gru", hidden=6), batch=8, steps=3,
                         eval_every=3, eval_size=8, probe_size=4)
    record = runs.run_training(config, tmp_path)
    checkpoint = load_checkpoint(tmp_path / record["name"])
    assert checkpoint.spec.kind == "gru"
    with np.load(tmp_path / record["name"] / "checkpoint.npz") as data:
        state = {k: torch.tensor(data[k]) for k in data.files if k.endswith("_l0")}
        head_state = {"weight": torch.tensor(data["head.weight"]), "bias": torch.tensor(data["head.bias"])}
    core = torch.nn.GRU(get_task("remember").input_size, 6, batch_first=True, dtype=torch.float64)
    core.load_state_dict(state)  # strict: every name and shape must match
    head = torch.nn.Linear(6, 4, dtype=torch.float64)
    head.load_state_dict(head_state)
    x, _ = get_task("remember").generate(stream(9, "heldout"), 16, 5)
    ours, _ = models.forward(checkpoint.params, x, spec=checkpoint.spec)
    with torch.no_grad():
        h, _ = core(torch.tensor(x))
        theirs = head(h[:, -1:])
    assert_close("predictions", ours, theirs)
    assert not np.allclose(ours, models.forward(models.init_params(checkpoint.spec, 9, 4, stream(0, "params")), x,
                                                spec=checkpoint.spec)[0])  # it trained
