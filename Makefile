# Two commands: `make demo` (offline smoke run of the whole suite) and `make test`.
# `make lab` opens the notebooks in JupyterLab (their default run directory is make demo's runs/demo);
# a save there writes the .ipynb and its paired .py (notebooks/jupytext.toml), both committed.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= runs/demo
PROFILE ?= smoke

.PHONY: demo test lint venv clean bench lab

$(STAMP): requirements.txt pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt
	$(VPY) -m pip install -q --no-deps -e .
	$(VPY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VPY) -m advlib run --profile $(PROFILE) --out $(OUT)

test: $(STAMP)
	$(VPY) -m pytest $(PYTEST_ARGS)

# JupyterLab on notebooks/ with the project's kernel (installed into the venv by the venv step); jupytext's
# contents manager (enabled by its install) pairs each notebook with its .py twin, so a save writes both
lab: $(STAMP)
	$(VPY) -m jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

lint: $(STAMP)
	$(VPY) -m ruff check advlib tests benchmarks tools

# the three ratio benchmarks, each as a module of the repository (python -m benchmarks.<name>)
bench: $(STAMP)
	$(VPY) -m benchmarks.bench_pgd
	$(VPY) -m benchmarks.bench_construct
	$(VPY) -m benchmarks.bench_loader

clean:
	rm -rf runs .pytest_cache
