# The two set-up commands of the README. Both create the virtual environment themselves.
#   make demo   the offline quickstart: baseline vs CutMix on real handwritten digits, CPU
#   make test   ruff + the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# OpenCV's contrib build replaces the plain one (both install the same cv2 package): drop an older plain one
	$(PY) -m pip uninstall --quiet --yes opencv-python-headless opencv-python > /dev/null 2>&1 || true
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/quickstart.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	CUTMIX_REQUIRE_EXTRAS=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs outputs multirun
