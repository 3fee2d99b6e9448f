"""Procedural faces with exact masks: the built-in data set of the demo and tests.

Each face is drawn from analytic shapes in a face-centred frame, so the label of
every pixel is known exactly, while the picture varies the way photos do: skin
tone, a light from one side on a rounded head (diffuse and a specular
highlight), exposure set for the face, background clutter (including
skin-coloured blobs), a neck and clothes, head position, scale and in-plane
rotation, hair in strands, brows as strokes of hairs, eye sockets, lids and
their crease, irises of an eye's colours, a nose narrow at the bridge and wide
at the wings, nostrils, the line between the lips, smiles showing teeth,
glasses on some faces, an occluder from the jaw or a cheek on a few, blur and
sensor noise. Only the image is blurred and noised; the mask stays exact. Drawn
that way MTCNN finds 95-98 % of them (65 % before the light, neck, sockets and
the rest), which is what lets the detector's path be tested on exact masks.

The nose and mouth sit where a photographed face has them, in eye distances
below the eyes: a model trained on crops aligned on these faces' five points
then finds a real face's parts where MTCNN's points put them. The nose has the
skin's colour and shows, as a photographed one does, by its relief under the
face's light: a lit side, a shaded one, a shadow cast beneath.

A face is a pure function of ``(seed, index)``, so a data set regenerates
bit-for-bit anywhere.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from facepars.core.classes import synthetic_id
from facepars.core.imaging import pillow_affine

_SKIN_TONES = np.array([[247, 214, 190], [236, 188, 150], [212, 160, 120],
                        [176, 122, 86], [130, 86, 58], [88, 56, 38]], np.float32)
_HAIR_COLOURS = np.array([[20, 16, 14], [60, 40, 25], [110, 75, 40],
                          [190, 150, 90], [150, 60, 30], [160, 160, 160]], np.float32)

_IRIS_COLOURS = np.array([[70, 45, 25], [110, 75, 40], [95, 110, 70], [80, 110, 140],
                          [40, 28, 20]], np.float32)  # brown, hazel, green, blue, dark

# The typical long side of a synthetic photo (prepare's --synthetic_size default).
BASE_SIZE = 320


def size_for(seed: int, index: int, base: int) -> tuple[int, int]:
    """Photo size for a face: around ``base`` pixels, portrait or landscape."""
    rng = np.random.default_rng([seed, index, 1])
    long_side = int(base * rng.uniform(1.0, 1.5))
    short_side = int(long_side * rng.uniform(0.7, 1.0))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def render(seed: int, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(image uint8 (H,W,3), mask uint8 (H,W))`` in the synthetic source's ids."""
    image, mask, _ = render_with_landmarks(seed, index, height, width)
    return image, mask


def render_with_landmarks(seed: int, index: int, height: int, width: int):
    """``render`` and the face's exact five points (5, 2), x, y in pixels, in
    facepars.faces.alignment.POINTS order: eye centres, nose tip, mouth corners.

    The face is drawn part by part, back to front. Four generators, each with its
    own draws in a fixed order: ``rng`` the pose, colours and which parts a face
    has; ``shape`` the nose's and mouth's proportions; ``look`` the light, clothes
    and exposure; ``strands`` the textures of hair, brows and eyes. What makes a
    drawn face pass for a photographed one draws on ``look`` and ``strands``, so a
    change to those details leaves each face's geometry and colours as they are.
    """
    rng = np.random.default_rng([seed, index])
    shape = np.random.default_rng([seed, index, 9])
    look = np.random.default_rng([seed, index, 7])
    strands = np.random.default_rng([seed, index, 10])
    face = _Face(_background(rng, height, width), rng)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    light = _Light(look)
    roundness = light.shade(face.u, face.v)
    _body(face, skin, roundness, look)
    _hair(face, rng, strands)
    _ears(face, skin, roundness, rng)
    eyes = _Eyes(rng, shape)
    _nose(face, eyes, skin, roundness, light, shape)
    _sockets(face, eyes)
    _glasses(face, eyes, rng)
    _eyeballs(face, eyes, rng, strands)
    _brows(face, eyes, rng, strands)
    mouth = _mouth(face, eyes, skin, rng, shape)
    _occluder(face, rng)
    _expose(face, look)
    return _camera(rng, face.image, face.u, face.v), face.mask, face.landmarks(eyes, mouth)


