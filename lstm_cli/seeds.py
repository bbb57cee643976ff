"""Named random streams derived from one seed.

Every consumer of randomness gets its own ``np.random.Generator`` from
``stream(seed, name)``, so adding draws to one stream never shifts another:
the parameters of ``gradients --seed 0`` are exactly those ``train --seed 0``
starts from, and the held-out set does not depend on the training batches.
"""

from __future__ import annotations

import numpy as np

STREAMS = {"params": 0, "train": 1, "heldout": 2, "probe": 3}


def stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([STREAMS[name], seed])
