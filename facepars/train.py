r"""Train a face parser: ``python -m facepars.train``.

    python -m facepars.train --config=smoke --data_dir=/tmp/syn --model_dir=/tmp/run
    python -m facepars.train --config=pspnet_resnet50 --config.batch_size=64 \
        --data_dir=gs://bucket/faces256 --model_dir=gs://bucket/runs/psp --strategy=tpu

``--config`` is a name from facepars/configs or the path of a config file; any
field can be overridden with ``--config.FIELD=VALUE``. Rerunning the same command
after a crash or preemption resumes from the last backup in model_dir.

model_dir receives: config.json (the resolved config, the data's image size,
resize mode and class table, and what ``--init_from`` copied), last.keras and
best.keras (best val face-class mIoU, with best.json), history.csv, tensorboard/
and backup/ while running.

Fine-tuning: ``--init_from=RUN_OR_KERAS_FILE --init_modules=all|backbone[,decoder]``
starts from another run's weights (facepars.training.initialization): its classifier rows
carried by class name onto this data's class table, ``--config.freeze_backbone_steps=N``
holding the backbone still while the new head settles.

Preemption: SIGTERM (a spot VM's or a Cloud TPU's notice) or a first Ctrl-C
finishes the step in flight, saves a backup at that step and exits with
``facepars.training.loop.EXIT_PREEMPTED`` (143); rerunning the command continues at the
next step, over the records the epoch had not used yet, as if never stopped.
``--stop_after_steps=N`` stops the same way once this process has run N steps:
a time-boxed slot, rerun to continue.
"""

from __future__ import annotations

import math
import sys

from absl import flags
from ml_collections import config_flags

from facepars import configs
from facepars.core import cli

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.core.cli for the conventions all commands share."""
    config_flags.DEFINE_config_file("config", None, "Config name (facepars/configs) or file path.",
                                    lock_config=True)
    flags.DEFINE_string("data_dir", None, "Prepared data: the directory of manifest.json.")
    flags.DEFINE_string("model_dir", None, "Where checkpoints, logs and TensorBoard go (local or gs://).")
    cli.define_strategy_flags()
    flags.DEFINE_enum("precision", "auto", list(cli.PRECISIONS),
                      "auto: bfloat16 on TPU, float16 on GPU, float32 on CPU.")
    flags.DEFINE_string("profile_steps", "", "Profile steps A,B into TensorBoard (e.g. 10,15).")
    flags.DEFINE_string("init_from", None, "Start from this run's weights (a training "
                        "model_dir or .keras file of the same model and width); ignored when "
                        "model_dir holds a backup to resume.")
    flags.DEFINE_string("init_modules", cli.ALL_MODULES, "What --init_from copies: all, or "
                        "a comma list of backbone, decoder, classifier (classifier rows are "
                        "carried by class name; new classes start as in a fresh run).")
    flags.DEFINE_integer("stop_after_steps", 0, "Stop as on SIGTERM once this process has run "
                         "this many steps (backup saved, exit 143; the same command continues): "
                         "a time-boxed slot. 0: run to the end.", lower_bound=0)
    flags.DEFINE_bool("verify_data", False, "Hash every shard that no facepars.verify stamp "
                      "covers before the first step (each start; presence and size are "
                      "always checked).")


def main(argv):
    del argv
    from facepars import train_lib  # TensorFlow loads here, once the flags are checked
    from facepars.training import loop
    try:
        summary = train_lib.run(FLAGS.config, FLAGS.data_dir, FLAGS.model_dir, FLAGS.strategy,
                      tpu=FLAGS.tpu, precision=FLAGS.precision,
                      profile_steps=FLAGS.profile_steps, verify_data=FLAGS.verify_data,
                      init_from=FLAGS.init_from, init_modules=FLAGS.init_modules,
                      stop_after_steps=FLAGS.stop_after_steps)
    except loop.Preempted as e:
        print(f"train: {e}", file=sys.stderr)
        loop.exit_now(loop.EXIT_PREEMPTED)
    if summary["failure"]:
        print(f"train stopped: {summary['failure']}", file=sys.stderr)
        sys.exit(1)
    if not math.isfinite(summary.get("last", {}).get("loss", 0.0)):
        sys.exit(1)


def _resolve_config_names(argv: list[str]) -> list[str]:
    """Let ``--config=smoke`` name a packaged config file."""
    out = []
    for arg in argv:
        if arg.startswith("--config="):
            arg = "--config=" + configs.path_of(arg[len("--config="):])
        out.append(arg)
    return out


if __name__ == "__main__":
    cli.run(main, define_flags, required=("config", "data_dir", "model_dir"),
            argv=_resolve_config_names(sys.argv), inputs=("data_dir", "init_from"))
