"""lstm-demo: the vanishing and exploding gradient of recurrent networks, measured.

The Python API is ``lstm_cli.api``: one function per command, each returning
data. Submodules are imported explicitly so that the CLI's ``--help`` stays
fast (this package imports no numpy at import time)::

    >>> from lstm_cli import api
    >>> profiles, settings = api.probe_models(task="remember", gap=20, hidden=8, batch=4, seed=0)
    >>> [profile.label for profile in profiles]
    ['rnn:hidden=8', 'lstm:hidden=8']
    >>> settings["sequence_length"]
    22
    >>> [profile.summary["verdict"] for profile in profiles]
    ['vanishing', 'stable']
"""

__version__ = "0.1.0"