class _Face:
    """A photo being drawn: the image (float), its exact mask, and every pixel's
    place (u, v) in the face frame: +u right, +v down, face radius 1, the face's
    centre, half-height ``scale`` in pixels and in-plane rotation drawn from ``rng``."""

    def __init__(self, image: np.ndarray, rng):
        height, width = image.shape[:2]
        self.image, self.mask = image, np.zeros((height, width), np.uint8)
        side = min(height, width)
        self.scale = side * rng.uniform(0.22, 0.36)
        self.cy = height / 2 + rng.uniform(-0.15, 0.15) * side
        self.cx = width / 2 + rng.uniform(-0.15, 0.15) * side
        self.angle = np.deg2rad(rng.uniform(-25, 25))
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        dx, dy = xx - self.cx, yy - self.cy
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        self.u = (dx * cos + dy * sin) / self.scale
        self.v = (-dx * sin + dy * cos) / self.scale

    def paint(self, region, part: str, colour, shade=None):
        """Label ``region`` as ``part`` and colour it (times ``shade`` per pixel)."""
        colour = np.asarray(colour, np.float32)
        self.image[region] = colour if shade is None else colour * shade[region][:, None]
        self.mask[region] = synthetic_id(part)

    def on_skin(self, region):
        return region & (self.mask == synthetic_id("skin"))

    def landmarks(self, eyes: "_Eyes", mouth: "_Mouth") -> np.ndarray:
        """The five points in the face frame, then in pixels (the inverse of u, v)."""
        fu = np.array([-eyes.dx, eyes.dx, 0.0, -mouth.width, mouth.width])
        fv = np.array([eyes.y, eyes.y, eyes.nose_tip, mouth.y - mouth.smile,
                       mouth.y - mouth.smile])
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        return np.stack([self.cx + self.scale * (fu * cos - fv * sin),
                         self.cy + self.scale * (fu * sin + fv * cos)], 1)


class _Eyes:
    """Where the eyes are (height ``y``, half-distance ``dx``) and, in eye distances
    below them, the nose tip and the mouth. Photographed faces put the nose tip
    0.5-0.7 of the eyes' distance below them and the mouth 0.9-1.2 below
    (ArcFace's mean five points; MTCNN's on a real photo): drawn so, a real face
    aligned on MTCNN's points puts its nose and mouth where the model expects them."""

    def __init__(self, rng, shape):
        self.y, self.dx = rng.uniform(-0.25, -0.1), rng.uniform(0.26, 0.34)
        self.nose_tip = self.y + 2 * self.dx * shape.uniform(0.5, 0.7)
        self.mouth_y = self.y + 2 * self.dx * shape.uniform(0.9, 1.2)


def _body(face: _Face, skin, roundness, look):
    """Clothes and the neck, behind the head."""
    u, v = face.u, face.v
    face.paint((v > 1.35 + 0.12 * u ** 2) & (np.abs(u) < 2.6), "cloth", look.uniform(20, 230, 3),
               1.0 - 0.1 * np.clip(v - 1.35, 0, 1))
    face.paint((np.abs(u) < 0.4 - 0.05 * np.clip(v - 0.6, 0, 1)) & (v > 0.55) & (v < 1.5),
               "neck", skin * 0.8, roundness)


def _hair(face: _Face, rng, strands):
    """On most faces: hair in strands around the head, above a random hairline."""
    if rng.random() < 0.85:
        u, v = face.u, face.v
        hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]
        top = rng.uniform(-0.45, -0.15)
        region = (_ellipse(u, v, 0, -0.1, 0.95, 1.05) & ((v < top) | (np.abs(u) > 0.68)))
        face.paint(region, "hair", hair, _strands(strands, u, v))


def _ears(face: _Face, skin, roundness, rng):
    ear_y = rng.uniform(-0.1, 0.1)
    for cu, part in ((-0.76, "l_ear"), (0.76, "r_ear")):
        face.paint(_ellipse(face.u, face.v, cu, ear_y, 0.13, 0.22), part, skin * 0.92, roundness)


