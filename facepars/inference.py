"""Running a trained face parser on photos of any size, from Python.

``Predictor.load(path)`` takes a training run directory, a ``.keras`` file with
its run's config.json beside it, an exported SavedModel directory, or an
exported ``.tflite`` or ``.onnx`` file (with the export's class_table.json beside
it). All of them run the same mapping around the network (facepars.serving), so
they agree on probabilities, not only on labels.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from facepars import alignment, detection, files, imaging, rundir, serving
from facepars.errors import ConfigError
from facepars.models import to_model_input

# Where an exported SavedModel keeps its class table: files that libraries add
# beside a SavedModel, which the graph does not load, go under assets.extra/.
SAVED_MODEL_TABLE = os.path.join("assets.extra", rundir.CLASS_TABLE)

# Why a model can have no framing (facepars.data.framing), for the messages that refuse
# to align faces without one.
NO_FRAMING = ("the model records no face framing: its training data gave no face's five "
              "points (a class table without eyes, nose and mouth, or no training record "
              "with all of them visible)")


def warp_to_photo(values: np.ndarray, matrix: np.ndarray, height: int, width: int):
    """Crop-space values (S, S, C) back onto the photo, inside the crop's footprint.

    Returns ``(window, values, coverage)``: the photo window (y0, y1, x0, x1), the
    values there (h, w, C), and the bilinear weight of the crop at each of its
    pixels (1 inside, 0 outside, between on the border); None if the crop lies
    outside the photo. Bilinear on probabilities (Pillow has no multi-channel
    float images, hence TensorFlow's projective-transform kernel, on the host).
    """
    window = imaging.footprint(matrix, values.shape[0], height, width)
    if window is None:
        return None
    back = _warp_back(tf.constant(values, tf.float32), _transform(matrix, window),
                      tf.constant([window[1] - window[0], window[3] - window[2]])).numpy()
    return window, back[..., :-1], back[..., -1]


def _transform(matrix: np.ndarray, window) -> tf.Tensor:
    """ImageProjectiveTransform's 8 numbers: window pixels -> crop pixels."""
    m = imaging.shifted(matrix, window[2], window[0])
    return tf.constant([[m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2], 0.0, 0.0]],
                       tf.float32)


@tf.function(reduce_retracing=True)
def _warp_back(values, transform, size):
    """(h, w, C + 1): the values and, last, the crop's coverage, in the photo window.

    One graph for every crop and window size, so a video's frames run it without
    retracing and its ops use every core.
    """
    ones = tf.ones_like(values[..., :1])
    both = tf.concat([values, ones], -1)[None]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=both, transforms=transform, output_shape=size, fill_value=tf.constant(0.0),
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]


@tf.function(reduce_retracing=True)
def _face_on_photo(values, transform, size, with_probs: bool):
    """A face's labels, non-background mass (and probabilities) in its photo window.

    The coverage divides the border blend back out; pixels the crop covers less
    than half carry no mass, so a face never wins a pixel it barely reaches.
    """
    back = _warp_back(values, transform, size)
    coverage = tf.maximum(back[..., -1], 1e-6)
    mass = tf.where(coverage > 0.5, 1.0 - back[..., 0] / coverage, 0.0)
    labels = tf.cast(tf.argmax(back[..., :-1], -1), tf.uint8)  # the division keeps the order
    if not with_probs:
        return labels, mass
    return labels, mass, back[..., :-1] / coverage[..., None]


@dataclasses.dataclass
class Prediction:
    labels: np.ndarray                       # uint8 (H, W) class ids
    probabilities: np.ndarray | None = None  # float32 (H, W, C)
    faces: list | None = None                # detection.Face per parsed face (predict_faces)


def tflite_logits_fn(model: bytes):
    """A TFLite model (fixed batch 1) as a logits function over (B, S, S, 3) [0, 1] input.

    A full-integer model takes raw uint8 pixels through its input quantisation.
    """
    interpreter = tf.lite.Interpreter(model_content=model)
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


def keras_logits_fn(network):
    """A Keras network as one traced function over (B, S, S, 3) [0, 1] input.

    Called eagerly, a Keras model runs layer by layer from Python: 9x slower than
    the same graph in its SavedModel (bench/predict_bench.py). One signature with
    a free batch size keeps it to one trace for every batch.
    """
    size = network.input_shape[1]
    return tf.function(lambda x: network(x, training=False), input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32)])


