"""Float64 results to the last bit: the kernels' outputs and gradients against recorded digests.

A speed-up of rnn.py or lstm.py must not change a single float64 bit (a
different summation order would). The digests (sha256 of each array's bytes)
were recorded from the kernels as they were before the speed work, with

    python tests/test_bits.py --record

(on a platform that gives the same digests, --record adds its fingerprint to the list).

Bits depend on the platform: the BLAS (its version and the CPU core type it
chose) and numpy's own SIMD kernels (tanh, exp). The digests are compared only
where the platform fingerprint is one of the recorded ones (``platforms``: each
fingerprint on which ``--record`` found these same digests); everywhere else the
same cases are compared with the plain reference (the reference_forward/backward of lstm_cli/cells/) to
1e-12, and a warning says that the bits were not checked. The reference
comparison runs on every platform as well.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_cli import losses, models  # noqa: E402
from lstm_cli.cells import lstm_kernel, lstm_reference, rnn  # noqa: E402

RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bits_float64.json")
REFERENCE_TOL = 1e-12

# (kind, activation, B, T, D, H, seed, initial state given, outside gradient at every step)
CASES = [
    ("lstm", "tanh", 2, 4, 3, 5, 0, False, True),
    ("lstm", "tanh", 3, 9, 8, 32, 1, True, True),
    ("lstm", "tanh", 16, 40, 8, 128, 2, False, False),
    ("lstm", "tanh", 1, 1, 3, 5, 3, True, True),
    ("rnn", "tanh", 2, 4, 3, 5, 4, False, True),
    ("rnn", "tanh", 3, 9, 8, 32, 5, True, True),
    ("rnn", "tanh", 16, 40, 8, 128, 6, False, False),
    ("rnn", "relu", 3, 9, 8, 32, 7, True, True),
    ("rnn", "relu", 16, 40, 8, 128, 8, False, False),
]
# models.forward/backward, the path training takes: (kind, activation, B, T, H, seed, answer steps)
MODEL_CASES = [
    ("lstm", "tanh", 8, 30, 32, 9, (-1,)),
    ("lstm", "tanh", 8, 30, 32, 10, (0, 7, -1)),
    ("rnn", "tanh", 8, 30, 32, 11, (-1,)),
    ("rnn", "relu", 8, 30, 32, 12, (0, 7, -1)),
]
D_MODEL, K_MODEL = 8, 4


def platform_fingerprint() -> str:
    """numpy's version and SIMD extensions, and the BLAS library and core it runs on."""
    config = np.show_config(mode="dicts")
    simd = config.get("SIMD Extensions", {})
    blas = config.get("Build Dependencies", {}).get("blas", {})
    runtime = "runtime core unknown"
    for path in sorted(glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_config64_", "openblas_get_config64_", "openblas_get_config"):
            if hasattr(lib, name):
                function = getattr(lib, name)
                function.restype = ctypes.c_char_p
                runtime = function().decode()
                break
    return (f"numpy {np.__version__}; simd baseline {simd.get('baseline')} found {simd.get('found')}; "
            f"blas {blas.get('name')} {blas.get('version')}; {runtime}")


def digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array, dtype=np.float64)
    return hashlib.sha256(array.tobytes() + repr(array.shape).encode()).hexdigest()


def case_id(case) -> str:
    return "-".join(str(v).replace(" ", "") for v in case)


def kernel_case(case):
    """The kernel's arrays (time-major) and the reference's (batch-major, transposed to match)."""
    kind, activation, B, T, D, H, seed, with_state, every_step = case
    rng = np.random.default_rng(seed)
    rows = 4 * H if kind == "lstm" else H
    params = {"weight_ih": 0.6 * rng.standard_normal((rows, D)),
              "weight_hh": 0.8 * rng.standard_normal((rows, H)) / np.sqrt(H),
              "bias_ih": 0.3 * rng.standard_normal(rows), "bias_hh": 0.3 * rng.standard_normal(rows)}
    x = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((B, H)) if with_state else None
    c0 = rng.standard_normal((B, H)) if with_state else None
    dh_out = rng.standard_normal((T, B, H))
    if not every_step:
        dh_out[:-1] = 0.0
    dc_out = rng.standard_normal((T, B, H)) if with_state and kind == "lstm" else None
    x_bm = x.transpose(1, 0, 2)
    to_bm = (lambda a: a.transpose(1, 0, 2))
    if kind == "lstm":
        h, cache = lstm_kernel.forward(params, x, h0=h0, c0=c0)
        grads = lstm_kernel.backward(params, cache, dh_out, dc_out)
        ours = {"h": h, "c": cache.cells[1:], **grads.params, "dh": grads.dh, "dc": grads.dc}
        h_ref, c_ref, states = lstm_reference.reference_forward(params, x_bm, h0, c0)
        g_ref, dh_ref, dc_ref = lstm_reference.reference_backward(
            params, x_bm, states, to_bm(dh_out), None if dc_out is None else to_bm(dc_out))
        theirs = {"h": to_bm(h_ref), "c": to_bm(c_ref), **g_ref, "dh": to_bm(dh_ref), "dc": to_bm(dc_ref)}
    else:
        h, cache = rnn.forward(params, x, h0=h0, activation=activation)
        grads = rnn.backward(params, cache, dh_out)
        ours = {"h": h, **grads.params, "dh": grads.dh}
        h_ref, hs = rnn.reference_forward(params, x_bm, h0, activation)
        g_ref, dh_ref = rnn.reference_backward(params, x_bm, hs, to_bm(dh_out), activation)
        theirs = {"h": to_bm(h_ref), **g_ref, "dh": to_bm(dh_ref)}
    return ours, theirs