def _nose(face: _Face, eyes: _Eyes, skin, roundness, light, shape):
    """The face's skin and the nose on it: a bridge from between the eyes, widening
    to the wings; its rounded tip reaches a little below the point MTCNN gives (the
    nostrils' level), as a photographed nose's outline does. It has the skin's
    colour and stands out by its relief under the face's light."""
    u, v, eye_y, nose_tip = face.u, face.v, eyes.y, eyes.nose_tip
    wings = shape.uniform(0.09, 0.14)
    reach = np.clip((v - eye_y) / (nose_tip - eye_y), 0, 1)
    bridge = (v > eye_y + 0.03) & (v < nose_tip) & (np.abs(u) < 0.035 + 0.03 * reach)
    nose = bridge | _ellipse(u, v, 0, nose_tip - 0.04, wings, 0.05) | _ellipse(
        u, v, 0, nose_tip - 0.02, 0.05, 0.05)
    # The relief and its shadow reach no farther than this box around the nose:
    # shading the box alone saves shading the whole photo again.
    near = np.nonzero((np.abs(u) < 0.45) & (v > eye_y - 0.25) & (v < nose_tip + 0.3))
    shading = roundness.copy()
    if near[0].size:
        box = (slice(near[0].min(), near[0].max() + 1), slice(near[1].min(), near[1].max() + 1))
        shading[box] = light.shade(u[box], v[box],
                                   lambda u, v: _nose_relief(u, v, eye_y, nose_tip, wings))
    face.paint(_ellipse(u, v, 0, 0, 0.74, 1.0), "skin", skin, shading)
    face.paint(nose, "nose", skin, shading)
    for sign in (-1, 1):  # nostrils
        face.image[_ellipse(u, v, sign * wings * 0.45, nose_tip + 0.02, 0.03, 0.016)] = skin * 0.3


def _sockets(face: _Face, eyes: _Eyes):
    """The skin darkening towards each eye."""
    for sign in (-1, 1):
        d2 = ((face.u - sign * eyes.dx) / 0.22) ** 2 + ((face.v - eyes.y + 0.02) / 0.13) ** 2
        socket = face.on_skin(d2 < 1)
        face.image[socket] *= (0.72 + 0.28 * d2[socket])[:, None]


def _glasses(face: _Face, eyes: _Eyes, rng):
    """On some faces: clear lenses with a faint tint, a rim and a bridge."""
    if rng.random() < 0.3:
        u, v, eye_y, eye_dx = face.u, face.v, eyes.y, eyes.dx
        lens = _ellipse(u, v, -eye_dx, eye_y, 0.23, 0.17) | _ellipse(
            u, v, eye_dx, eye_y, 0.23, 0.17
        )
        bridge = (np.abs(u) < eye_dx - 0.2) & (np.abs(v - eye_y + 0.05) < 0.025)
        frame = rng.uniform(0, 80, 3)
        face.image[lens] = 0.85 * face.image[lens] + 0.15 * frame
        rim = lens & ~(
            _ellipse(u, v, -eye_dx, eye_y, 0.21, 0.15) | _ellipse(u, v, eye_dx, eye_y, 0.21, 0.15)
        )
        face.image[rim | bridge] = frame
        face.mask[lens | bridge] = synthetic_id("glasses")


def _eyeballs(face: _Face, eyes: _Eyes, rng, strands):
    """Each eye: the lid's crease above it, the white (grey in the corners), an iris
    ring, the pupil and the upper lid with its lashes."""
    u, v, eye_y, image = face.u, face.v, eyes.y, face.image
    iris = _IRIS_COLOURS[strands.integers(len(_IRIS_COLOURS))] * (rng.uniform(20, 120, 3) / 140
                                                                  + 0.5)
    whites = strands.uniform(0.9, 1.0)
    for sign, part in ((-1, "l_eye"), (1, "r_eye")):
        centre = sign * eyes.dx
        # The crease: a shadowed arc on the skin above the eye, which a photographed
        # eye has and a brow-like stroke must not be taken for.
        crease = face.on_skin(_ellipse(u, v, centre, eye_y + 0.01, 0.16, 0.1)
                              & ~_ellipse(u, v, centre, eye_y + 0.015, 0.15, 0.08)
                              & (v < eye_y))
        image[crease] *= 0.7
        region = _ellipse(u, v, centre, eye_y, 0.13, 0.06)
        across = np.clip(1 - ((u - centre) / 0.13) ** 2, 0, 1)
        face.paint(region, part, np.array([215, 210, 205]) * whites, 0.85 + 0.15 * across)
        ring = _ellipse(u, v, centre, eye_y, 0.06, 0.06)
        image[region & ring] = iris
        image[region & ring & ~_ellipse(u, v, centre, eye_y, 0.05, 0.05)] = iris * 0.5
        image[region & _ellipse(u, v, centre, eye_y, 0.024, 0.024)] = (12, 10, 10)
        image[region & (v < eye_y - 0.03)] = (45, 32, 30)


