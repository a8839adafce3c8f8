# dnalm: `make demo` sets everything up and runs the demo to results/report.html; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
CORES ?= 2
# Extra pip arguments for torch only, e.g. TORCH_PIP_ARGS="--index-url <a CPU or CUDA wheel index>".
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
MARKS ?=

.PHONY: demo test setup apt clean

demo: setup
	$(VENV)/bin/snakemake --profile profiles/default --cores $(CORES) results/report.html

# Two pytest workers (one per core; a test file's tests stay on one worker, so each module's fixtures are built once),
# then the Slurm cluster tests alone: they install and start a cluster every snakemake call would otherwise meet.
# MARKS narrows both runs (e.g. MARKS="not slow"); the second passes when it selects nothing (pytest's exit 5).
test: setup
	$(VENV)/bin/pytest -n $(CORES) --dist loadfile -m "not cluster$(if $(MARKS), and ($(MARKS)))" $(PYTEST_ARGS)
	$(VENV)/bin/pytest -m "cluster$(if $(MARKS), and ($(MARKS)))" $(PYTEST_ARGS) || test $$? -eq 5

setup: apt $(VENV)/.installed

apt:
	@bash envs/check_apt.sh envs/apt.txt

# torch goes in first and alone, pinned by envs/constraints.txt, so no other package can pull another build of it.
$(VENV)/.installed: envs/requirements.txt envs/constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -U pip
	$(VENV)/bin/python -m pip install -q $(TORCH_PIP_ARGS) "torch==$$(sed -n 's/^torch==//p' envs/constraints.txt)"
	$(VENV)/bin/python -m pip install -q -r envs/requirements.txt -c envs/constraints.txt
	touch $@

clean:
	rm -rf results logs .snakemake
