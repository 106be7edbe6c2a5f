# User entry points. Everything runs inside .venv, created and filled by `make setup`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
PIP := $(PY) -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS)
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test test-all bench ablation opcount-table paper-tables clean board-env board-test bitstream

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

# Op counts and ZCU104 board estimates of the paper-scale configurations into
# brevitas_models/README.md (~40 min on 2 cores: three lowerings at full input size)
paper-tables: opcount-table
	$(PY) bench/paper_estimate.py --readme brevitas_models/README.md

test: setup
	$(PY) -m pytest -q -n 2 -m "not slow"

test-all: setup
	$(PY) -m pytest -q -n 2

# The whole flow to bitstreams/<model>/ on a machine with the Xilinx tools (bitstreams/README.md)
BOARD ?= Pynq-Z2
bitstream: setup
	@test -n "$(MODEL)" || { echo "usage: make bitstream MODEL=model.onnx [BOARD=Pynq-Z2] [OUT=folder]"; exit 2; }
	$(PY) -m hw_gen.cli build "$(MODEL)" --board "$(BOARD)" -o "$(or $(OUT),build/$(basename $(notdir $(MODEL))))"

# The board-like environment: pynq 4.0.0 with its numpy<2, nothing else of ours installed.
BOARD_VENV := .venv-board
BOARD_PACKAGES := build/board-packages

board-env: $(BOARD_VENV)/.setup-done

$(BOARD_VENV)/.setup-done: requirements/board.txt
	test -x $(BOARD_VENV)/bin/python || $(PYTHON) -m venv $(BOARD_VENV)
	$(BOARD_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements/board.txt
	touch $@

# Driver tests on a fake PYNQ device: packages built in .venv, tests run in .venv-board.
board-test: setup board-env
	PYTHONPATH=$(CURDIR):$(CURDIR)/tests $(PY) tests/board/make_packages.py $(BOARD_PACKAGES)
	HWGEN_BOARD_PACKAGES=$(CURDIR)/$(BOARD_PACKAGES) PYTHONPATH=$(CURDIR):$(CURDIR)/tests/board \
		$(BOARD_VENV)/bin/python -m pytest -q -p no:cacheprovider --confcutdir=tests/board tests/board
	SIM_NUMPY1_PYTHON=$(CURDIR)/$(BOARD_VENV)/bin/python $(PY) -m pytest -q -p no:cacheprovider tests/test_sim_numpy1.py

bench: setup
	$(PY) bench/sim_conv.py --out bench/sim_conv.json
	$(PY) bench/sim_vs_torch_finn.py
	$(PY) bench/build_time.py --out bench/build_time.json
	$(PY) bench/hwmodel.py --out bench/hwmodel.json
	$(PY) bench/sim_paper.py

clean:
	rm -rf build/ $(BOARD_VENV) demo_out/ ablation_out/ .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
