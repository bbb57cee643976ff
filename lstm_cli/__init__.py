"""lstm-demo: the vanishing and exploding gradient of recurrent networks, measured.

The Python API lives in submodules, imported explicitly so that the CLI's
``--help`` stays fast (this package imports no numpy at import time)::

    import numpy as np
    from lstm_cli import models, tasks, probes

    task = tasks.get_task("remember")
    spec = models.ModelSpec(kind="rnn", hidden=32)
    params = models.init_params(spec, task, np.random.default_rng(0))
    x, y = task.generate(np.random.default_rng(1), batch=64, gap=50)
    profile = probes.gradient_profile(spec, params, task, x, y)
"""

__version__ = "0.1.0"
