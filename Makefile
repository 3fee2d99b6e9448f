# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs facepars with the extras it needs.
PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_output
export TF_CPP_MIN_LOG_LEVEL ?= 2

$(VENV)/.installed-$(EXTRA): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=23" "setuptools>=64"
	$(PY) -m pip install -e ".[$(EXTRA),test]"
	touch $@

.PHONY: install demo test bench
install: $(VENV)/.installed-$(EXTRA)

demo: install
	DEMO_DIR=$(DEMO_DIR) PY=$(PY) bash scripts/demo.sh

test: install
	$(PY) -m pytest -q

bench: install
	for b in prepare input loss train; do $(PY) bench/$${b}_bench.py || exit 1; done
