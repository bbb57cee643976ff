"""Seed-stacked training: the runs of a sweep that differ only in their seed, trained together.

S runs with the same task, sizes and settings keep their parameters stacked on a
leading axis, so that one call does the work of all of them::

    weight_hh (S, G*H, H)     x (S, T, B, D)     h (S, T+1, B, H)    (per run: as alone)
    h_t = act(x_t W_ih^T + b + h_{t-1} W_hh^T)   one stacked matmul (S, B, H) @ (S, H, G*H)
                                                 and one element-wise call per step for all S

Each run keeps everything of its own (``train.RunState``): its random streams
(initial weights, batches, held-out and probe sets), its evaluations and
gradient probes (computed per run, by the single-run code), its loss, global
gradient norm and clipping, its early stop and its record. A run that stops
(success, end of budget, a non-finite loss or gradient) is taken out of the
stack: its result is final and the others go on without it.

Bit for bit: every operation here gives each slice of a stack exactly the bits
that the single-run kernels (``rnn``, ``lstm``, ``gru``, ``models``) give that
run alone, so a stacked run's record is the record of the same run alone, float64
bit for bit and float32 too. That holds because (measured by
benchmarks/stack_bits.py on numpy 2.4 with OpenBLAS, AVX-512 and AVX2 kernels):
numpy's stacked matmul calls the same BLAS gemm per slice as ``np.dot`` does for one
run (same shapes, same transposition), a sum over the batch axis adds in the same
order stacked or not, and numpy's element-wise loops (tanh included) give a value
the same bits wherever it sits in an array. The cheap per-run work stays per run,
calling the single-run code itself: the batch, the head, the loss, the norm, the
evaluations; so do float32's subnormal flushes, whose decision is each run's own.

Stacked here: the RNN (tanh or relu), the default LSTM and the GRU, float32 or
float64. The LSTM's variants (peephole, coupled, no forget gate) train alone
(``stackable``).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from lstm_cli import losses, models, train
from lstm_cli.cells import lstm, lstm_kernel
from lstm_cli.subnormal import SubnormalFlush
from lstm_cli.tasks import get_task
from lstm_cli.train import Diverged, Event, Finished, RunState, Started, TrainConfig

_RECORD_ORDER = [lstm_kernel.PYTORCH_GATES.index(gate) for gate in "oifg"]  # lstm.py's record: o, i, f, g


def stackable(config: TrainConfig) -> bool:
    """Whether runs of ``config`` can be stacked: a kind with stacked kernels (``KERNELS``), and not
    one of the LSTM's variants."""
    spec = config.model
    return spec.kind in KERNELS and lstm.variant_of(spec) == lstm_kernel.Variant()