def _brows(face: _Face, eyes: _Eyes, rng, strands):
    """Hairs over skin, thinning towards the tail: a photographed brow is a stroke
    the skin shows through, not a solid patch."""
    u, v = face.u, face.v
    brow = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * 0.8
    brow_y = eyes.y - rng.uniform(0.12, 0.2)
    for sign, part in ((-1, "l_brow"), (1, "r_brow")):
        centre = sign * eyes.dx
        region = _ellipse(u, v + 0.15 * sign * (u - centre), centre, brow_y, 0.19, 0.035)
        tail = np.clip(sign * (u[region] - centre) / 0.19, 0, 1)
        hairs = 0.5 + 0.5 * np.sin(70 * u[region] + sign * 25 * v[region]
                                   + strands.uniform(0, 2 * np.pi))
        cover = ((0.9 - 0.4 * tail) * (0.55 + 0.45 * hairs))[:, None]
        face.image[region] = (1 - cover) * face.image[region] + cover * brow
        face.mask[region] = synthetic_id(part)


class _Mouth(NamedTuple):
    y: float       # the line between the lips at the middle
    width: float   # half the width, corner to middle
    smile: float   # how far the corners rise (0: no smile)


def _mouth(face: _Face, eyes: _Eyes, skin, rng, shape) -> _Mouth:
    """The mouth 0.7-1.0 of the eyes' distance across; half the faces smile: the
    corners rise by ``smile`` and draw apart, and most smiles open on the upper
    teeth (a laugh shows both rows). An open mouth drops its lower lip, so the
    lips keep their thickness around the opening. ``bent`` is v with the mouth's
    curve taken out."""
    u, mouth_y = face.u, eyes.mouth_y
    mouth_w = eyes.dx * shape.uniform(0.7, 1.0)
    smile = shape.uniform(0.02, 0.08) if shape.random() < 0.5 else 0.0
    mouth_w *= 1.0 + 1.5 * smile
    bent = face.v + smile * (u / mouth_w) ** 2
    opening = rng.uniform(0.0, 0.05) + (shape.uniform(0.0, 0.05) if smile else 0.0)
    opening = opening if opening > 0.015 else 0.0
    lip = skin * np.array([0.95, 0.6, 0.6]) * rng.uniform(0.8, 1.05)
    across = np.clip(1 - (u / mouth_w) ** 2, 0, None)  # 1 in the middle, 0 at the corners
    lips = _ellipse(u, bent, 0, mouth_y, mouth_w, 0.07)
    face.paint(lips & (bent < mouth_y), "u_lip", lip)
    # The lower lip drops most in the middle: the corners stay where they were.
    drop = 2 * opening * across
    face.paint((across > 0) & (bent >= mouth_y) & (bent < mouth_y + drop + 0.07 * np.sqrt(across)),
               "l_lip", lip * 1.08)
    face.image[lips & (np.abs(bent - mouth_y) < 0.014)] = lip * 0.45  # between the lips
    if opening:
        inner = (bent > mouth_y) & (bent < mouth_y + 2 * opening * (1 - (u / mouth_w) ** 2 / 0.64))
        face.paint(inner, "inner_mouth", (70, 20, 25))
        if smile:
            teeth = shape.uniform(190, 240) * np.array([1.0, 0.97, 0.9])
            face.image[inner & (bent < mouth_y + opening * shape.uniform(0.3, 1.0))] = teeth
            if shape.random() < 0.5:
                face.image[inner & (bent > mouth_y + opening * shape.uniform(1.4, 1.8))] = \
                    teeth * 0.9
    return _Mouth(mouth_y, mouth_w, smile)


