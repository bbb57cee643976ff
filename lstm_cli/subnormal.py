"""Float32 backward passes: flush a vanished gradient's subnormal entries to zero.

With the loss at the last step of a long sequence, the gradient carried back
through time decays, in float32, into the subnormal range (below 1.2e-38),
where numpy's element-wise loops and the BLAS run 10-100x slower. Once the
carried gradient of a step is below WATCH at a check (every WATCH_EVERY steps),
its subnormal entries are set to zero at every later step, as flush-to-zero
hardware would. Float64 is never touched: its results keep every bit.
"""

from __future__ import annotations

import numpy as np

WATCH = 2.0 ** -60  # a carried gradient below this is about to reach float32's subnormals
WATCH_EVERY = 8  # backward steps between two checks against WATCH


class SubnormalFlush:
    """Called once per backward step, latest step first, with that step's carried gradient
    (and any other arrays carried back with it, flushed alike)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.below = np.finfo(dtype).tiny if dtype == np.float32 else None
        self.flushing = False

    def __call__(self, t: int, carried: np.ndarray, *also: np.ndarray) -> None:
        if self.below is None:
            return
        if not self.flushing and t % WATCH_EVERY == 0:
            self.flushing = bool(np.abs(carried).max() < WATCH)
        if self.flushing:
            for array in (carried,) + also:
                np.putmask(array, np.abs(array) < self.below, 0.0)
