"""Class tables: what facepars trains on, and what each source dataset labels.

Everything about labels lives here, as data:

* ``PARTS`` is one vocabulary of face parts shared by every source.
* A ``SourceTable`` says which raw id of a source dataset means which part.
* A ``Taxonomy`` says which training class each part becomes, and carries the
  ``ClassTable`` (names, colours, face classes, flip pairs, the parts each class
  holds) that is written into the manifest. Downstream code never looks a
  taxonomy up by name: it reads the ``ClassTable`` back from the manifest or the
  model directory, so a table with names facepars has never seen works everywhere.
* ``--taxonomy=source`` trains on a source's own labels as published
  (``SourceTable.own_table``); ``target`` resolves either kind into the class
  table and the raw-id lookup prepare writes with.

Going through parts rather than source-to-target tables means a new source or a
new taxonomy is one table, not one table per pair.
"""

from __future__ import annotations

import colorsys
import dataclasses
from typing import Mapping

import numpy as np

from facepars.core.errors import ConfigError

IGNORE_LABEL = 255
"""Mask value that counts in no loss term and no metric (padding, unknown)."""

BACKGROUND = "background"
"""Class 0 of every table: what prediction gives pixels no face covers, what an
overlay leaves unpainted, what a face's confidence is measured against."""

PARTS = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "l_lashes",
    "r_lashes", "nose", "u_lip", "l_lip", "inner_mouth", "hair", "l_ear",
    "r_ear", "glasses", "hat", "head", "earring", "necklace", "neck", "cloth",
    "occluder",
)
MIRRORED_PARTS = tuple((p, "r_" + p[2:]) for p in PARTS if p.startswith("l_"))
"""Left/right part pairs: classes holding them swap under a horizontal flip."""

TAXONOMY_SOURCE = "source"
"""``--taxonomy`` value that keeps the source's own label set (SourceTable.own_table)."""


def distinct_colors(count: int) -> tuple[tuple[int, int, int], ...]:
    """Black for class 0, then ``count - 1`` colours far apart in hue (golden-angle
    steps) at alternating brightness: overlays for tables that bring no colours."""
    out = [(0, 0, 0)]
    for i in range(1, count):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, (1.0, 0.75)[i % 2])
        out.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class ClassTable:
    """The training classes of one taxonomy: what the manifest and models carry."""

    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    face_classes: tuple[int, ...]
    """Classes averaged in the ``mean_face`` scores (the literature's mean)."""
    flip_pairs: tuple[tuple[int, int], ...] = ()
    """Left/right class pairs a horizontal flip must swap."""
    parts: tuple[tuple[str, ...], ...] = ()
    """Per class, the parts of ``PARTS`` it holds (empty for a class that maps onto
    none): how part-level code (where the eyes are, facepars.data.framing) reads a
    table whose names it does not know. Empty altogether for hand-made tables."""

    def __post_init__(self):
        if not self.names or self.names[0] != BACKGROUND:
            raise ValueError(f"{self.name}: class 0 must be {BACKGROUND!r} (inference and "
                             f"overlays treat it as no face part), not "
                             f"{self.names[0] if self.names else None!r}")
        if len(self.names) != len(self.colors):
            raise ValueError(f"{self.name}: {len(self.names)} names but "
                             f"{len(self.colors)} colours")
        for i in self.face_classes + tuple(c for p in self.flip_pairs for c in p):
            if not 0 <= i < len(self.names):
                raise ValueError(f"{self.name}: class id {i} out of range")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{self.name}: class names repeat ({list(self.names)})")
        if not any(self.parts):  # no class holds a part: a hand-made table, as ()
            object.__setattr__(self, "parts", ())
        if self.parts and len(self.parts) != len(self.names):
            raise ValueError(f"{self.name}: {len(self.names)} names but parts for "
                             f"{len(self.parts)}")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def palette(self) -> np.ndarray:
        """Colours as a (num_classes, 3) uint8 array, for overlays and PNG palettes."""
        return np.asarray(self.colors, dtype=np.uint8)

    def flip_permutation(self) -> np.ndarray:
        """Class id -> class id after a horizontal flip (identity without flip pairs)."""
        perm = np.arange(self.num_classes, dtype=np.int32)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def classes_of(self, parts) -> tuple[int, ...]:
        """Ids of the classes holding any of ``parts``, in part order, each once,
        background left out."""
        ids = []
        for part in parts:
            for i, held in enumerate(self.parts):
                if i and part in held and i not in ids:
                    ids.append(i)
        return tuple(ids)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "classes": [{"id": i, "name": n, "color": list(c),
                         "parts": list(self.parts[i]) if self.parts else []}
                        for i, (n, c) in enumerate(zip(self.names, self.colors))],
            "face_classes": list(self.face_classes),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "ignore_label": IGNORE_LABEL,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "ClassTable":
        classes = sorted(data["classes"], key=lambda c: c["id"])
        if [c["id"] for c in classes] != list(range(len(classes))):
            raise ValueError(f"class table {data.get('name')!r}: ids are not 0..N-1")
        return cls(
            name=data["name"],
            names=tuple(c["name"] for c in classes),
            colors=tuple(tuple(int(v) for v in c["color"]) for c in classes),
            face_classes=tuple(data["face_classes"]),
            flip_pairs=tuple(tuple(p) for p in data.get("flip_pairs", ())),
            parts=tuple(tuple(c["parts"]) for c in classes)
            if all("parts" in c for c in classes) else _builtin_parts(data["name"], classes),
        )


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """A ClassTable plus the part -> class-name mapping that fills it."""

    table: ClassTable
    part_to_class: Mapping[str, str]

    def __post_init__(self):
        missing = set(PARTS) - set(self.part_to_class)
        unknown = set(self.part_to_class.values()) - set(self.table.names)
        if missing or unknown:
            raise ValueError(f"taxonomy {self.table.name}: parts without a class "
                             f"{sorted(missing)}, unknown classes {sorted(unknown)}")

    def class_of_part(self, part: str) -> int:
        return self.table.names.index(self.part_to_class[part])


