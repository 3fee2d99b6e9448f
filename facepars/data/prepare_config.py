"""What a conversion is asked to do: the options of ``python -m facepars.prepare``.

One place for them and their defaults: the command line defines its flags from
this class, and the shard library, the local pool and the Beam runner all take
it. No TensorFlow here, so the command line can list its flags (and its worker
processes start) without it.
"""

from __future__ import annotations

import dataclasses

from facepars.core.classes import DEFAULT_TAXONOMY
from facepars.data import synthetic


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Everything a conversion depends on."""

    output_dir: str
    source: str = "synthetic"
    input_dir: str | None = None
    classes: str | None = None    # the class file of the voc and folder sources
    taxonomy: str = DEFAULT_TAXONOMY
    image_size: int = 256
    resize: str = "stretch"
    align: str = "none"           # landmarks|detect: crops aligned on the five points
    image_format: str = "jpeg"
    jpeg_quality: int = 95
    shard_size: int = 512
    num_shards: int = 0           # at least this many files per split (0: from shard_size)
    workers: int = 1              # the command line's default is every core
    runner: str = "local"         # "local" (facepars.data.pool) or "beam" (facepars.data.beam)
    beam_pipeline_options: str = ""
    on_error: str = "fail"
    resume: bool = False
    overwrite: bool = False
    val_fraction: float = 0.0     # 0: as the source splits, or VAL_FRACTION if it has no val
    seed: int = 0
    num_examples: int = 0
    synthetic_size: int = synthetic.BASE_SIZE

    def settings(self) -> dict:
        """The options that decide the bytes written (what a resume must match)."""
        # Not on_error: the shards a run finished are the same bytes either way, so a
        # run stopped by a bad pair can be resumed with --on_error=skip.
        skip = {"output_dir", "input_dir", "workers", "runner", "beam_pipeline_options",
                "resume", "overwrite", "on_error"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


VAL_FRACTION = 0.1
"""The share of train carved into val for a source without a val split (a CVAT export)."""

DEFAULTS = {f.name: f.default for f in dataclasses.fields(PrepareConfig)}
