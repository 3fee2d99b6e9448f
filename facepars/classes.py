"""Class tables: what facepars trains on, and what each source dataset labels.

Everything about labels lives here, as data:

* ``PARTS`` is one vocabulary of face parts shared by every source.
* A ``SourceTable`` says which raw id of a source dataset means which part.
* A ``Taxonomy`` says which training class each part becomes, and carries the
  ``ClassTable`` (names, colours, face classes, flip pairs) that is written into
  the manifest. Downstream code never looks a taxonomy up by name: it reads the
  ``ClassTable`` back from the manifest or the model directory.

Going through parts rather than source-to-target tables means a new source or a
new taxonomy is one table, not one table per pair.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

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

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "classes": [{"id": i, "name": n, "color": list(c)}
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
    """Raw label ids of one source dataset: ``labels[i] = (source's name, part)``."""

    name: str
    labels: tuple[tuple[str, str], ...]

    def lookup_table(self, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lut, valid)``, both of length 256, for ``lut[raw_mask]``.

        ``valid[v]`` is False for raw values the source never uses, so a converter
        can name them instead of silently mapping them somewhere.
        """
        lut = np.full(256, IGNORE_LABEL, dtype=np.uint8)
        valid = np.zeros(256, dtype=bool)
        for raw_id, (_, part) in enumerate(self.labels):
            lut[raw_id] = taxonomy.class_of_part(part)
            valid[raw_id] = True
        return lut, valid


def _taxonomy(name, classes, face, flip_pairs=(), **part_to_class):
    """Build a Taxonomy; parts not named go to background."""
    names = tuple(n for n, _ in classes)
    mapping = {p: BACKGROUND for p in PARTS}
    mapping.update(part_to_class)
    table = ClassTable(name, names, tuple(c for _, c in classes),
                       tuple(names.index(n) for n in face), flip_pairs)
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


def classes_of_parts(table: ClassTable, parts) -> tuple[int, ...]:
    """Ids of ``table``'s classes that ``parts`` become in the known taxonomies, in
    part order, each once, background left out.

    For part-level code (facepars.data.framing) on a table read back from a
    manifest, which carries class names but not the part mapping: the class
    names come from the taxonomies here, never typed out again.
    """
    ids = []
    for part in parts:
        for taxonomy in TAXONOMIES.values():
            name = taxonomy.part_to_class[part]
            if name in table.names and name != BACKGROUND and table.names.index(name) not in ids:
                ids.append(table.names.index(name))
    return tuple(ids)


def synthetic_id(part: str) -> int:
    """Raw id of a part in the synthetic source's table."""
    return [p for _, p in SOURCE_TABLES["synthetic"].labels].index(part)
