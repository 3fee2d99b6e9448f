"""facepars: train, evaluate and ship face-parsing models with TensorFlow."""

import sys as _sys

__version__ = "0.1.0"

if _sys.argv[:1] == ["-m"]:
    # ``python -m facepars.<command>``: runs before the command imports TensorFlow.
    from facepars.core import cli as _cli

    _cli.quiet_tensorflow(_sys.argv)
