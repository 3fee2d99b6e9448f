"""One training run, ``run``: the work of ``python -m facepars.train``.

The command line (its flags, its exit codes) is facepars.train, which imports
this module, and with it TensorFlow, only once its flags are checked. Code that
trains without the command line (tests, notebooks) calls ``run`` here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import keras
import tensorflow as tf
from absl import logging

from facepars.configs.common import TrainConfig
from facepars.core import cli, files
from facepars.core.classes import IGNORE_LABEL
from facepars.core.errors import FaceparsError
from facepars.data import integrity, pipeline, schema
from facepars.data.split_input import SplitInput
from facepars.models import build_model, configure_batchnorm, rundir
from facepars.training import (
    callbacks,
    distribute,
    initialization,
    loop,
    metrics,
    optimization,
    task,
)


class SetupError(FaceparsError):
    """A run that cannot start; said before any step runs."""


COMPATIBLE_KEYS = ("model", "width", "num_classes", "image_size")


def check_model_dir(model_dir: str, run_info: dict) -> dict | None:
    """Refuse a model_dir written by an incompatible run (other model or classes);
    returns the earlier run's config.json, if any."""
    path = rundir.path(model_dir, rundir.CONFIG)
    if not tf.io.gfile.exists(path):
        return None
    earlier = files.read_json(path)
    changed = [k for k in COMPATIBLE_KEYS if earlier.get(k) != run_info.get(k)]
    if changed:
        raise SetupError(
            f"{path}: model_dir holds a run with a different "
            + ", ".join(f"{k} ({earlier.get(k)} vs {run_info.get(k)})" for k in changed)
            + "; use a new --model_dir"
        )
    return earlier


@contextlib.contextmanager
def naming_xla_failures():
    """An op XLA cannot compile stops the first step; say so in one line."""
    try:
        yield
    except tf.errors.InvalidArgumentError as e:
        text = str(e)
        if "XLA" not in text and "tf2xla" not in text:
            raise
        detail = next((line.strip() for line in text.splitlines()
                       if "unsupported operations" in line or "Detected unsupported" in line),
                      text.strip().splitlines()[0])
        raise SetupError(f"the train step does not compile with XLA ({detail}); run with "
                         "--config.jit_compile=False or replace the op") from e


def preflight(manifest: schema.Manifest, splits, verify: bool) -> None:
    """What is cheap and sufficient at every start, preemption restarts included: every
    shard there at its size (one stat each). Contents are facepars.verify's job; its
    stamp vouches for them, and ``verify`` hashes only the shards it does not cover."""
    problems, unvouched = integrity.check_present(manifest, splits)
    if problems:
        raise SetupError(problems[0] + (f" (and {len(problems) - 1} more)"
                                        if len(problems) > 1 else ""))
    if verify:
        for shard in unvouched:
            if files.file_sha256(shard.path) != shard.sha256:
                raise SetupError(f"{shard.path}: checksum differs from the manifest "
                                 "(corrupt or changed since prepare; run facepars.verify)")
    elif unvouched:
        logging.info("%d shard(s) not verified since they were written: their contents are "
                     "checked as they are read (facepars.verify checks them all and leaves a "
                     "stamp train trusts)", len(unvouched))


def warn_about_sharding(manifest: schema.Manifest, splits, num_pipelines: int) -> None:
    """Fewer files than input pipelines still shards exactly, but hosts share files."""
    for split in splits:
        num_files = len(manifest.shards(split))
        if num_files < num_pipelines:
            logging.warning("%s has %d shard file(s) for %d input pipelines: every record is "
                            "still read once, but hosts share files and skip what is not "
                            "theirs. prepare --num_shards=%d (or a multiple) gives each its own.",
                            split, num_files, num_pipelines, num_pipelines)


def start(precision: str, strategy_name: str, tpu, cfg):
    """The strategy and the precision policy, checked against each other before any work."""
    strategy = distribute.make_strategy(strategy_name, tpu)
    keras.utils.set_random_seed(cfg.seed)  # the same initial weights on every run and worker
    if cfg.op_determinism:
        tf.config.experimental.enable_op_determinism()
    policy = distribute.choose_precision(precision, strategy)
    distribute.check_precision(policy, strategy)
    distribute.check_jit(cfg.jit_compile, strategy)
    keras.mixed_precision.set_global_policy(policy)
    logging.info("strategy: %s; precision %s", distribute.describe(strategy), policy)
    return strategy, policy


