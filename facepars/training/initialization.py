"""Start a run from a model that already exists: ``train --init_from=PATH``.

What is copied is chosen by module (``facepars.models.modules``): the backbone,
the decoder, the classifier, or all. Layers are matched by name, so the source
must be the same family at the same width (any input size: no weight depends on
it). The classifier's rows are carried by class name: a class both tables have
keeps its trained row, a class only the new table has keeps the row a fresh run
draws for it (the network is built under the run's seed first), a class only the
old table has is left out. The same idea as TF Model Garden's ``init_checkpoint``
with ``init_checkpoint_modules``, beyond it in carrying the head across tables.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf
from absl import logging

from facepars.core import cli, files
from facepars.core.classes import ClassTable
from facepars.core.errors import ConfigError
from facepars.models import MODULES, load_model, modules, rundir


def parse_modules(text: str) -> tuple[str, ...]:
    """``--init_modules``: ``all`` or a comma list of backbone, decoder, classifier."""
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    if names == (cli.ALL_MODULES,):
        return MODULES
    unknown = [m for m in names if m not in MODULES]
    if unknown or not names:
        raise ConfigError(f"--init_modules={text!r}: give {cli.ALL_MODULES} or a comma list of "
                          f"{', '.join(MODULES)}")
    return tuple(m for m in MODULES if m in names)


@dataclasses.dataclass(frozen=True)
class Carried:
    """What an initialisation copied: the run's config.json records it."""

    source: str
    modules: tuple[str, ...]
    layers: int
    classes_copied: tuple[str, ...] = ()
    classes_new: tuple[str, ...] = ()
    classes_dropped: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def load_source(path: str) -> tuple[keras.Model, rundir.ModelCard]:
    """The network and ModelCard of a run directory or ``.keras`` file."""
    if tf.io.gfile.exists(files.join(path, "saved_model.pb")):
        raise ConfigError(f"{path}: an exported SavedModel keeps its graph, not the Keras layers "
                          "a fine-tune copies by name; give the training run's model_dir or "
                          "its best.keras")
    try:
        keras_path, card = rundir.resolve(path)
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    return load_model(keras_path), card


def carry_rows(target: keras.layers.Layer, source: keras.layers.Layer, new: ClassTable,
               old: ClassTable) -> None:
    """Copy a classifier's per-class kernel columns and biases by class name."""
    values = [w.numpy() for w in target.weights]
    for value, old_value in zip(values, source.get_weights()):
        for i, name in enumerate(new.names):
            if name in old.names:
                value[..., i] = old_value[..., old.names.index(name)]
    target.set_weights(values)


def initialize(network: keras.Model, model: str, width: float, table: ClassTable,
               path: str, selected: tuple[str, ...]) -> Carried:
    """Copy ``selected`` modules of the model at ``path`` into ``network`` (built
    fresh for ``model``, ``width`` and ``table``); refuses another family or width."""
    source, card = load_source(path)
    if (card.model, card.width) != (model, width):
        raise ConfigError(f"--init_from={path} is {card.model} at width "
                          f"{card.width}; this run trains {model} at width {width}")
    old = card.table
    source_layers = modules(source, model)
    copied = 0
    for module, layers in modules(network, model).items():
        if module not in selected:
            continue
        by_name = {layer.name: layer for layer in source_layers[module]}
        for layer in layers:
            if module == "classifier":
                carry_rows(layer, by_name[layer.name], table, old)
            else:
                layer.set_weights(by_name[layer.name].get_weights())
            copied += 1
    carried = Carried(path, selected, copied)
    if "classifier" in selected:
        carried = dataclasses.replace(
            carried, classes_copied=tuple(n for n in table.names if n in old.names),
            classes_new=tuple(n for n in table.names if n not in old.names),
            classes_dropped=tuple(n for n in old.names if n not in table.names))
    logging.info("initialised from %s: %s (%d layers)%s", path, ", ".join(selected), copied,
                 f"; classes copied {list(carried.classes_copied)}, new "
                 f"{list(carried.classes_new)}, dropped {list(carried.classes_dropped)}"
                 if "classifier" in selected else "")
    return carried


def frozen_mask(network: keras.Model, model: str) -> list[bool]:
    """Per trainable variable of ``network``: does it belong to the backbone?"""
    backbone = {id(v) for layer in modules(network, model)["backbone"] for v in layer.weights}
    return [id(v) in backbone for v in network.trainable_variables]

