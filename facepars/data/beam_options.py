"""``--runner=beam``'s options, read without TensorFlow.

prepare and predict check them with their other flags (``check_flags``, which
``cli.run`` calls before TensorFlow loads), so a misspelt option or a missing
``facepars[beam]`` extra is answered at once. ``pipeline_options`` is the one
place that checks the extra; facepars.data.beam and facepars.inference.beam_corpus
run the pipelines.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from absl import flags

from facepars.core.errors import ConfigError

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

# The runner when the options name none: Beam's own, on this machine.
LOCAL_RUNNER = "FnApiRunner"


def check_flags() -> None:
    """With --runner=beam: the extra and --beam_pipeline_options (the flags of
    facepars.core.cli.define_runner_flags)."""
    if flags.FLAGS.runner == "beam":
        pipeline_options(flags.FLAGS.beam_pipeline_options, flags.FLAGS.workers)


def pipeline_options(options: str, workers: int) -> PipelineOptions:
    """Beam options from ``k=v,k=v`` (the convention of ``tfds build --beam_pipeline_options``).

    Without a runner, Beam's FnApiRunner runs ``workers`` processes on this machine
    (facepars.data.beam.pipeline says why not the DirectRunner), unless the options
    name ``direct_num_workers`` or ``direct_running_mode`` themselves.
    """
    with _beam_quiet():
        try:
            from apache_beam.options.pipeline_options import (
                DirectOptions,
                PipelineOptions,
                StandardOptions,
            )
        except ImportError as e:  # the optional facepars[beam] extra
            raise ConfigError("--runner=beam needs Apache Beam: pip install 'facepars[beam]'") \
                from e
        argv = [f"--{item.strip()}" for item in options.split(",") if item.strip()]
        opts = PipelineOptions(argv)
        known = opts.get_all_options()  # each call parses every option Beam defines
        unknown = [a for a in opts.get_all_options(retain_unknown_options=True)
                   if a not in known]
    if unknown:
        raise ConfigError(f"--beam_pipeline_options: unknown option(s) "
                          f"{', '.join(sorted(unknown))}")
    given = {arg[2:].split("=")[0] for arg in argv}  # named, even at Beam's default
    if "default_sdk_harness_log_level" not in given:
        # Beam's workers log every bundle at INFO; keep facepars's progress readable.
        opts = PipelineOptions(argv + ["--default_sdk_harness_log_level=WARNING"])
    if opts.view_as(StandardOptions).runner is None:
        # The local runner, with --workers processes unless the options say otherwise.
        opts.view_as(StandardOptions).runner = LOCAL_RUNNER
        direct = opts.view_as(DirectOptions)
        if "direct_num_workers" not in given:
            direct.direct_num_workers = workers
        if "direct_running_mode" not in given:
            direct.direct_running_mode = ("multi_processing" if direct.direct_num_workers > 1
                                          else "in_memory")
    return opts


@contextlib.contextmanager
def _beam_quiet():
    """Beam's warnings while it loads and reads the options: a line for a missing
    Google Cloud library (on the root logger), and one per parse of an unknown
    option (each parse of a PipelineOptions, over a hundred), which the one-line
    refusal above replaces."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