def _occluder(face: _Face, rng):
    """On a few faces: something from the jaw or a cheek (a hand, a cup, a
    microphone), clear of the eyes and mostly of the mouth: over an eye MTCNN misses
    the face, and over a mouth corner it moves the corner measured from the mask."""
    if rng.random() < 0.2:
        around = rng.uniform(0, np.pi)
        region = _ellipse(face.u, face.v, 0.8 * np.cos(around), 0.95 * np.sin(around),
                          rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.3))
        face.paint(region, "occluder", rng.uniform(0, 255, 3))


def _expose(face: _Face, look):
    """Cameras expose for the face: a dark face in a dark scene is brightened."""
    skin = np.isin(face.mask, [synthetic_id(p) for p in ("skin", "nose", "l_ear", "r_ear")])
    level = face.image[skin].mean() if skin.any() else 128.0
    face.image *= np.clip(look.uniform(110, 140) / max(level, 1.0), 1.0, 2.0)


def compose(seed: int, index: int, height: int, width: int, num_faces: int,
            face_width: tuple[float, float] = (0.15, 0.4)):
    """Several synthetic faces on one canvas: a group photo with exact masks and landmarks.

    Each face is rendered on its own (with its rotation), possibly mirrored, and
    pasted where its mask is labelled, at a size that makes the face (skin and
    ears) ``face_width`` of the canvas width, at a place overlapping no earlier
    face. Returns ``(image, mask, [landmarks (5, 2)], [crop (image, mask, landmarks)])``,
    the crops being the faces as rendered (what a model trained on single faces
    sees), with their five points in the crop's pixels.
    """
    rng = np.random.default_rng([seed, index, 2])
    canvas = _background(rng, height, width)
    mask = np.zeros((height, width), np.uint8)
    taken = np.zeros((height, width), bool)
    all_landmarks, crops = [], []
    for face in range(num_faces):
        fraction = rng.uniform(*face_width)
        # The skin-and-ears width is 1.52 * scale, scale ~0.29 of the render's side.
        side = max(24, int(fraction * width / (1.52 * 0.29)))
        if side >= min(height, width):
            continue
        image, face_mask, landmarks = render_with_landmarks(seed, index * 1000 + face, side, side)
        if rng.random() < 0.5:  # mirrored: left and right parts and points swap
            image, face_mask = image[:, ::-1], _mirror_ids(face_mask[:, ::-1])
            landmarks = landmarks[[1, 0, 2, 4, 3]] * [-1, 1] + [side - 1, 0]
        for _ in range(20):
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            region = face_mask > 0
            if not (taken[top:top + side, left:left + side] & region).any():
                break
        else:
            continue
        window = (slice(top, top + side), slice(left, left + side))
        canvas[window][region] = image[region]
        mask[window][region] = face_mask[region]
        taken[window] |= region
        all_landmarks.append(landmarks + [left, top])
        crops.append((image, face_mask, landmarks))
    return np.clip(canvas, 0, 255).astype(np.uint8), mask, all_landmarks, crops


def _mirror_ids(mask: np.ndarray) -> np.ndarray:
    """Swap the synthetic source's left and right part ids (a mirrored face)."""
    swap = np.arange(256, dtype=np.uint8)
    for left, right in (("l_brow", "r_brow"), ("l_eye", "r_eye"), ("l_ear", "r_ear")):
        a, b = synthetic_id(left), synthetic_id(right)
        swap[a], swap[b] = b, a
    return swap[mask]


def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1.0


