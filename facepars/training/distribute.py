"""Choosing the distribution strategy and the precision policy."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from facepars.core.cli import STRATEGIES
from facepars.core.errors import FaceparsError


class StrategyError(FaceparsError):
    """The requested hardware is not there; the message says what was tried."""


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise StrategyError(f"no TPU reachable at {tpu or 'the local TPU VM'!r}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}. "
                            "On a TPU VM install facepars[tpu]; elsewhere use "
                            "--strategy=auto, mirrored or one_device") from e
    return tf.distribute.TPUStrategy(resolver)


def make_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """auto: a TPU if one is reachable, else all local GPUs, else the CPU."""
    if name == "tpu" or (name == "auto" and (tpu or os.environ.get("TPU_NAME"))):
        return _tpu_strategy(tpu)
    if name == "multi_worker":  # first: collectives must be set up before any other op
        if "TF_CONFIG" not in os.environ:
            raise StrategyError("--strategy=multi_worker reads the cluster from TF_CONFIG, "
                                "which is not set (see tpu/README.md for an example)")
        json.loads(os.environ["TF_CONFIG"])  # fail early on malformed JSON
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name in ("one_device", "auto"):
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    raise StrategyError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}")


def choose_precision(name: str, strategy: tf.distribute.Strategy) -> str:
    """auto: bfloat16 on TPU, float16 on GPU, float32 on CPU."""
    if name != "auto":
        return name
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"


def check_precision(policy: str, strategy: tf.distribute.Strategy) -> None:
    """Refuse a precision the devices lack before any step runs."""
    if policy == "mixed_float16" and isinstance(strategy, tf.distribute.TPUStrategy):
        raise StrategyError("TPUs have no float16 arithmetic: use --precision=mixed_bfloat16 "
                            "(or auto)")
    if policy == "mixed_bfloat16":
        for gpu in tf.config.list_physical_devices("GPU"):
            major, minor = tf.config.experimental.get_device_details(gpu).get(
                "compute_capability", (8, 0))
            if (major, minor) < (8, 0):
                raise StrategyError(f"{gpu.name} (compute capability {major}.{minor}) has no "
                                    "bfloat16 arithmetic (Ampere, 8.0, and newer have): use "
                                    "--precision=mixed_float16 (or auto)")


def check_jit(jit_compile: bool, strategy: tf.distribute.Strategy) -> None:
    """Refuse XLA across replicas on CPUs, which TensorFlow cannot run.

    XLA has no cross-device collectives on CPU devices ("Collectives are not yet
    implemented for CPU devices when compiling with XLA"), and MirroredStrategy
    on non-GPU devices compiles every replica into one cluster on the first
    device. Per-replica XLA works on GPUs and TPUs; on CPUs use one device.
    """
    if (jit_compile and strategy.num_replicas_in_sync > 1
            and not isinstance(strategy, tf.distribute.TPUStrategy)
            and any("GPU" not in d.upper() for d in strategy.extended.worker_devices)):
        raise StrategyError(f"jit_compile with {strategy.num_replicas_in_sync} replicas on CPU "
                            "devices: TensorFlow's XLA has no collectives on CPUs. Use "
                            "--config.jit_compile=False, or --strategy=one_device for XLA")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes summaries and checkpoints to the real model_dir."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().jobs
    )


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Hosts feeding the replicas: one input pipeline each."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec()
    return max(1, sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs))


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This host's input pipeline: its index among the chief and workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or num_workers(strategy) == 1:
        return 0
    spec = resolver.cluster_spec()
    chiefs = spec.num_tasks("chief") if "chief" in spec.jobs else 0
    return resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)


def describe(strategy: tf.distribute.Strategy) -> str:
    return (f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s) "
            f"on {', '.join(strategy.extended.worker_devices)}")
