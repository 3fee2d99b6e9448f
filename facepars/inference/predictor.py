"""Running a trained face parser on photos of any size, from Python.

``Predictor.load(path)`` takes a training run directory, a ``.keras`` file with
its run's config.json beside it, an exported SavedModel directory, or an
exported ``.tflite`` or ``.onnx`` file (with the export's class_table.json beside
it). All of them run the same mapping around the network (facepars.inference.serving), so
they agree on probabilities, not only on labels.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from facepars.core import files
from facepars.core.errors import ConfigError
from facepars.faces import detection
from facepars.faces.detection import FaceFilter
from facepars.inference import photo_graph, serving
from facepars.models import rundir, to_model_input
from facepars.models.rundir import ModelCard

# Where an exported SavedModel keeps its class table: files that libraries add
# beside a SavedModel, which the graph does not load, go under assets.extra/.
SAVED_MODEL_TABLE = os.path.join("assets.extra", rundir.CLASS_TABLE)

# Why a model can have no framing (facepars.data.framing), for the messages that refuse
# to align faces without one.
NO_FRAMING = ("the model records no face framing: its training data gave no face's five "
              "points (a class table without eyes, nose and mouth, or no training record "
              "with all of them visible)")


@dataclasses.dataclass
class Prediction:
    labels: np.ndarray                       # uint8 (H, W) class ids
    probabilities: np.ndarray | None = None  # float32 (H, W, C)
    faces: list | None = None                # detection.Face per parsed face (predict_faces)


def _tflite_interpreter(model: bytes):
    """LiteRT's own runtime (ai-edge-litert), the successor of ``tf.lite.Interpreter``,
    which TensorFlow deprecates; that one only where LiteRT has no wheel (Windows)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model)


def tflite_logits_fn(model: bytes):
    """A TFLite model (fixed batch 1) as a logits function over (B, S, S, 3) [0, 1] input.

    A full-integer model takes raw uint8 pixels through its input quantisation.
    """
    interpreter = _tflite_interpreter(model)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def logits(x):
        results = []
        for image in np.asarray(x, np.float32):
            if inp["dtype"] != np.float32:
                scale, zero = inp["quantization"]
                image = np.clip(np.round(image / scale + zero), 0, 255).astype(inp["dtype"])
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            results.append(interpreter.get_tensor(out["index"])[0])
        return tf.constant(np.stack(results), tf.float32)
    return logits


def onnx_logits_fn(model: bytes):
    """An ONNX model (from facepars.export --onnx) as a logits function, on onnxruntime.

    A model with a fixed batch size runs the input in chunks of that size.
    """
    import onnxruntime  # the facepars[onnx] extra
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    name, batch = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]
    step = batch if isinstance(batch, int) else None

    def logits(x):
        x = np.asarray(x, np.float32)
        chunks = [x[i:i + step] for i in range(0, len(x), step)] if step else [x]
        return tf.constant(np.concatenate([session.run(None, {name: c})[0] for c in chunks]))
    return logits


def keras_logits_fn(network, size: int):
    """A Keras network as one traced function over (B, size, size, 3) [0, 1] input.

    Called eagerly, a Keras model runs layer by layer from Python, several times
    slower than the same graph (bench/predict_bench.py). One signature with a free
    batch size keeps it to one trace for every batch.
    """
    return tf.function(lambda x: network(x, training=False), input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32)])


# Exported single-file models, by extension: how to run them.
FILE_BACKENDS = {".tflite": tflite_logits_fn, ".onnx": onnx_logits_fn}