def check_data(cfg, manifest: schema.Manifest, strategy, verify: bool,
               stop_after_steps: int = 0) -> int:
    """Refuse data the run cannot use, in one line each; returns the steps per epoch."""
    preflight(manifest, (cfg.train_split, cfg.val_split), verify)
    records = manifest.num_records(cfg.train_split)
    per_call = cfg.steps_per_execution
    # One pass, in whole executions: the run stops, backs up and resumes between them.
    steps_per_epoch = cfg.steps_per_epoch or records // cfg.batch_size // per_call * per_call
    if steps_per_epoch < 1:
        raise SetupError(f"{records} training records do not fill {per_call} batch(es) of "
                         f"{cfg.batch_size}")
    for name, steps in (("steps_per_epoch", steps_per_epoch),
                        ("backup_every_steps", cfg.backup_every_steps),
                        ("stop_after_steps", stop_after_steps)):
        if steps % per_call:
            raise SetupError(f"{name}={steps} is not a multiple of steps_per_execution="
                             f"{per_call}: the run can stop and resume only between executions")
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        nearest = max(replicas, cfg.batch_size // replicas * replicas)
        raise SetupError(f"the global batch of {cfg.batch_size} does not split over {replicas} "
                         f"replicas: use --config.batch_size={nearest} or another multiple "
                         f"of {replicas}")
    warn_about_sharding(manifest, (cfg.train_split, cfg.val_split),
                        distribute.num_workers(strategy))
    return steps_per_epoch


def build_task(cfg, manifest: schema.Manifest, strategy, steps_per_epoch: int):
    """The network inside FaceParser, compiled with its optimizer, under the strategy."""
    table = manifest.class_table
    fill = IGNORE_LABEL if manifest.resize == "pad" else 0
    weights = cfg.loss.class_weights
    if weights is not None and len(weights) != table.num_classes:
        raise SetupError(f"--config.loss.class_weights has {len(weights)} weights for the "
                         f"{table.num_classes} classes of {table.name} ({', '.join(table.names)})")
    with strategy.scope():
        network = build_model(cfg.model, table.num_classes, manifest.image_size,
                              weights=cfg.weights or None, width=cfg.width)
        configure_batchnorm(network, cfg.bn_momentum, cfg.sync_batchnorm)
        frozen = (initialization.frozen_mask(network, cfg.model) if cfg.freeze_backbone_steps
                  else None)
        parser = task.FaceParser(network, table, cfg.loss, cfg.augment,
                                 fill_label=fill, seed=cfg.seed, frozen=frozen,
                                 frozen_steps=cfg.freeze_backbone_steps)
        lr = optimization.learning_rate(cfg.optimizer, cfg.schedule, cfg.epochs, steps_per_epoch,
                                        parser.learning_rate_scale)
        optimizer = optimization.make_optimizer(cfg.optimizer, cfg.ema_momentum, lr)
        parser.compile(optimizer=optimizer, jit_compile=cfg.jit_compile,
                       steps_per_execution=cfg.steps_per_execution)
        parser(tf.zeros((1, manifest.image_size, manifest.image_size, 3)))  # build
        optimizer.build(network.trainable_variables)  # its slots exist before a backup is made
    return parser, lr


def input_configs(cfg) -> tuple[pipeline.InputConfig, pipeline.InputConfig]:
    """The training and validation input settings (training from step 0)."""
    common = dict(global_batch_size=cfg.batch_size, shuffle_buffer=cfg.input.shuffle_buffer,
                  seed=cfg.seed)
    return (pipeline.InputConfig(**common, take=cfg.input.take or None),
            pipeline.InputConfig(**common, cache=cfg.input.cache))


def split_inputs(cfg, manifest: schema.Manifest, strategy) -> tuple[SplitInput, SplitInput]:
    """The training and validation splits as this worker reads them."""
    where = dict(strategy=strategy, manifest=manifest,
                 num_pipelines=distribute.num_workers(strategy),
                 pipeline_id=distribute.worker_index(strategy))
    train_cfg, val_cfg = input_configs(cfg)
    return (SplitInput(split=cfg.train_split, training=True, cfg=train_cfg, **where),
            SplitInput(split=cfg.val_split, training=False, cfg=val_cfg, **where))


def make_callbacks(cfg, manifest: schema.Manifest, model_dir: str, strategy, parser, lr,
                   profile_steps: str):
    """What the run shows (logs, TensorBoard) and what keeps it safe (NaN guard,
    checkpoints; backups are facepars.training.loop's), in the order they must run; returns them
    and the guard."""
    chief = distribute.is_chief(strategy)
    optimizer = parser.optimizer
    guard = callbacks.NanGuard(
        cfg.nan_retries, lambda f: optimization.lower_learning_rate(optimizer, lr, f),
        cfg.nan_lr_factor)
    cbs = [callbacks.TrainingLog(cfg.batch_size, cfg.epochs), guard]
    if cfg.ema_momentum > 0:  # validation on the EMA weights; checkpoints swap them in
        cbs.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    if cfg.schedule.name == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(
            "val_loss", factor=cfg.schedule.plateau_factor, patience=cfg.schedule.plateau_patience,
            min_lr=cfg.schedule.min_learning_rate))
    if cfg.early_stopping_patience:
        cbs.append(keras.callbacks.EarlyStopping("val_loss", patience=cfg.early_stopping_patience))
    images, masks = pipeline.first_records(manifest, cfg.val_split,
                                           cfg.overlay_images if chief else 0)
    tensorboard = rundir.path(model_dir, rundir.TENSORBOARD)
    cbs.append(callbacks.Summaries(tensorboard if chief else None, manifest.class_table,
                                   images, masks))
    if chief:
        profile = tuple(int(s) for s in profile_steps.split(",")) if profile_steps else 0
        cbs += [callbacks.NetworkCheckpoints(model_dir),
                keras.callbacks.TensorBoard(tensorboard, write_graph=False, profile_batch=profile),
                callbacks.EpochHistory(rundir.path(model_dir, rundir.HISTORY))]
    cbs.append(loop.EvalPosition())
    return cbs, guard


