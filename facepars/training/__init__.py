"""The training engine: the custom train step (``task``), the loop that drives it
(``loop``), loss, metrics, optimizers, callbacks, strategies, and starting from an
earlier run. Imports ``core``, ``models`` and ``data``; never ``inference``."""
