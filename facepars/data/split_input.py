"""A split as a distributed run reads it: its dataset (for training, from any step),
the steps of one evaluation pass, and, when tf.data fails inside a step, which
record of it was bad (facepars.data.bad_records)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from facepars.data import bad_records, pipeline, schema
from facepars.data.pipeline import InputConfig


@dataclasses.dataclass(frozen=True)
class SplitInput:
    """``split`` of ``manifest`` read with ``cfg`` under ``strategy``, by one input
    pipeline per worker: this worker's is ``pipeline_id`` of ``num_pipelines``."""

    strategy: tf.distribute.Strategy
    manifest: schema.Manifest
    split: str
    training: bool
    cfg: InputConfig
    num_pipelines: int = 1
    pipeline_id: int = 0

    def dataset(self, start_step: int = 0):
        """The distributed dataset; training input starts where ``start_step`` reads."""
        cfg = dataclasses.replace(self.cfg, start_step=start_step) if self.training else self.cfg
        return pipeline.distributed_dataset(self.strategy, self.manifest, self.split,
                                            self.training, cfg)

    def steps_per_pass(self) -> int:
        """Batches of one evaluation pass (every record once, full batches everywhere)."""
        return pipeline.eval_steps(self.manifest, self.split, self.cfg, self.num_pipelines)

    def naming_bad_records(self, step: Callable[[], int]):
        """A context in which an input error becomes one naming the bad shard and
        record; ``step()`` is the step (or evaluation batch) being read then."""
        return bad_records.naming_bad_records(self.manifest, self.split, self.training,
                                              self.cfg, step, self.num_pipelines,
                                              self.pipeline_id)