@dataclasses.dataclass(frozen=True)
class SourceTable:
    """Raw label ids of one source dataset: ``labels[i] = (source's name, part)``.

    The part is None for a label facepars's part vocabulary has no word for (a
    user's own class without a ``part``): such a source trains only with
    ``--taxonomy=source``. For sources whose mask files hold other values than
    0..N-1 (a user's ids, colours) ``values``/``colors`` say, per label, what
    its pixels hold; facepars.data.sources decodes them to the label's position.
    """

    name: str
    labels: tuple[tuple[str, str | None], ...]
    colors: tuple[tuple[int, int, int], ...] | None = None
    values: tuple[int, ...] | None = None
    face: tuple[bool, ...] | None = None      # None: every label but the first
    flips: tuple[tuple[int, int], ...] | None = None  # None: from the parts' left/right
    ignore: bool = False
    """Raw value 255 marks pixels no loss or metric counts (VOC's boundaries)."""

    def lookup_table(self, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lut, valid)``, both of length 256, for ``lut[raw_mask]``.

        ``valid[v]`` is False for raw values the source never uses, so a converter
        can name them instead of silently mapping them somewhere.
        """
        unmapped = [name for name, part in self.labels if part is None]
        if unmapped:
            raise ConfigError(f"{self.name}: classes {unmapped} map onto no facepars part, so "
                              f"--taxonomy={taxonomy.table.name} cannot place them; give each a "
                              f"part in the class file or use --taxonomy={TAXONOMY_SOURCE}")
        return self._lookup([taxonomy.class_of_part(part) for _, part in self.labels])

    def _lookup(self, class_ids) -> tuple[np.ndarray, np.ndarray]:
        lut = np.full(256, IGNORE_LABEL, dtype=np.uint8)
        valid = np.zeros(256, dtype=bool)
        lut[:len(class_ids)] = class_ids
        valid[:len(class_ids)] = True
        valid[IGNORE_LABEL] |= self.ignore
        return lut, valid

    def own_table(self) -> ClassTable:
        """The source's labels as training classes, one to one (``--taxonomy=source``)."""
        names = tuple(name for name, _ in self.labels)
        parts = tuple((part,) if part else () for _, part in self.labels)
        face = self.face or (False,) + (True,) * (len(names) - 1)
        flips = self.flips
        if flips is None:
            holder = {part: i for i, (_, part) in enumerate(self.labels) if part}
            flips = tuple((holder[a], holder[b]) for a, b in MIRRORED_PARTS
                          if a in holder and b in holder)
        try:
            return ClassTable(self.name, names, self.colors or distinct_colors(len(names)),
                              tuple(i for i, f in enumerate(face) if f), flips, parts)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def target(self, taxonomy: str) -> tuple[ClassTable, np.ndarray, np.ndarray]:
        """(class table, lut, valid) for ``--taxonomy``: a built-in one or ``source``."""
        if taxonomy == TAXONOMY_SOURCE:
            return self.own_table(), *self._lookup(range(len(self.labels)))
        if taxonomy not in TAXONOMIES:
            raise ConfigError(f"unknown taxonomy {taxonomy!r}; one of "
                              f"{', '.join(TAXONOMY_CHOICES)}")
        return TAXONOMIES[taxonomy].table, *self.lookup_table(TAXONOMIES[taxonomy])