def most_stacked(config: TrainConfig) -> int | None:
    """How many runs of ``config`` fit in one stack within the memory allowed (``config.memory_limit``;
    a stack holds S runs' arrays at once), at least 1; None when there is no known limit."""
    from lstm_cli import config as settings

    limit, _ = settings.memory_limit()
    if limit is None:
        return None
    cfg, task = config.resolved(), get_task(config.task)
    need = settings.train_bytes(cfg.model.kind, cfg.model.hidden, task.length(cfg.gap), task.input_size,
                                cfg.batch, cfg.eval_size, cfg.probe_size)
    return max(1, int(limit // need))


def group_key(config: TrainConfig) -> tuple:
    """Runs with the same key differ only in their seed and can train as one stack."""
    settings = config.resolved().to_dict()
    settings.pop("seed")
    return tuple(sorted((key, repr(value)) for key, value in settings.items()))


# ---- the cores over a stack: the arithmetic of cells/rnn.py, cells/lstm_kernel.py and cells/gru.py with a leading axis S ----

def _rnn_forward(p: dict, x: np.ndarray, spec, dtype) -> tuple[list, dict]:
    """x (S, T, B, D) -> every run's h (T, B, H), as rnn.forward returns it, and the cache."""
    activation = spec.activation
    S, T, B, D = x.shape
    H = p["weight_hh"].shape[1]
    pre = np.matmul(x.reshape(S, T * B, D), p["weight_ih"].transpose(0, 2, 1)).reshape(S, T, B, H)
    pre += (p["bias_ih"] + p["bias_hh"])[:, None, None, :]
    h = np.empty((S, T + 1, B, H), dtype=dtype)
    h[:, 0] = 0.0
    w_hh_t = np.ascontiguousarray(p["weight_hh"].transpose(0, 2, 1))  # (S, H, H)
    step = np.empty((S, B, H), dtype=dtype)
    for t in range(T):
        np.matmul(h[:, t], w_hh_t, out=step)
        step += pre[:, t]
        if activation == "tanh":
            np.tanh(step, out=h[:, t + 1])
        else:
            np.maximum(step, 0.0, out=h[:, t + 1])
    return [h[s][1:] for s in range(S)], {"x": x, "h": h, "activation": activation}


def _rnn_backward(p: dict, cache: dict, dh_in: np.ndarray, has_out: list, flushes) -> dict:
    x, h = cache["x"], cache["h"]
    S, T, B, H = dh_in.shape
    dpre = np.empty((S, T, B, H), dtype=h.dtype)
    if cache["activation"] == "tanh":
        np.multiply(h[:, 1:], h[:, 1:], out=dpre)
        np.subtract(1.0, dpre, out=dpre)  # tanh' = 1 - h^2
    else:
        np.greater(h[:, 1:], 0.0, out=dpre)
    dh = np.empty((S, T, B, H), dtype=h.dtype)
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dh[:, t] = dh_in[:, t]
        else:
            np.matmul(dpre[:, t + 1], p["weight_hh"], out=dh[:, t])  # through W_hh from step t+1
            _add_where(dh[:, t], dh_in[:, t], has_out[t])
        np.multiply(dpre[:, t], dh[:, t], out=dpre[:, t])  # through the activation
        _flush(flushes, t, dpre[:, t])
    dpre_flat = dpre.reshape(S, T * B, H)
    db = dpre_flat.sum(axis=1)
    return {"weight_ih": np.matmul(dpre_flat.transpose(0, 2, 1), x.reshape(S, T * B, -1)),
            "weight_hh": np.matmul(dpre_flat.transpose(0, 2, 1), h[:, :-1].reshape(S, T * B, H)),
            "bias_ih": db, "bias_hh": db.copy()}


def _lstm_forward(p: dict, x: np.ndarray, spec, dtype) -> tuple[list, dict]:
    """x (S, T, B, D) -> every run's h (T, B, H), the view lstm.forward returns, and the cache
    (feature-major records; see cells/lstm_kernel.py)."""
    S, T, B, D = x.shape
    H = p["weight_hh"].shape[2]
    bias = (p["bias_ih"] + p["bias_hh"])[:, :, None]
    w_gates = np.concatenate([p["weight_hh"], p["weight_ih"], bias], axis=2)  # (S, 4H, H+D+1)
    w_gates = w_gates.reshape(S, 4, H, H + D + 1)[:, _RECORD_ORDER].reshape(S, 4 * H, H + D + 1)
    w_gates[:, :3 * H] *= 0.5  # sigmoid(z) = 0.5 + 0.5 tanh(z / 2)
    w_gates = w_gates.astype(dtype, copy=False)
    inputs = np.empty((S, T + 1, H + D + 1, B), dtype=dtype)
    inputs[:, 0, :H] = 0.0
    inputs[:, :T, H:H + D] = x.transpose(0, 1, 3, 2)
    inputs[:, :T, H + D] = 1.0
    inputs[:, T, H:] = 0.0
    record = np.empty((S, T + 1, 5 * H, B), dtype=dtype)  # per step: o, i, f, g, c_{t-1}
    record[:, 0, 4 * H:] = 0.0
    tanh_c = np.empty((S, T, H, B), dtype=dtype)
    products = np.empty((S, 2 * H, B), dtype=dtype)
    for t in range(T):
        r = record[:, t]
        a = r[:, :4 * H]
        np.matmul(w_gates, inputs[:, t], out=a)
        np.tanh(a, a)
        sig = r[:, :3 * H]
        np.multiply(sig, 0.5, sig)
        np.add(sig, 0.5, sig)
        np.multiply(r[:, H:3 * H], r[:, 3 * H:], products)  # [i g, f c_{t-1}]
        c_t = record[:, t + 1, 4 * H:]
        np.add(products[:, :H], products[:, H:], c_t)
        np.tanh(c_t, tanh_c[:, t])
        np.multiply(r[:, :H], tanh_c[:, t], inputs[:, t + 1, :H])  # h_t = o_t tanh(c_t)
    hs = [inputs[s][:, :H].transpose(0, 2, 1)[1:] for s in range(S)]  # lstm.forward's h: cache.states[1:]
    return hs, {"inputs": inputs, "record": record, "tanh_c": tanh_c}


def _lstm_backward(p: dict, cache: dict, dh_in: np.ndarray, has_out: list, flushes) -> dict:
    """The parameter gradients, as lstm.backward per run, from dh_in (S, T, B, H)."""
    inputs, record, tanh_c = cache["inputs"], cache["record"], cache["tanh_c"]
    dh_in = dh_in.transpose(0, 1, 3, 2)  # (S, T, H, B), feature-major like the records
    S, T, H, B = tanh_c.shape
    D = inputs.shape[2] - H - 1
    dtype = record.dtype
    w_back = np.ascontiguousarray(p["weight_hh"].transpose(0, 2, 1))  # (S, H, 4H)
    o, i, f, g = (record[:, :T, k * H:(k + 1) * H] for k in range(4))
    work = np.empty((S, T, 5 * H, B), dtype=dtype)  # per step: dz_i, dz_f, dz_g, dz_o, dc_t
    d_if = work[:, :, :2 * H]
    np.subtract(1.0, record[:, :T, H:3 * H], out=d_if)
    d_if *= record[:, :T, H:3 * H]
    d_if *= record[:, :T, 3 * H:]
    d_g = work[:, :, 2 * H:3 * H]
    np.multiply(g, g, out=d_g)
    np.subtract(1.0, d_g, out=d_g)
    d_g *= i
    d_o = work[:, :, 3 * H:4 * H]
    np.subtract(1.0, o, out=d_o)
    d_o *= o
    d_o *= tanh_c
    d_c = work[:, :, 4 * H:]
    np.multiply(tanh_c, tanh_c, out=d_c)
    np.subtract(1.0, d_c, out=d_c)
    d_c *= o
    dh = np.empty((S, T, H, B), dtype=dtype)
    dw = np.zeros((S, 4 * H, H + D + 1), dtype=dtype)
    inputs_t = np.ascontiguousarray(inputs[:, :T].transpose(0, 1, 3, 2))  # (S, T, B, H+D+1)
    dw_step = np.empty_like(dw)
    belt = np.empty((S, H, B), dtype=dtype)
    for t in range(T - 1, -1, -1):
        dh_t, w = dh[:, t], work[:, t]
        if t == T - 1:
            dh_t[...] = dh_in[:, t]
        else:
            np.matmul(w_back, work[:, t + 1, :4 * H], out=dh_t)  # through the gates of step t+1
            _add_where(dh_t, dh_in[:, t], has_out[t])
        by_dh = w[:, 3 * H:].reshape(S, 2, H, B)
        np.multiply(by_dh, dh_t[:, None], by_dh)  # dz_o, and dc_t's share through h_t
        dc_t = w[:, 4 * H:]
        if t < T - 1:
            np.multiply(work[:, t + 1, 4 * H:], f[:, t + 1], belt)
            np.add(dc_t, belt, dc_t)  # the belt
        by_dc = w[:, :3 * H].reshape(S, 3, H, B)
        np.multiply(by_dc, dc_t[:, None], by_dc)  # dz_i, dz_f, dz_g
        _flush(flushes, t, w)
        np.matmul(w[:, :4 * H], inputs_t[:, t], out=dw_step)  # step t's share of [dW_hh dW_ih db]
        np.add(dw, dw_step, dw)
    return {"weight_ih": np.ascontiguousarray(dw[:, :, H:H + D]),
            "weight_hh": np.ascontiguousarray(dw[:, :, :H]),
            "bias_ih": dw[:, :, H + D].copy(), "bias_hh": dw[:, :, H + D].copy()}


def _gru_forward(p: dict, x: np.ndarray, spec, dtype) -> tuple[list, dict]:
    """x (S, T, B, D) -> every run's h (T, B, H), as gru.forward returns it, and the cache."""
    S, T, B, D = x.shape
    H = p["weight_hh"].shape[2]
    gi = np.matmul(x.reshape(S, T * B, D), p["weight_ih"].transpose(0, 2, 1)).reshape(S, T, B, 3 * H)
    gi += p["bias_ih"][:, None, None, :]
    h = np.empty((S, T + 1, B, H), dtype=dtype)
    h[:, 0] = 0.0
    gates = np.empty((S, T, B, 3 * H), dtype=dtype)  # r, z, n
    hn = np.empty((S, T, B, H), dtype=dtype)
    w_hh_t = np.ascontiguousarray(p["weight_hh"].transpose(0, 2, 1))  # (S, H, 3H)
    b_hh = p["bias_hh"][:, None, :]
    gh = np.empty((S, B, 3 * H), dtype=dtype)
    for t in range(T):
        np.matmul(h[:, t], w_hh_t, out=gh)
        gh += b_hh
        rz = gates[:, t, :, :2 * H]
        np.add(gi[:, t, :, :2 * H], gh[:, :, :2 * H], out=rz)
        rz *= 0.5  # sigmoid(a) = 0.5 + 0.5 tanh(a / 2), as gru._sigmoid
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        hn[:, t] = gh[:, :, 2 * H:]
        n = gates[:, t, :, 2 * H:]
        np.multiply(rz[:, :, :H], hn[:, t], out=n)
        n += gi[:, t, :, 2 * H:]
        np.tanh(n, out=n)
        np.subtract(h[:, t], n, out=h[:, t + 1])
        h[:, t + 1] *= rz[:, :, H:]
        h[:, t + 1] += n
    return [h[s][1:] for s in range(S)], {"x": x, "h": h, "gates": gates, "hn": hn}


def _gru_backward(p: dict, cache: dict, dh_in: np.ndarray, has_out: list, flushes) -> dict:
    x, h, gates, hn = cache["x"], cache["h"], cache["gates"], cache["hn"]
    S, T, B, H = hn.shape
    dtype = h.dtype
    r, z, n = (gates[..., k * H:(k + 1) * H] for k in range(3))
    h_prev = h[:, :-1]
    d_n = (1.0 - z) * (1.0 - n * n)
    d_z = (h_prev - n) * z * (1.0 - z)
    d_r = hn * r * (1.0 - r)
    dh = np.empty((S, T, B, H), dtype=dtype)
    dgi = np.empty((S, T, B, 3 * H), dtype=dtype)
    dgh = np.empty((S, T, B, 3 * H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            dh[:, t] = dh_in[:, t]
        else:
            np.matmul(dgh[:, t + 1], p["weight_hh"], out=dh[:, t])
            dh[:, t] += dh[:, t + 1] * z[:, t + 1]  # the direct path
            _add_where(dh[:, t], dh_in[:, t], has_out[t])
        da = dgi[:, t]
        np.multiply(dh[:, t], d_n[:, t], out=da[..., 2 * H:])
        np.multiply(dh[:, t], d_z[:, t], out=da[..., H:2 * H])
        np.multiply(da[..., 2 * H:], d_r[:, t], out=da[..., :H])
        dgh[:, t, :, :2 * H] = da[..., :2 * H]
        np.multiply(da[..., 2 * H:], r[:, t], out=dgh[:, t, :, 2 * H:])
        _flush(flushes, t, dh[:, t], dgh[:, t])
    dgi_flat, dgh_flat = dgi.reshape(S, T * B, 3 * H), dgh.reshape(S, T * B, 3 * H)
    return {"weight_ih": np.matmul(dgi_flat.transpose(0, 2, 1), x.reshape(S, T * B, -1)),
            "weight_hh": np.matmul(dgh_flat.transpose(0, 2, 1), h_prev.reshape(S, T * B, H)),
            "bias_ih": dgi_flat.sum(axis=1), "bias_hh": dgh_flat.sum(axis=1)}


# kind -> (forward, backward) over a stack
KERNELS = {"rnn": (_rnn_forward, _rnn_backward), "lstm": (_lstm_forward, _lstm_backward),
           "gru": (_gru_forward, _gru_backward)}


def _add_where(total: np.ndarray, extra: np.ndarray, runs: list[int] | None) -> None:
    """total[s] += extra[s] for the runs whose head sends a gradient at this step (``_receivers``;
    None: all). Alone, a run adds nothing at a step without one, not even a zero, which would
    turn a -0.0 into +0.0."""
    if runs is None:
        np.add(total, extra, total)
    else:
        for s in runs:
            np.add(total[s], extra[s], total[s])


def _receivers(has_out: np.ndarray) -> list[list[int] | None]:
    """Per step, the runs whose head sends a gradient there (None: every run), from has_out (S, T)."""
    every, some = has_out.all(axis=0).tolist(), has_out.any(axis=0).tolist()
    return [None if all_of_them else np.flatnonzero(has_out[:, t]).tolist() if any_of_them else []
            for t, (all_of_them, any_of_them) in enumerate(zip(every, some))]


def _flush(flushes, t: int, *carried: np.ndarray) -> None:
    """float32: each run's own flush of its subnormal gradients (subnormal.py), decided by its own
    carried gradient as alone; nothing for float64."""
    for s, flush in enumerate(flushes):
        flush(t, *(array[s] for array in carried))


# ---- one stacked training step ----

def _losses_and_grads(runs: list[RunState], params: dict, batches) -> tuple[list, dict]:
    """Per-run losses (float) and the stacked parameter gradients of one step."""
    spec, task = runs[0].spec, runs[0].task
    dtype = np.dtype(spec.dtype)
    S = len(runs)
    x = np.stack([np.asarray(xb, dtype=dtype).transpose(1, 0, 2) for xb, _ in batches])  # (S, T, B, D)
    forward, backward = KERNELS[spec.kind]
    hs, cache = forward(params, x, spec, dtype)  # every run's h (T, B, H), as its kernel alone returns it
    answer_steps = task.answer_steps
    per_run, head_grads, dh_out = [], [], []
    for s, (_, y) in enumerate(batches):
        head = {k: params[k][s] for k in ("head.weight", "head.bias", "weight_hh")}
        # models.forward's head, then models.backward's, on this run's h
        h_ans = hs[s][list(answer_steps)].transpose(1, 0, 2)
        out = h_ans @ head["head.weight"].T + head["head.bias"]
        per_seq, dout = losses.loss_and_grad(task.loss, out, y)
        per_run.append(float(per_seq.mean()))
        one = models.Cache(cell=spec.cell, core=None, h=hs[s], answer_steps=tuple(answer_steps))
        dout = np.asarray(dout, dtype=dtype)
        dh_out.append(models.head_gradient(head, one, dout))
        h_ans = one.h[list(one.answer_steps)]
        dout_tm = dout.transpose(1, 0, 2)
        K = dout.shape[-1]
        head_grads.append({"head.weight": dout_tm.reshape(-1, K).T @ h_ans.reshape(-1, h_ans.shape[-1]),
                           "head.bias": dout_tm.reshape(-1, K).sum(axis=0)})
    dh_in = np.stack(dh_out)  # (S, T, B, H)
    has_out = _receivers(dh_in.reshape(S, dh_in.shape[1], -1).any(axis=2))  # per step: who gets a gradient
    flushes = [SubnormalFlush(dtype) for _ in runs] if dtype == np.float32 else []
    grads = backward(params, cache, dh_in, has_out, flushes)
    for key in ("head.weight", "head.bias"):
        grads[key] = np.stack([g[key] for g in head_grads])
    return per_run, grads


def _stack(dicts: list[dict]) -> dict:
    return {k: np.stack([d[k] for d in dicts]) for k in dicts[0]}


def _unstack(stacked: dict, s: int) -> dict:
    return {k: v[s].copy() for k, v in stacked.items()}


def _started(runs: list[RunState]):
    """Every run's Started and evaluation at step 0 (and Finished for one that succeeds there);
    returns the indices of the runs that go on training."""
    for index, run in enumerate(runs):
        yield index, Started(config=run.cfg, total_steps=run.cfg.steps)
    active = []
    for index, run in enumerate(runs):
        result = run.evaluation(0, run.params)
        yield index, result
        if result.success:
            yield index, Finished(step=0, success=True, params=run.params)
        else:
            active.append(index)
    return active


def train_stacked(configs: list[TrainConfig], dropped=None) -> Iterator[tuple[int, Event]]:
    """Train ``configs`` (the same run but for the seed: ``group_key``) as one stack; yields
    (index into configs, event), each run's events in the order ``train.train`` yields them.

    ``dropped(index)``, asked before every step, says that nobody wants a run's events any more
    (its record was kept, or could not be written): it leaves the stack without another event."""
    runs = [RunState(config) for config in configs]
    keys = {group_key(run.cfg) for run in runs}
    if len(keys) > 1 or not all(stackable(run.cfg) for run in runs):
        raise ValueError("train_stacked: the runs must differ only in their seed, and be of a stackable model")
    cfg = runs[0].cfg
    active = yield from _started(runs)  # indices into runs still training, in stack order
    params = _stack([runs[i].params for i in active]) if active else {}
    state = train.OptState(0, {name: _stack([runs[i].state.slots[name] for i in active])
                               for name in runs[0].state.slots}) if active else None
    step = 0
    while active:
        gone = [s for s, index in enumerate(active) if dropped is not None and dropped(index)]
        if gone:
            active, params, state = _without(gone, active, params, state)
            if not active:
                return
        step += 1
        members = [runs[i] for i in active]
        batches = [run.batch() for run in members]
        stopped: list[int] = []  # positions in the stack
        diverged: list[tuple[int, Diverged]] = []
        with np.errstate(all="ignore"):  # a diverging run's inf and nan are its outcome, not warned about
            run_losses, grads = _losses_and_grads(members, params, batches)
            norms: list[float | None] = []
            for s, (index, loss) in enumerate(zip(active, run_losses)):
                norm = None if not math.isfinite(loss) else train.global_norm({k: g[s] for k, g in grads.items()})
                norms.append(norm)
                if norm is None or not math.isfinite(norm):
                    diverged.append((index, Diverged(step=step, loss=loss, grad_norm=norm)))
                    stopped.append(s)
            # clip_by_global_norm, run by run: g * (max_norm / ||g||) where clipping fires, else g
            scale = np.array([cfg.clip / norm if s not in stopped and train.clipped(norm, cfg.clip) else 1.0
                              for s, norm in enumerate(norms)])
            if (scale != 1.0).any():
                grads = {k: g * scale.reshape(-1, *[1] * (g.ndim - 1)).astype(g.dtype) for k, g in grads.items()}
            params, state = train.update(cfg.optimizer, params, grads, state, cfg.lr, cfg.momentum)
        yield from diverged
        for s, (index, loss, norm) in enumerate(zip(active, run_losses, norms)):
            if s in stopped:
                continue
            run = runs[index]
            yield index, run.stepped(step, loss, norm)
            if run.evaluates_at(step):
                mine = _unstack(params, s)
                result = run.evaluation(step, mine)
                yield index, result
                if result.success or step == cfg.steps:
                    yield index, Finished(step=step, success=result.success, params=mine)
                    stopped.append(s)
        if stopped:
            active, params, state = _without(stopped, active, params, state)


def _without(positions: list[int], active: list[int], params: dict, state: train.OptState):
    """The stack without the runs at ``positions``: (active, params, state)."""
    keep = [s for s in range(len(active)) if s not in positions]
    return ([active[s] for s in keep], {k: v[keep] for k, v in params.items()},
            train.OptState(state.step, {name: {k: v[keep] for k, v in slot.items()}
                                        for name, slot in state.slots.items()}))
