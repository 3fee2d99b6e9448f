# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs facepars with the extras it needs.
PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_output
export TF_CPP_MIN_LOG_LEVEL ?= 2

# The demo needs TensorFlow, scikit-image (its photo), the face detector and ffmpeg (its
# video); the tests also
# exercise every optional extra.
DEMO_EXTRAS := $(EXTRA),test,detect,video
TEST_EXTRAS := $(EXTRA),test,beam,onnx,detect,video

$(VENV)/.installed-%: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=23" "setuptools>=64"
	$(PY) -m pip install -e ".[$*]"
	touch $@

.PHONY: install demo demo-real test lint bench
install: $(VENV)/.installed-$(TEST_EXTRAS)

demo: $(VENV)/.installed-$(DEMO_EXTRAS)
	DEMO_DIR=$(DEMO_DIR) PY=$(PY) bash scripts/demo.sh

# The demo at a larger budget, 4000 faces and 30 x 100 steps, then the real-face rule
# (bench/real_faces_bench.py): does a model trained on synthetic faces parse real
# ones? About 14 minutes on 2 cores.
demo-real: $(VENV)/.installed-$(DEMO_EXTRAS)
	DEMO_DIR=demo_real_output DEMO_FACES=4000 DEMO_EPOCHS=30 DEMO_STEPS=100 DEMO_REAL_FACES=1 \
	  PY=$(PY) bash scripts/demo.sh

# One worker per core and one more (pytest-xdist), each taking one test at a time: a
# worker waiting (on a shared fixture, a process starting, an event) leaves its core to
# the spare one. The slow tests are collected first (tests/conftest.py), so they overlap
# instead of ending the run alone.
test: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest -q -n $$(( $$(nproc) + 1 )) --maxschedchunk=1

lint: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m ruff check .

bench: install
	for b in prepare input loss train; do $(PY) bench/$${b}_bench.py || exit 1; done