# Exported single-file models, by extension: how to run them.
FILE_BACKENDS = {".tflite": tflite_logits_fn, ".onnx": onnx_logits_fn}


class Predictor:
    """``Predictor.load(path).predict(photo)`` -> Prediction at the photo's size."""

    def __init__(self, logits_fn, info: dict, in_graph: bool = True):
        """``in_graph``: ``logits_fn`` is TensorFlow ops (a Keras network, a
        SavedModel) and can run inside a tf.function and a strategy; False for the
        TFLite and ONNX Runtime backends, which take numpy on the host."""
        self.logits_fn, self.info, self.in_graph = logits_fn, info, in_graph
        self.table = rundir.class_table(info)
        self.image_size, self.resize = info["image_size"], info["resize"]

    @classmethod
    def load(cls, path: str) -> "Predictor":
        if tf.io.gfile.exists(files.join(path, "saved_model.pb")):
            loaded = tf.saved_model.load(path)  # kept: its signatures use its variables
            info = files.read_json(files.join(path, SAVED_MODEL_TABLE))
            return cls(lambda x: loaded.signatures["network"](images=x)["logits"], info)
        backend = FILE_BACKENDS.get(os.path.splitext(path)[1])
        if backend is not None:
            with tf.io.gfile.GFile(path, "rb") as f:
                model = f.read()
            info = files.read_json(files.join(os.path.dirname(path), rundir.CLASS_TABLE))
            return cls(backend(model), info, in_graph=False)
        network, info = rundir.load(path)
        return cls(keras_logits_fn(network), info)

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
        framing = self.info.get("framing")
        return None if framing is None else np.asarray(framing["points"], np.float64)

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

    def parse_crops(self, photo: np.ndarray, faces: list) -> tuple[list, np.ndarray]:
        """(photo -> crop matrices, crop probabilities (N, S, S, C)) of each face, aligned.

        The first half of ``predict_faces``: video (facepars.tracking) blends these
        with the previous frame's before they go back onto the photo.
        """
        framing = self.framing
        if framing is None:
            raise ConfigError(f"{NO_FRAMING}; parse whole photos (--faces=whole)")
        matrices = [alignment.similarity(f.landmarks, framing) for f in faces]
        if not matrices:
            size = self.image_size
            return [], np.zeros((0, size, size, self.table.num_classes), np.float32)
        crops = np.stack([imaging.warp(photo, m, self.image_size, nearest=False,
                                       fill=(0, 0, 0)) for m in matrices])
        return matrices, tf.nn.softmax(self.network_logits(crops)).numpy()

    def merge_crops(self, size: tuple[int, int], faces: list, matrices: list,
                    crop_probs: np.ndarray, probabilities: bool = False) -> Prediction:
        """The second half of ``predict_faces``: crop probabilities back onto the photo."""
        height, width = size
        best = np.zeros((height, width), np.float32)  # the winning face's non-background mass
        labels = np.zeros((height, width), np.uint8)
        probs = None
        if probabilities:
            probs = np.zeros((height, width, self.table.num_classes), np.float32)
            probs[..., 0] = 1.0
        for matrix, face_prob in zip(matrices, crop_probs):
            window = imaging.footprint(matrix, face_prob.shape[0], height, width)
            if window is None:
                continue
            y0, y1, x0, x1 = window
            face_labels, mass, *values = (t.numpy() for t in _face_on_photo(
                tf.constant(face_prob, tf.float32), _transform(matrix, window),
                tf.constant([y1 - y0, x1 - x0]), probs is not None))
            wins = mass > best[y0:y1, x0:x1]
            best[y0:y1, x0:x1][wins] = mass[wins]
            labels[y0:y1, x0:x1][wins] = face_labels[wins]
            if probs is not None:
                probs[y0:y1, x0:x1][wins] = values[0][wins]
        return Prediction(labels, probs, list(faces))


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
            raise ConfigError(f"{predictor.info.get('model')}: {NO_FRAMING}; use --faces=whole")
    if detector is None or predictor.framing is None:
        return "whole", None
    return "detect", detector
