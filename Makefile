# Set-up and entry points. `make demo`, `make test` and `make test-fast` each create .venv if absent and install
# fastreid into it (editable, compiling the Cython ranker); the install is skipped when nothing it depends on
# changed. `make test-fast` leaves out the tests marked slow (process-spawning ones): the edit-test loop.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fastreid-installed
INSTALL_INPUTS := setup.py pyproject.toml requirements.txt $(wildcard fastreid/evaluation/rank_cylib/*.pyx)
PYTEST_ARGS ?=

.PHONY: install demo test test-fast clean

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test,deploy]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf build *.egg-info fastreid/evaluation/rank_cylib/*.so fastreid/evaluation/rank_cylib/*.c
