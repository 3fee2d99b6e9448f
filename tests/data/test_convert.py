import json
import platform
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

# Converts the same large pair a few times in a fresh process and prints the
# page faults per conversion after the first (which warms the heap either way).
_FAULTS = """
import json, resource, sys
from facepars.core import classes
from facepars.data import convert, sources
taxonomy = classes.TAXONOMIES[classes.DEFAULT_TAXONOMY]
lut, valid = classes.SOURCE_TABLES["kaggle"].lookup_table(taxonomy)
spec = convert.ConvertSpec("kaggle", lut, valid, taxonomy.table.num_classes, 256, "stretch",
                           "jpeg", 95)
ref = sources.FilePair("a", sys.argv[1], sys.argv[2])
if sys.argv[3] == "keep":
    convert.keep_freed_memory()
assert isinstance(convert.convert(ref, spec), convert.Converted)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    convert.convert(ref, spec)
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10))
"""


def _faults_per_pair(image: str, mask: str, mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _FAULTS, image, mask, mode], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_stops_the_per_pair_page_faults(tmp_path):
    """The measured cause of slow workers: each pair's buffers mapped afresh."""
    rng = np.random.default_rng(0)
    image, mask = str(tmp_path / "a.jpg"), str(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (1400, 1000, 3), np.uint8)).save(image, quality=90)
    Image.fromarray(rng.integers(0, 18, (1400, 1000), np.uint8)).save(mask)
    default = _faults_per_pair(image, mask, "default")
    kept = _faults_per_pair(image, mask, "keep")
    assert default > 500, default  # a few MB zero-filled again on every pair
    assert kept < default / 10, (kept, default)
