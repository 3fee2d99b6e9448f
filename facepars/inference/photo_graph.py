"""A whole photo through one graph: its faces found, aligned, parsed and put back.

What ``predict`` does to a photo (facepars.inference.predictor.Predictor.predict_faces with
MTCNN's faces), written as TensorFlow ops so that it runs in one traced function
and inside the exported SavedModel (``parse_photos``, facepars.export):

1. MTCNN's cascade finds the faces (facepars.faces.mtcnn_graph); those below the
   score and width thresholds are dropped, as ``detection.find`` drops them.
2. Each face's five points are mapped onto the model's framing by the
   least-squares similarity (facepars.faces.alignment.similarity), and its crop is
   cut as ``imaging.warp`` cuts training crops: a face much larger than the
   crop is first box-averaged by a whole factor, then sampled bilinearly.
3. The crops go through the network as one batch.
4. Each face's probabilities are warped back (bilinear) into the photo window
   its crop covers, and each pixel takes the labels of the face most sure it
   is not background there (``Predictor.merge_crops``' rule).

Geometry is float64 (a few numbers per face), pixels float32. Pixel centres
sit at whole numbers, as everywhere in facepars.
"""

from __future__ import annotations

import tensorflow as tf

from facepars.faces.detection import FaceFilter
from facepars.faces.mtcnn_graph import Cascade
from facepars.inference import serving
from facepars.models import to_model_input


