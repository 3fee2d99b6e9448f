"""Class tables that come with a user's data: CVAT's labelmap.txt, facepars's class file,
and Pascal VOC's own 21 classes.

Each reader returns a ``facepars.core.classes.SourceTable``: label position i is the
training id under ``--taxonomy=source``; ``values`` / ``colors`` say what a mask
file holds for that label (facepars.data.sources decodes masks with them).

facepars's class file (docs/data.md, "Your own data") is CSV with a header or
JSON. One row per class, the background first::

    name,id,color,part,face,flip
    background,0,#000000,background,no,
    skin,1,#e8b088,skin,,
    left eye,2,#1e78ff,l_eye,,right eye
    right eye,3,#00c8ff,r_eye,,left eye
    tattoo,4,#ff00ff,,no,

``name`` is required; ``id`` (the value in id masks) and/or ``color`` (in colour
masks; ``#rrggbb`` or ``r g b``) say what the masks hold, the same columns for every
class; ``part`` places the class in facepars's part vocabulary (``classes.PARTS``;
default: the part a known dataset's label of that name means, e.g. ``left_eyebrow``),
needed only to prepare into a built-in ``--taxonomy``; ``face`` (yes/no, default yes
but for the background) says which classes the face means average; ``flip`` names
the class a horizontal flip turns this one into. JSON: ``{"classes": [{"name": ...,
"id": ..., "color": [r, g, b], "part": ..., "face": true, "flip": ...}, ...]}``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re

from facepars.core import files
from facepars.core.classes import BACKGROUND, PARTS, SOURCE_TABLES, SourceTable
from facepars.core.errors import PrepareError

VOC = "voc"
"""The coding name of Pascal VOC's own table (a VOC layout without labelmap.txt)."""
LABELMAP = "labelmap.txt"
VOC_BOUNDARY = (224, 224, 192)
"""The colour of VOC's palette index 255: boundaries, ignored in scoring."""
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
# Label names of the known datasets -> the part they mean ("left_eyebrow" -> l_brow):
# what a user's class of that name defaults to.
KNOWN_NAMES = {**{p: p for p in PARTS},
               **{name: part for t in SOURCE_TABLES.values() for name, part in t.labels}}


class ClassFileError(PrepareError):
    """A class file that does not parse or contradicts itself; names the file and line."""


def voc_color(index: int) -> tuple[int, int, int]:
    """Colour of a VOC palette index: the index's bits spread over R, G, B from the top."""
    rgb = [0, 0, 0]
    for shift in range(8):
        for channel in range(3):
            rgb[channel] |= ((index >> (3 * shift + channel)) & 1) << (7 - shift)
    return tuple(rgb)


def voc_table() -> SourceTable:
    """Pascal VOC's own 21 classes: palette index = class, index 255 = boundary."""
    return SourceTable(VOC, tuple((n, "background" if n == BACKGROUND else None)
                                  for n in VOC_CLASSES),
                       colors=tuple(voc_color(i) for i in range(len(VOC_CLASSES))),
                       values=tuple(range(len(VOC_CLASSES))), ignore=True)


@functools.lru_cache(maxsize=8)
def load(coding: str) -> SourceTable:
    """The table named by a pair's coding: ``voc``, a labelmap.txt, or a class file.
    Cached: a conversion process reads it once, not once per mask."""
    if coding == VOC:
        return voc_table()
    if os.path.basename(coding) == LABELMAP:
        return read_labelmap(coding)
    return read_class_file(coding)


def _read_text(path: str) -> str:
    try:
        with files.open(path) as f:
            return f.read()
    except FileNotFoundError:
        raise ClassFileError(f"{path}: class file not found") from None
    except UnicodeDecodeError as e:
        raise ClassFileError(f"{path}: not a text file ({e})") from None


def _color(value, where: str) -> tuple[int, int, int]:
    """``#rrggbb``, ``r g b``, ``r,g,b`` or a list of three 0..255 integers."""
    if isinstance(value, (list, tuple)):
        parts = list(value)
    elif re.fullmatch(r"#[0-9a-fA-F]{6}", str(value).strip()):
        text = str(value).strip()
        parts = [int(text[i:i + 2], 16) for i in (1, 3, 5)]
    else:
        parts = re.split(r"[\s,;]+", str(value).strip())
    try:
        rgb = tuple(int(v) for v in parts)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ClassFileError(f"{where}: colour {value!r} is not #rrggbb or three integers 0..255")
    return rgb