def _taxonomy(name, classes, face, flip_pairs=(), **part_to_class):
    """Build a Taxonomy; parts not named go to background."""
    names = tuple(n for n, _ in classes)
    mapping = {p: BACKGROUND for p in PARTS}
    mapping.update(part_to_class)
    parts = tuple(tuple(p for p in PARTS if mapping[p] == n) for n in names)
    table = ClassTable(name, names, tuple(c for _, c in classes),
                       tuple(names.index(n) for n in face), flip_pairs, parts)
    return Taxonomy(table, mapping)


_SEED8_CLASSES = (
    ("background", (0, 0, 0)),
    ("skin", (232, 176, 136)),
    ("eyebrows", (120, 62, 20)),
    ("eyes", (30, 120, 255)),
    ("nose", (255, 210, 0)),
    ("mouth", (225, 25, 70)),
    ("ears", (150, 90, 220)),
    ("glasses", (0, 210, 140)),
)
_SEED8_PARTS = dict(
    skin="skin", l_lashes="skin", r_lashes="skin",
    l_brow="eyebrows", r_brow="eyebrows", l_eye="eyes", r_eye="eyes",
    nose="nose", u_lip="mouth", l_lip="mouth", inner_mouth="mouth",
    l_ear="ears", r_ear="ears", glasses="glasses",
)

TAXONOMIES: dict[str, Taxonomy] = {
    # The original notebook's 8 classes, with contiguous ids (the notebook kept raw
    # ids 13 and 16 and so never learned ears or glasses). "seed8" is the name
    # manifests and --taxonomy already carry, kept; it means the seed project, not --seed.
    "seed8": _taxonomy(
        "seed8", _SEED8_CLASSES, face=[n for n, _ in _SEED8_CLASSES[1:]],
        **_SEED8_PARTS),
    "seed8_hair": _taxonomy(
        "seed8_hair", _SEED8_CLASSES + (("hair", (255, 120, 0)),),
        face=[n for n, _ in _SEED8_CLASSES[1:]] + ["hair"],
        hair="hair", **_SEED8_PARTS),
    # LaPa's own 11 classes. Ears and glasses have no LaPa class: ears become
    # skin (face skin reaching the ear), glasses background.
    "lapa11": _taxonomy(
        "lapa11",
        (("background", (0, 0, 0)), ("skin", (232, 176, 136)),
         ("left_eyebrow", (120, 62, 20)), ("right_eyebrow", (190, 110, 40)),
         ("left_eye", (30, 120, 255)), ("right_eye", (0, 200, 255)),
         ("nose", (255, 210, 0)), ("upper_lip", (225, 25, 70)),
         ("inner_mouth", (120, 0, 40)), ("lower_lip", (255, 90, 140)),
         ("hair", (255, 120, 0))),
        face=["skin", "left_eyebrow", "right_eyebrow", "left_eye", "right_eye",
              "nose", "upper_lip", "inner_mouth", "lower_lip", "hair"],
        flip_pairs=((2, 3), (4, 5)),
        skin="skin", l_lashes="skin", r_lashes="skin", l_ear="skin", r_ear="skin",
        l_brow="left_eyebrow", r_brow="right_eyebrow", l_eye="left_eye",
        r_eye="right_eye", nose="nose", u_lip="upper_lip",
        inner_mouth="inner_mouth", l_lip="lower_lip", hair="hair"),
}
DEFAULT_TAXONOMY = "seed8"
TAXONOMY_CHOICES = (*TAXONOMIES, TAXONOMY_SOURCE)


