# User entry points. Everything runs inside .venv, created and filled by `make setup`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
PIP := $(PY) -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS)
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test test-all bench ablation opcount-table clean

setup: $(STAMP)

$(STAMP): requirements/constraints.txt requirements/main.txt requirements/nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -r requirements/main.txt
	$(PIP) --no-deps -r requirements/nodeps.txt
	$(PIP) --no-deps finn-plus hls4ml
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(PY) -m hw_gen.demo

# Which block helps, at what cost: 7 variants x 3 seeds on the synthetic set (~20 min on 2 cores)
ablation: setup
	$(PY) -m brevitas_models.ablation --out ablation_out

# Op counts of the paper-scale configurations into brevitas_models/README.md (~3 min)
opcount-table: setup
	$(PY) -m brevitas_models opcount --readme brevitas_models/README.md

test: setup
	$(PY) -m pytest -q -n 2 -m "not slow"

test-all: setup
	$(PY) -m pytest -q -n 2

bench: setup
	$(PY) bench/sim_conv.py --out bench/sim_conv.json
	$(PY) bench/sim_vs_torch_finn.py
	$(PY) bench/build_time.py --out bench/build_time.json

clean:
	rm -rf build/ demo_out/ ablation_out/ .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
