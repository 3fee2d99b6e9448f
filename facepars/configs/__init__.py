"""Experiment configs: one small Python file per experiment, each with ``get_config()``.

``python -m facepars.train --config=NAME`` takes a name listed here or the path of
any such file; ``--config.batch_size=64`` style flags override single fields.
"""

from __future__ import annotations

import os
import pkgutil

# Every module here but the shared defaults is a config: adding a file adds a name.
NAMES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "common"))


def path_of(name_or_path: str) -> str:
    """The config file for a registered name, or the path given unchanged."""
    base = name_or_path.split(":", 1)[0]
    if base in NAMES:
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{base}.py") + \
            name_or_path[len(base):]
    return name_or_path