def _builtin_parts(name: str, classes: list) -> tuple[tuple[str, ...], ...]:
    """The parts of a table written before tables carried them: its built-in
    taxonomy's, or, by class name, any built-in taxonomy's."""
    names = tuple(c["name"] for c in classes)
    if name in TAXONOMIES and TAXONOMIES[name].table.names == names:
        return TAXONOMIES[name].table.parts
    known = {n: ps for t in TAXONOMIES.values() for n, ps in zip(t.table.names, t.table.parts)}
    return tuple(known.get(n, ()) for n in names)

SOURCE_TABLES: dict[str, SourceTable] = {
    # Kaggle "multiclass-face-segmentation": 8-bit PNG ids 0..17.
    "kaggle": SourceTable("kaggle", (
        ("background", "background"), ("face", "skin"),
        ("left_eyebrow", "l_brow"), ("right_eyebrow", "r_brow"),
        ("left_eye", "l_eye"), ("right_eye", "r_eye"), ("nose", "nose"),
        ("lower_lip", "l_lip"), ("inner_mouth", "inner_mouth"),
        ("upper_lip", "u_lip"), ("hair", "hair"),
        ("left_eyelashes", "l_lashes"), ("right_eyelashes", "r_lashes"),
        ("left_ear", "l_ear"), ("right_ear", "r_ear"), ("headdress", "hat"),
        ("glasses", "glasses"), ("head", "head"))),
    # CelebAMask-HQ: one binary PNG per part; id = 1 + position in the published
    # paint order (later parts paint over earlier ones), 0 = nothing painted.
    "celebamask_hq": SourceTable("celebamask_hq", (
        ("background", "background"), ("skin", "skin"), ("nose", "nose"),
        ("eye_g", "glasses"), ("l_eye", "l_eye"), ("r_eye", "r_eye"),
        ("l_brow", "l_brow"), ("r_brow", "r_brow"), ("l_ear", "l_ear"),
        ("r_ear", "r_ear"), ("mouth", "inner_mouth"), ("u_lip", "u_lip"),
        ("l_lip", "l_lip"), ("hair", "hair"), ("hat", "hat"),
        ("ear_r", "earring"), ("neck_l", "necklace"), ("neck", "neck"),
        ("cloth", "cloth"))),
    # LaPa: 8-bit PNG ids 0..10.
    "lapa": SourceTable("lapa", (
        ("background", "background"), ("skin", "skin"),
        ("left_eyebrow", "l_brow"), ("right_eyebrow", "r_brow"),
        ("left_eye", "l_eye"), ("right_eye", "r_eye"), ("nose", "nose"),
        ("upper_lip", "u_lip"), ("inner_mouth", "inner_mouth"),
        ("lower_lip", "l_lip"), ("hair", "hair"))),
    # facepars' procedural faces (facepars.data.synthetic draws these ids).
    "synthetic": SourceTable("synthetic", tuple((p, p) for p in (
        "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose",
        "u_lip", "l_lip", "inner_mouth", "hair", "l_ear", "r_ear", "glasses",
        "occluder", "neck", "cloth"))),
}

CELEBAMASK_PARTS = tuple(n for n, _ in SOURCE_TABLES["celebamask_hq"].labels[1:])
"""CelebAMask-HQ part-file suffixes in paint order."""


def translate_ids(source: str, target: str) -> np.ndarray:
    """uint8 lookup: a raw id of ``source`` -> the raw id of ``target`` with the same part.

    Parts ``target`` does not label map to its id 0. Used to write one source's
    masks in another's layout (synthetic faces as a Kaggle-layout set).
    """
    target_ids = {part: i for i, (_, part) in enumerate(SOURCE_TABLES[target].labels)}
    return np.array([target_ids.get(part, 0) for _, part in SOURCE_TABLES[source].labels],
                    np.uint8)


def synthetic_id(part: str) -> int:
    """Raw id of a part in the synthetic source's table."""
    return [p for _, p in SOURCE_TABLES["synthetic"].labels].index(part)