def similarity(source: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """(N, 2, 3) similarities mapping each (5, 2) point set of ``source`` (N, 5, 2)
    onto ``target`` (5, 2) by least squares, no reflection.

    In two dimensions the fit has a closed form: with centred points as complex
    numbers, scale * rotation = sum(conj(s) t) / sum(|s|^2); the same matrix as
    facepars.faces.alignment.similarity's Umeyama fit.
    """
    target = tf.cast(target, tf.float64)
    mean_s = tf.reduce_mean(source, 1, keepdims=True)
    mean_t = tf.reduce_mean(target, 0)
    s, t = source - mean_s, target - mean_t
    norm = tf.maximum(tf.reduce_sum(s ** 2, [1, 2]), 1e-12)
    a = tf.reduce_sum(s[..., 0] * t[:, 0] + s[..., 1] * t[:, 1], 1) / norm
    b = tf.reduce_sum(s[..., 0] * t[:, 1] - s[..., 1] * t[:, 0], 1) / norm
    linear = tf.reshape(tf.stack([a, -b, b, a], 1), [-1, 2, 2])
    shift = mean_t - tf.linalg.matvec(linear, mean_s[:, 0])
    return tf.concat([linear, shift[..., None]], 2)


def _inverse(matrix: tf.Tensor) -> tf.Tensor:
    """The inverse of one 2x3 affine matrix."""
    full = tf.concat([matrix, tf.constant([[0.0, 0.0, 1.0]], tf.float64)], 0)
    return tf.linalg.inv(full)[:2]


def _shifted(matrix: tf.Tensor, dx, dy, factor) -> tf.Tensor:
    """imaging.shifted: ``matrix`` for a window starting at (dx, dy), reduced by ``factor``."""
    start = tf.stack([tf.cast(dx, tf.float64), tf.cast(dy, tf.float64)])
    return tf.concat([matrix[:, :2] * tf.cast(factor, tf.float64),
                      (tf.linalg.matvec(matrix[:, :2], start) + matrix[:, 2])[:, None]], 1)


def _projective(matrix: tf.Tensor) -> tf.Tensor:
    """ImageProjectiveTransformV3's 8 numbers for a 2x3 output -> input matrix."""
    return tf.cast(tf.concat([tf.reshape(matrix, [6]), tf.zeros([2], tf.float64)], 0)[None],
                   tf.float32)


def crop(photo: tf.Tensor, matrix: tf.Tensor, size: int) -> tf.Tensor:
    """The size x size crop ``matrix`` (photo -> crop pixels) frames, float32 levels,
    black outside: imaging.warp for images, in graph ops."""
    scale = tf.sqrt(tf.abs(tf.linalg.det(matrix[:, :2])))
    factor = tf.where(scale < 0.5, tf.maximum(tf.cast(1.0 / scale, tf.int32), 1), 1)
    height, width = tf.shape(photo)[0] // factor, tf.shape(photo)[1] // factor
    pixels = tf.cast(photo[:height * factor, :width * factor], tf.float32)
    # A whole-factor area resize is the box average Pillow's reduce takes (then rounds).
    reduced = tf.round(tf.image.resize(pixels, [height, width], method="area"))
    half = tf.cast(factor - 1, tf.float64) / 2
    back = _inverse(_shifted(matrix, half, half, factor))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=reduced[None], transforms=_projective(back), output_shape=[size, size],
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    return tf.round(out)


def aligned_crops(photo: tf.Tensor, landmarks: tf.Tensor, framing, size: int):
    """Each face (N, 5, 2 points) aligned to ``framing``: its photo -> crop matrix
    (N, 2, 3) float64 and its crop (N, size, size, 3), float32 levels."""
    matrices = similarity(landmarks, framing)
    crops = tf.map_fn(lambda m: crop(photo, m, size), matrices,
                      fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
    return matrices, crops


def footprint(matrix: tf.Tensor, size, height, width, margin: int = 2):
    """imaging.footprint in graph ops: (y0, y1, x0, x1) of the photo window the crop
    covers, empty (y1 <= y0 or x1 <= x0) when it lies outside the photo."""
    corners = tf.constant([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], tf.float64) \
        * tf.cast(size, tf.float64)
    inverse = _inverse(matrix)
    points = tf.linalg.matvec(inverse[:, :2], corners) + inverse[:, 2]
    low = tf.cast(tf.floor(tf.reduce_min(points, 0)), tf.int32) - margin
    high = tf.cast(tf.math.ceil(tf.reduce_max(points, 0)), tf.int32) + margin
    x0, y0 = tf.maximum(low[0], 0), tf.maximum(low[1], 0)
    x1, y1 = tf.minimum(high[0], width), tf.minimum(high[1], height)
    return y0, tf.maximum(y1, y0), x0, tf.maximum(x1, x0)


def warp_back(values: tf.Tensor, matrix: tf.Tensor, height, width):
    """Crop-space values (S, S, C) back onto the photo, inside the crop's footprint:
    the window (y0, y1, x0, x1), the values there (h, w, C) with the border blend
    divided out, and the crop's bilinear coverage of each window pixel (1 inside,
    0 outside, between on the border)."""
    y0, y1, x0, x1 = window = footprint(matrix, tf.shape(values)[0], height, width)
    both = tf.concat([values, tf.ones_like(values[..., :1])], -1)[None]
    back = tf.raw_ops.ImageProjectiveTransformV3(  # the op refuses an empty output
        images=both, transforms=_projective(_shifted(matrix, x0, y0, 1)),
        output_shape=tf.maximum(tf.stack([y1 - y0, x1 - x0]), 1), fill_value=tf.constant(0.0),
        interpolation="BILINEAR", fill_mode="CONSTANT")[0, :y1 - y0, :x1 - x0]
    coverage = back[..., -1]
    return window, back[..., :-1] / tf.maximum(coverage, 1e-6)[..., None], coverage


def face_on_photo(probs: tf.Tensor, matrix: tf.Tensor, height, width, with_probs: bool):
    """One face's crop probabilities (S, S, C) on the photo: its labels (H, W) uint8,
    its non-background mass (H, W) (0 where it does not reach) and, ``with_probs``,
    its probabilities (H, W, C). Work is confined to the window the crop covers."""
    (y0, y1, x0, x1), values, coverage = warp_back(probs, matrix, height, width)
    # Pixels the crop covers less than half carry no mass, so a face never wins a
    # pixel it barely reaches.
    mass = tf.where(coverage > 0.5, 1.0 - values[..., 0], 0.0)
    pad = [[y0, height - y1], [x0, width - x1]]
    out = (tf.pad(tf.cast(tf.argmax(values, -1), tf.uint8), pad), tf.pad(mass, pad))
    return out + (tf.pad(values, pad + [[0, 0]]),) if with_probs else out


def merge(probs: tf.Tensor, matrices: tf.Tensor, height, width, with_probs: bool = False):
    """Faces' crop probabilities (N >= 1, S, S, C) -> the photo's labels (H, W) uint8
    and, ``with_probs``, probabilities (H, W, C): each pixel from the face with the
    most non-background mass there, background where none reaches."""
    classes = tf.shape(probs)[-1]
    spec = (tf.TensorSpec([None, None], tf.uint8), tf.TensorSpec([None, None], tf.float32))
    if with_probs:
        spec += (tf.TensorSpec([None, None, probs.shape[-1]], tf.float32),)
    out = tf.map_fn(lambda i: face_on_photo(probs[i], matrices[i], height, width, with_probs),
                    tf.range(tf.shape(probs)[0]), fn_output_signature=spec)
    winner = tf.argmax(out[1], 0, output_type=tf.int32)[..., None]  # (H, W, 1)
    reached = tf.reduce_max(out[1], 0) > 0

    def pick(per_face):  # (N, H, W, ...) -> (H, W, ...) of the winning face
        order = [1, 2, 0] + list(range(3, per_face.shape.rank))
        return tf.gather(tf.transpose(per_face, order), winner, batch_dims=2)[:, :, 0]

    labels = tf.where(reached, pick(out[0]), 0)
    if not with_probs:
        return labels
    return labels, tf.where(reached[..., None], pick(out[2]),
                            tf.one_hot(tf.zeros_like(winner[..., 0]), classes))


def detected(cascade: Cascade, photo: tf.Tensor, keep: FaceFilter):
    """The faces ``parse`` parses (those ``keep.keeps``, in graph ops): boxes (N, 4),
    landmarks (N, 5, 2), scores (N,)."""
    boxes, points, scores = cascade.detect(photo)
    chosen = (scores >= keep.min_score) & (boxes[:, 2] - boxes[:, 0] >= keep.min_face)
    return (tf.boolean_mask(boxes, chosen), tf.boolean_mask(points, chosen),
            tf.boolean_mask(scores, chosen))


def parse(logits_fn, photo: tf.Tensor, landmarks: tf.Tensor, framing, size: int,
          classes: int, with_probs: bool = False):
    """uint8 photo (H, W, 3) and its faces' points (N, 5, 2) -> labels (H, W) uint8
    (and probabilities (H, W, C)): steps 2 to 4 of the module's docstring.

    ``logits_fn`` maps the (N, size, size, 3) [0, 1] crops to ``classes`` logits;
    ``framing`` is the model's five points in network pixels. No face: background.
    """
    height, width = tf.shape(photo)[0], tf.shape(photo)[1]

    def faces():
        matrices, crops = aligned_crops(photo, landmarks, framing, size)
        logits = tf.cast(logits_fn(to_model_input(crops)), tf.float32)
        return merge(tf.nn.softmax(logits), matrices, height, width, with_probs)

    def background():
        labels = tf.zeros([height, width], tf.uint8)
        return (labels, tf.one_hot(tf.cast(labels, tf.int32), classes)) if with_probs else labels

    return tf.cond(tf.shape(landmarks)[0] > 0, faces, background)


def parse_encoded(cascade: Cascade, logits_fn, image_bytes: tf.Tensor, framing, size: int,
                  classes: int, keep: FaceFilter) -> dict[str, tf.Tensor]:
    """Encoded photos (string [B], any sizes and formats, EXIF orientation applied) ->
    each one's label map as a PNG at its upright size, that size, and its faces:
    ``labels_png``, ``height``, ``width``, ``num_faces``, ``boxes`` (B, F, 4),
    ``landmarks`` (B, F, 5, 2), ``scores`` (B, F), zero-padded to the batch's largest
    face count F. The exported ``parse_photos`` signature.

    A photo that cannot be decoded fails the whole batch (INVALID_ARGUMENT): graph
    ops cannot skip one element of a batch.
    """
    def one(data):
        photo = serving.decode_photo(data)
        boxes, points, scores = detected(cascade, photo, keep)
        labels = parse(logits_fn, photo, points, framing, size, classes)
        return (tf.io.encode_png(labels[..., None]), tf.shape(photo)[0], tf.shape(photo)[1],
                tf.shape(scores)[0], tf.cast(boxes, tf.float32), tf.cast(points, tf.float32),
                scores)

    def ragged(*shape):
        return tf.RaggedTensorSpec([None, *shape], tf.float32, ragged_rank=0)

    png, height, width, count, boxes, points, scores = tf.map_fn(one, image_bytes, (
        tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.int32), ragged(4), ragged(5, 2), ragged()))
    return {"labels_png": png, "height": height, "width": width, "num_faces": count,
            "boxes": boxes.to_tensor(), "landmarks": points.to_tensor(),
            "scores": scores.to_tensor()}