class _Light:
    """One light per face, from the front and to one side, with some ambient: shades
    the head as an ellipsoid (radii 0.74 and 1 in the face frame) with a relief on
    it (the nose), Lambertian with a specular highlight, and lets the relief cast
    its shadow. A photographed nose is skin-coloured: what shows it is this light
    (a lit side and a shaded one, a bright tip, a shadow beneath)."""

    def __init__(self, rng):
        direction = np.array([rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.3), 1.0])
        self.direction = direction / np.linalg.norm(direction)
        half = self.direction + [0.0, 0.0, 1.0]  # Blinn's half vector, camera straight ahead
        self.half = half / np.linalg.norm(half)
        self.shine = rng.uniform(0.1, 0.35)

    def shade(self, u, v, relief=None) -> np.ndarray:
        """Brightness factor per pixel; ``relief(u, v)`` is a height over the head."""
        nx, ny = u / 0.74, v
        nz = np.sqrt(np.clip(1 - nx ** 2 - ny ** 2, 0, 1))
        direct = 1.0
        if relief is not None:
            step = 0.004  # the surface's slope, by finite differences in the face frame
            height = relief(u, v)
            nx = nx - (relief(u + step, v) - height) / step
            ny = ny - (relief(u, v + step) - height) / step
            direct = 1.0 - self._shadow(u, v, height, relief)
        norm = np.sqrt(nx ** 2 + ny ** 2 + nz ** 2 + 1e-6)
        lambert = np.clip((nx * self.direction[0] + ny * self.direction[1]
                           + nz * self.direction[2]) / norm, 0, 1)
        shine = np.clip((nx * self.half[0] + ny * self.half[1] + nz * self.half[2]) / norm,
                        0, 1) ** 24
        return 0.5 + direct * (0.6 * lambert + self.shine * shine)

    def _shadow(self, u, v, height, relief) -> np.ndarray:
        """How much of the direct light the relief blocks (0-1, soft-edged): march
        towards the light and compare the relief with the ray's height."""
        across = np.hypot(*self.direction[:2])
        if across < 1e-3:
            return np.zeros_like(u)
        du, dv = self.direction[:2] / across
        rise = self.direction[2] / across  # the ray's height gained per unit across
        blocked = np.zeros_like(u)
        for t in np.linspace(0.01, 0.2, 8):
            above = relief(u + t * du, v + t * dv) - height - t * rise
            blocked = np.maximum(blocked, np.clip(above / 0.01, 0, 1))
        return blocked


def _strands(rng, u, v) -> np.ndarray:
    """Shading of hair: light and dark strands running from the crown, waved by a
    smooth field, over a broad sheen. Flat or gently striped hair taught a model
    that any streaky texture (a real head of hair) was glasses' rims or brows."""
    height, width = u.shape
    grid = rng.standard_normal((5, 5)).astype(np.float32)
    wave = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BILINEAR))
    around = np.arctan2(u, -(v + 0.3))  # the angle from a crown above the face
    count, phase = rng.uniform(40, 90), rng.uniform(0, 2 * np.pi, 2)
    fine = (np.sin(count * around + 3 * wave + phase[0])
            + 0.5 * np.sin(2.3 * count * around + 5 * wave + phase[1]))
    return 1.0 + 0.15 * np.sin(18 * u + 3 * v) + rng.uniform(0.1, 0.25) * fine


def _nose_relief(u, v, eye_y, nose_tip, wings):
    """The nose's height over the face (face-radius units): a ridge rising from
    between the eyes to a rounded tip, with a wing either side of it."""
    reach = np.clip((v - eye_y) / (nose_tip - eye_y), 0, 1)
    ridge = (0.015 + 0.05 * reach) * np.exp(-(u / (0.04 + 0.035 * reach)) ** 2) * (
        (v > eye_y) & (v < nose_tip))
    tip = 0.09 * np.exp(-(u / 0.06) ** 2 - ((v - nose_tip + 0.025) / 0.05) ** 2)
    wing = 0.045 * np.exp(-((np.abs(u) - 0.65 * wings) / (0.4 * wings)) ** 2
                          - ((v - nose_tip + 0.03) / 0.035) ** 2)
    return np.maximum(np.maximum(ridge, tip), wing)