class Predictor:
    """``Predictor.load(path).predict(photo)`` -> Prediction at the photo's size."""

    def __init__(self, logits_fn, card: ModelCard, in_graph: bool = True):
        """``in_graph``: ``logits_fn`` is TensorFlow ops (a Keras network, a
        SavedModel) and can run inside a tf.function and a strategy; False for the
        TFLite and ONNX Runtime backends, which take numpy on the host."""
        self.logits_fn, self.card, self.in_graph = logits_fn, card, in_graph
        self.table, self.image_size, self.resize = card.table, card.image_size, card.resize
        self._photo_graphs = {}  # (cascade, filter, probabilities) -> traced whole-photo parse

    @classmethod
    def load(cls, path: str) -> "Predictor":
        if tf.io.gfile.exists(files.join(path, "saved_model.pb")):
            loaded = tf.saved_model.load(path)  # kept: its signatures use its variables
            card = ModelCard.read(files.join(path, SAVED_MODEL_TABLE))
            return cls(lambda x: loaded.signatures["network"](images=x)["logits"], card)
        backend = FILE_BACKENDS.get(os.path.splitext(path)[1])
        if backend is not None:
            with tf.io.gfile.GFile(path, "rb") as f:
                model = f.read()
            card = ModelCard.read(files.join(os.path.dirname(path), rundir.CLASS_TABLE))
            return cls(backend(model), card, in_graph=False)
        network, card = rundir.load(path)
        return cls(keras_logits_fn(network, card.image_size), card)

    def network_logits(self, batch) -> tf.Tensor:
        """uint8 network-size inputs (B, S, S, 3), as the records hold them -> float32 logits."""
        return tf.cast(self.logits_fn(to_model_input(batch)), tf.float32)

    def photo_logits(self, photo: np.ndarray, out_size: tuple[int, int] | None = None) -> tf.Tensor:
        """float32 logits (H, W, C) of one photo, at ``out_size`` (default: the photo's size).

        ``out_size`` serves masks published at another size than their photo
        (CelebAMask-HQ's are half).
        """
        x, _ = serving.network_input(tf.constant(photo)[None], self.image_size, self.resize)
        height, width = out_size or photo.shape[:2]
        box = serving.content_box(height, width, self.image_size, self.resize)
        return serving.photo_logits(self.logits_fn(x), box, height, width)[0]

    def predict_batch(
        self, photos: list[np.ndarray], probabilities: bool = False
    ) -> list[Prediction]:
        """Photos of any sizes, through the network as one batch."""
        prepared = [serving.network_input(tf.constant(p)[None], self.image_size, self.resize)
                    for p in photos]
        logits = self.logits_fn(tf.concat([x for x, _ in prepared], 0))
        out = []
        for i, (photo, (_, box)) in enumerate(zip(photos, prepared)):
            full = serving.photo_logits(logits[i:i + 1], box, *photo.shape[:2])[0]
            labels = tf.argmax(full, -1, output_type=tf.int32).numpy().astype(np.uint8)
            out.append(Prediction(labels, tf.nn.softmax(full).numpy() if probabilities else None))
        return out

    def predict(self, photo: np.ndarray, probabilities: bool = False) -> Prediction:
        return self.predict_batch([photo], probabilities)[0]

    @property
    def framing(self) -> np.ndarray | None:
        """Where the training crops put the five face points (network pixels), if known."""
        return self.card.points

    def predict_faces(self, photo: np.ndarray, faces: list, probabilities: bool = False
                      ) -> Prediction:
        """Parse each face aligned as the training crops were, and merge them on the photo.

        Each face's five points are mapped onto the model's framing by a
        similarity transform; the crop is parsed, its probabilities are warped
        back (bilinear), and every photo pixel takes the labels of the face most
        sure it is not background there. Pixels no face covers are background.
        """
        matrices, crop_probs = self.parse_crops(photo, faces)
        return self.merge_crops(photo.shape[:2], faces, matrices, crop_probs, probabilities)

    def parse_photo(self, photo: np.ndarray, detector, keep: FaceFilter = FaceFilter(),
                    probabilities: bool = False) -> Prediction:
        """Find every face ``keep`` lets through, align, parse and merge them on the photo.

        With MTCNN (detection.MTCNNDetector) and a network in TensorFlow, the whole
        photo runs as one traced function (facepars.inference.photo_graph), as the exported
        ``parse_photos`` does; else the detector, then ``predict_faces``.
        """
        cascade = getattr(detector, "cascade", None)
        if cascade is None or not self.in_graph:
            found = detection.find(detector, photo, keep)
            return self.predict_faces(photo, found, probabilities)
        if self.framing is None:
            raise ConfigError(f"{NO_FRAMING}; parse whole photos (--faces=whole)")
        key = (id(cascade), keep, probabilities)
        if key not in self._photo_graphs:
            self._photo_graphs[key] = self._photo_graph(cascade, keep, probabilities)
        labels, probs, *faces = self._photo_graphs[key](np.ascontiguousarray(photo[..., :3]))
        return Prediction(labels.numpy(), probs.numpy() if probabilities else None,
                          detection.faces_of(*faces))

    def _photo_graph(self, cascade, keep: FaceFilter, probabilities: bool):
        """``parse_photo``'s traced function: uint8 photo -> labels, probabilities
        (empty unless asked), boxes, landmarks, scores."""
        size, classes, framing = self.image_size, self.table.num_classes, self.framing

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
                     autograph=False)
        def run(photo):
            boxes, points, scores = photo_graph.detected(cascade, photo, keep)
            out = photo_graph.parse(self.logits_fn, photo, points, framing, size, classes,
                                    probabilities)
            labels, probs = out if probabilities else (out, tf.zeros([0, 0, classes]))
            return labels, probs, boxes, points, scores
        return run

    def parse_crops(self, photo: np.ndarray, faces: list) -> tuple[np.ndarray, np.ndarray]:
        """(photo -> crop matrices (N, 2, 3), crop probabilities (N, S, S, C)) of each
        face, aligned (facepars.inference.photo_graph.aligned_crops).

        The first half of ``predict_faces``: video (facepars.inference.tracking) blends these
        with the previous frame's before they go back onto the photo.
        """
        framing = self.framing
        if framing is None:
            raise ConfigError(f"{NO_FRAMING}; parse whole photos (--faces=whole)")
        size = self.image_size
        if not faces:
            return np.zeros((0, 2, 3)), np.zeros((0, size, size, self.table.num_classes),
                                                 np.float32)
        matrices, crops = _aligned_crops(np.ascontiguousarray(photo[..., :3]),
                                         np.stack([f.landmarks for f in faces]), framing, size)
        return matrices.numpy(), tf.nn.softmax(self.network_logits(crops)).numpy()

    def merge_crops(self, size: tuple[int, int], faces: list, matrices: np.ndarray,
                    crop_probs: np.ndarray, probabilities: bool = False) -> Prediction:
        """The second half of ``predict_faces``: crop probabilities back onto the photo
        (facepars.inference.photo_graph.merge)."""
        height, width = size
        if not len(faces):
            labels = np.zeros((height, width), np.uint8)
            probs = np.eye(self.table.num_classes, dtype=np.float32)[labels] \
                if probabilities else None
            return Prediction(labels, probs, [])
        # The size as tensors: Python ints would trace the merge again for every size.
        out = _merge(tf.constant(crop_probs, tf.float32), tf.constant(matrices, tf.float64),
                     tf.constant(height, tf.int32), tf.constant(width, tf.int32), probabilities)
        if probabilities:
            return Prediction(out[0].numpy(), out[1].numpy(), list(faces))
        return Prediction(out.numpy(), None, list(faces))


# Without autograph (photo_graph writes its loops and branches as TF ops): half the
# first call's tracing time.
@tf.function(reduce_retracing=True, autograph=False)
def _aligned_crops(photo, landmarks, framing, size: int):
    return photo_graph.aligned_crops(photo, landmarks, framing, size)


@tf.function(reduce_retracing=True, autograph=False)
def _merge(probs, matrices, height, width, with_probs: bool):
    return photo_graph.merge(probs, matrices, height, width, with_probs)


def choose_mode(faces: str, predictor: Predictor):
    """(mode, detector) for --faces: detect when a detector and the model's framing exist."""
    if faces == "whole":
        return "whole", None
    detector = detection.default_detector()
    if faces == "detect":
        if detector is None:
            raise ConfigError("--faces=detect needs the detect extra: "
                              "pip install 'facepars[detect]'")
        if predictor.framing is None:
            raise ConfigError(f"{predictor.card.model}: {NO_FRAMING}; use --faces=whole")
    if detector is None or predictor.framing is None:
        return "whole", None
    return "detect", detector