def backup_dir(model_dir: str, strategy) -> str:
    """Where this worker's backup goes: each worker of a cluster keeps its own copy."""
    backup = rundir.path(model_dir, rundir.BACKUP)
    if distribute.num_workers(strategy) > 1:
        backup = files.join(backup, f"worker-{distribute.worker_index(strategy)}")
    return backup


def start_from(parser, cfg, table, backup: loop.Backup, init_from: str | None,
               init_modules: str, earlier: dict | None):
    """Copy ``init_from`` into a run that starts afresh; a run with a backup resumes
    from it instead. Returns what config.json records of the initialisation."""
    if not init_from:
        return None
    modules = initialization.parse_modules(init_modules)
    if backup.manager.latest_checkpoint:
        logging.info("%s holds a backup: resuming from it; --init_from=%s is ignored",
                     backup.directory, init_from)
        return (earlier or {}).get("init_from")
    return initialization.initialize(parser.network, cfg.model, cfg.width, table, init_from,
                                     modules).to_json()


def run(cfg: TrainConfig, data_dir: str, model_dir: str, strategy_name: str = "auto", *, tpu=None,
        precision: str = "auto", profile_steps: str = "", verify_data: bool = False,
        preemption: loop.Preemption | None = None, init_from: str | None = None,
        init_modules: str = cli.ALL_MODULES, stop_after_steps: int = 0) -> dict:
    """One training run; returns a summary (best scores, steps, weights checksum).

    Resumes from model_dir's backup if there is one; otherwise starts from
    ``init_from``'s ``init_modules`` when given. On SIGTERM or Ctrl-C it stops at
    a step boundary, saves a backup there and raises ``loop.Preempted``.
    """
    preemption = preemption or loop.Preemption()
    strategy, policy = start(precision, strategy_name, tpu, cfg)
    manifest = schema.Manifest.load(data_dir)
    table = manifest.class_table
    steps_per_epoch = check_data(cfg, manifest, strategy, verify_data, stop_after_steps)
    card = rundir.ModelCard(table, manifest.image_size, manifest.resize, cfg.model, cfg.width,
                            manifest.framing)
    run_info = {**card.to_json(), "num_classes": table.num_classes,
                "data_dir": data_dir, "precision": policy,
                "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                "steps_per_epoch": steps_per_epoch, "config": dataclasses.asdict(cfg)}
    earlier = check_model_dir(model_dir, run_info)
    parser, lr = build_task(cfg, manifest, strategy, steps_per_epoch)
    backup = loop.Backup(backup_dir(model_dir, strategy), parser)
    run_info["init_from"] = start_from(parser, cfg, table, backup, init_from, init_modules,
                                       earlier)
    if distribute.is_chief(strategy):
        tf.io.gfile.makedirs(model_dir)
        files.write_json_atomic(rundir.path(model_dir, rundir.CONFIG), run_info)

    train_input, val_input = split_inputs(cfg, manifest, strategy)
    cbs, guard = make_callbacks(cfg, manifest, model_dir, strategy, parser, lr, profile_steps)
    with preemption.watching(), naming_xla_failures():
        plan = loop.Plan(cfg.epochs, steps_per_epoch, cfg.backup_every_steps, stop_after_steps)
        history = loop.fit(parser, plan=plan, train=train_input, val=val_input, callbacks=cbs,
                           backup=backup, preemption=preemption,
                           workers=distribute.num_workers(strategy),
                           verbose=1 if sys.stdout.isatty() else 2)
    return summarize(parser, history, guard)


def summarize(parser, history, guard) -> dict:
    """The run's summary; prints the last validation scores and the weights checksum."""
    summary = {"steps": int(parser.optimizer.iterations.numpy()),
               "epochs_run": len(history.epoch), "nan_restores": guard.restores,
               "failure": guard.failure,
               "weights_checksum": callbacks.weights_checksum(parser.network)}
    if history.epoch:
        summary["last"] = {k: float(v[-1]) for k, v in history.history.items()}
    val_scores = parser.confusion.scores() if history.epoch else None
    if val_scores:
        summary["val_scores"] = val_scores
        summary["val_confusion"] = parser.confusion.confusion.numpy().tolist()
        print("\nvalidation, last epoch:\n" + metrics.score_table(val_scores, parser.class_table))
    logging.info("finished: %d steps, weights checksum %s", summary["steps"],
                 summary["weights_checksum"])
    print(f"final weights checksum: {summary['weights_checksum']} after {summary['steps']} steps")
    return summary