def _flag(value, where: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ClassFileError(f"{where}: face {value!r} is not yes or no")


def build_table(name: str, rows: list[tuple[str, dict]], path: str) -> SourceTable:
    """A SourceTable from ``(where, fields)`` rows, every rule checked with its row named."""
    if not rows:
        raise ClassFileError(f"{path}: no classes")
    names, seen = [], {}
    for where, row in rows:
        n = str(row.get("name") or "").strip()
        n = BACKGROUND if n == "_background_" else n  # labelme's and some CVAT exports' spelling
        if not n:
            raise ClassFileError(f"{where}: a class without a name")
        if n in seen:
            raise ClassFileError(f"{where}: class {n!r} again (first at {seen[n]})")
        seen[n] = where
        names.append(n)
    if names[0] != BACKGROUND:
        raise ClassFileError(f"{rows[0][0]}: the first class must be {BACKGROUND!r} (what "
                             f"prediction gives pixels no face part covers), not {names[0]!r}")
    has = {key: [row.get(key) not in (None, "") for _, row in rows] for key in ("id", "color")}
    if not any(has["id"]) and not any(has["color"]):
        raise ClassFileError(f"{path}: give each class an id (id masks) or a color "
                             "(colour masks)")
    for key in ("id", "color"):
        if any(has[key]) and not all(has[key]):
            where = rows[has[key].index(False)][0]
            raise ClassFileError(f"{where}: no {key}, though other classes have one")
    values = colors = None
    if all(has["id"]):
        values = []
        for where, row in rows:
            try:
                v = int(str(row["id"]).strip())
            except ValueError:
                v = -1
            if not 0 <= v <= 254:
                raise ClassFileError(f"{where}: id {row['id']!r} is not an integer 0..254")
            if v in values:
                raise ClassFileError(f"{where}: id {v} is given to two classes")
            values.append(v)
    if all(has["color"]):
        colors = []
        for where, row in rows:
            rgb = _color(row["color"], where)
            if rgb in colors:
                raise ClassFileError(f"{where}: colour {rgb} is given to two classes")
            colors.append(rgb)
    labels, face = [], []
    for (where, row), n in zip(rows, names):
        part = str(row.get("part") or "").strip() or KNOWN_NAMES.get(n.lower().replace(" ", "_"))
        if n == BACKGROUND:
            part = BACKGROUND
        if part is not None and part not in PARTS:
            raise ClassFileError(f"{where}: part {part!r} is not one of facepars's parts "
                                 f"({', '.join(PARTS)})")
        labels.append((n, part))
        face.append(_flag(row.get("face"), where, n != BACKGROUND))
    flips = []
    for i, ((where, row), n) in enumerate(zip(rows, names)):
        other = str(row.get("flip") or "").strip()
        if not other:
            continue
        if other not in names:
            raise ClassFileError(f"{where}: flip names {other!r}, which is no class here")
        j = names.index(other)
        back = str(rows[j][1].get("flip") or "").strip()
        if back and back != n:
            raise ClassFileError(f"{where}: {n!r} flips to {other!r}, but {other!r} to {back!r}")
        if (j, i) not in flips:
            flips.append((i, j))
    explicit_flips = any(str(row.get("flip") or "").strip() for _, row in rows)
    return SourceTable(name, tuple(labels), tuple(colors) if colors else None,
                       tuple(values) if values else None, tuple(face),
                       tuple(flips) if explicit_flips else None)


def read_class_file(path: str) -> SourceTable:
    """facepars's class file, JSON or CSV (see the module docstring)."""
    text = _read_text(path)
    name = os.path.splitext(os.path.basename(path))[0]
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ClassFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        classes = data.get("classes") if isinstance(data, dict) else data
        if not isinstance(classes, list) or not all(isinstance(c, dict) for c in classes):
            raise ClassFileError(f"{path}: expected {{\"classes\": [{{\"name\": ...}}, ...]}}")
        rows = [(f"{path}: class #{i}", c) for i, c in enumerate(classes)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in reader.fieldnames or []]
        unknown = set(header) - {"name", "id", "color", "part", "face", "flip"}
        if "name" not in header or unknown:
            raise ClassFileError(f"{path}:1: the header must name the columns name, id, color, "
                                 f"part, face, flip (found {header})")
        reader.fieldnames = header
        rows = [(f"{path}:{reader.line_num}", row) for row in reader
                if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    return build_table(name, rows, path)


def read_labelmap(path: str) -> SourceTable:
    """CVAT's ``labelmap.txt`` (Segmentation mask 1.1): ``name:r,g,b:parts:actions`` per
    line, ``#`` comments; the order is the class order, the background first."""
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 2:
            raise ClassFileError(f"{path}:{number}: expected name:r,g,b:parts:actions, "
                                 f"got {line!r}")
        rows.append((f"{path}:{number}", {"name": fields[0], "color": fields[1]}))
    return build_table("labelmap", rows, path)