def model_case(case):
    """models.forward -> cross-entropy -> models.backward: the outputs and every gradient."""
    kind, activation, B, T, H, seed, answer_steps = case
    rng = np.random.default_rng(seed)
    spec = models.ModelSpec(kind=kind, hidden=H, activation=activation) if kind == "rnn" else \
        models.ModelSpec(kind=kind, hidden=H)
    params = models.init_params(spec, D_MODEL, K_MODEL, rng)
    x = rng.standard_normal((B, T, D_MODEL))
    y = rng.integers(0, K_MODEL, size=(B, len(answer_steps)))
    out, cache = models.forward(params, x, answer_steps=answer_steps, spec=spec)
    _, dout = losses.loss_and_grad("cross_entropy", out, y)
    grads = models.backward(params, cache, dout)
    arrays = {"out": out, **grads.params, "dh": grads.dh}
    if grads.dc is not None:
        arrays["dc"] = grads.dc
    return arrays


def all_digests() -> dict[str, dict[str, str]]:
    record = {case_id(case): {name: digest(a) for name, a in kernel_case(case)[0].items()} for case in CASES}
    record.update({case_id(case): {name: digest(a) for name, a in model_case(case).items()}
                   for case in MODEL_CASES})
    return record


def scaled_error(reference: np.ndarray, ours: np.ndarray) -> float:
    """max |ours - reference| / max |reference|: rounding in a sum of H terms is absolute, so an
    element-wise relative error would blame tiny entries for their neighbours' size."""
    assert reference.shape == ours.shape, (reference.shape, ours.shape)
    return float(np.abs(ours - reference).max() / max(np.abs(reference).max(), 1e-300))


def load_record() -> dict:
    with open(RECORD, encoding="utf-8") as stream:
        return json.load(stream)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_kernel_agrees_with_the_plain_reference(case):
    ours, theirs = kernel_case(case)
    assert ours.keys() == theirs.keys()
    for name in ours:
        err = scaled_error(theirs[name], ours[name])
        assert err < REFERENCE_TOL, f"{name}: error {err:.3e} (of its largest entry) against the plain reference"


def test_float64_bits_are_unchanged():
    record = load_record()
    fingerprint = platform_fingerprint()
    if fingerprint not in record["platforms"]:
        warnings.warn(f"float64 bits not checked: this platform ({fingerprint}) is not a recorded one "
                      f"({'; or '.join(record['platforms'])}); compared with the plain reference to "
                      f"{REFERENCE_TOL:g} instead", stacklevel=1)
        for case in CASES:
            test_kernel_agrees_with_the_plain_reference(case)
        return
    assert set(record["digests"]) == {case_id(c) for c in CASES + MODEL_CASES}
    changed = [f"{case} {name}" for case, arrays in all_digests().items()
               for name, value in arrays.items() if record["digests"][case].get(name) != value]
    assert not changed, f"float64 bits changed: {', '.join(changed)}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_bits.py --record")
    digests, platforms = all_digests(), [platform_fingerprint()]
    if os.path.exists(RECORD) and load_record()["digests"] == digests:  # the same bits here: one more platform
        platforms = sorted(set(load_record()["platforms"]) | set(platforms))
    with open(RECORD, "w", encoding="utf-8") as stream:
        json.dump({"platforms": platforms, "digests": digests}, stream, indent=1, sort_keys=True)
        stream.write("\n")
    print(f"recorded {RECORD} for {len(platforms)} platform(s)")