def _background(rng, height, width) -> np.ndarray:
    """A gradient with blobs, some of them skin-coloured, so colour alone is not enough."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (xx / width * rng.uniform(-1, 1) + yy / height * rng.uniform(-1, 1)) % 1.0
    image = a + (b - a) * t[..., None]
    for _ in range(rng.integers(2, 7)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.05, 0.25) * min(height, width)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        skin_like = rng.random() < 0.3
        image[blob] = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] if skin_like \
            else rng.uniform(0, 255, 3)
    return image


def _camera(rng, image, u, v) -> np.ndarray:
    """Directional light, a little blur and sensor noise, then 8 bits."""
    light = 1.0 + rng.uniform(0, 0.35) * np.clip(
        u * rng.uniform(-1, 1) + v * rng.uniform(-1, 1), -2, 2) / 2
    image = image * (light * rng.uniform(0.7, 1.2))[..., None]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    image = sum(padded[dy:dy + image.shape[0], dx:dx + image.shape[1]]
                for dy in range(3) for dx in range(3)) / 9.0
    image += rng.normal(0, rng.uniform(2, 8), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


class MovingFrame(NamedTuple):
    """One frame of ``moving_faces``."""

    image: np.ndarray          # (H, W, 3) uint8
    mask: np.ndarray           # (H, W) uint8, the synthetic source's ids
    matrices: list             # per face: its sprite -> frame 2x3 matrix
    landmarks: list            # per face: its five points (5, 2) in the frame
    sides: list                # per face: its sprite's side (the face's own frame)


def moving_faces(seed: int, frames: int, height: int, width: int, num_faces: int = 1,
                 face_width: float = 0.25, jitter: float = 1.0, motion: float = 0.15,
                 sprites: list | None = None):
    """A video of synthetic faces moving over a still background, with exact masks
    and the exact motion of every face: what tracking and smoothing are measured on.

    Each face is rendered once (a sprite) and moved in its own lane of the frame:
    a drift across it (up to ``motion`` of the lane's width and the frame's
    height over the video), an in-plane turn of up to 20 degrees either way, a
    slow change of size, and a hand-held ``jitter`` (pixels, standard deviation)
    on top. Yields a ``MovingFrame`` per frame (image, mask, and per face its
    sprite -> frame matrix, five points and sprite side). Faces keep to their
    lanes, so none covers another.

    ``sprites`` replaces the drawn faces with given ones, ``(image (S, S, 3),
    mask (S, S), landmarks (5, 2))`` each (a real face cut from a photo, say, for
    a benchmark that needs a detector to find it); ``num_faces`` is then their count.
    """
    rng = np.random.default_rng([seed, 3])
    background = np.clip(_background(rng, height, width), 0, 255).astype(np.uint8)
    if sprites is None:
        side = max(24, int(face_width * width / (1.52 * 0.29)))  # as compose sizes faces
        sprites = [render_with_landmarks(seed, 5000 + face, side, side)
                   for face in range(num_faces)]
    num_faces = len(sprites)
    lane = width / num_faces
    sprites = [(Image.fromarray(image), Image.fromarray(mask), landmarks)
               for image, mask, landmarks in sprites]
    paths = []
    for face in range(num_faces):
        centre = np.array([lane * (face + 0.5), height * rng.uniform(0.4, 0.6)])
        drift = rng.uniform(-motion, motion, 2) * [lane, height]  # over the whole video
        turn = rng.uniform(-20, 20)
        paths.append((centre - drift / 2, drift, turn, rng.uniform(0.9, 1.1),
                      rng.uniform(0, 2 * np.pi)))
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        image, mask = background.copy(), np.zeros((height, width), np.uint8)
        matrices, points = [], []
        for (sprite, sprite_mask, landmarks), (start, drift, turn, zoom, offset) in zip(
                sprites, paths):
            angle = np.deg2rad(turn * np.sin(2 * np.pi * phase + offset))
            scale = zoom * (1 + 0.08 * np.sin(np.pi * phase + offset))
            centre = start + drift * phase + rng.normal(0, jitter, 2)
            rotation = scale * np.array([[np.cos(angle), -np.sin(angle)],
                                         [np.sin(angle), np.cos(angle)]])
            half = np.array(sprite.size) / 2
            matrix = np.hstack([rotation, (centre - rotation @ half)[:, None]])
            data = pillow_affine(matrix)
            face_mask = np.asarray(sprite_mask.transform((width, height), Image.Transform.AFFINE,
                                                         data, Image.Resampling.NEAREST))
            face = np.asarray(sprite.transform((width, height), Image.Transform.AFFINE, data,
                                               Image.Resampling.BILINEAR))
            region = face_mask > 0
            image[region], mask[region] = face[region], face_mask[region]
            matrices.append(matrix)
            points.append(landmarks @ matrix[:, :2].T + matrix[:, 2])
        yield MovingFrame(image, mask, matrices, points, [s.size[0] for s, _, _ in sprites])
