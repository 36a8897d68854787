# Two commands set up and run everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# pytest workers for `make test` (each single-threaded so two of them share two cores well)
WORKERS ?= 2
# the torch build this machine's wheel cache holds; users elsewhere may set TORCH_PINS= to skip
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test demo export docs readme clean bench outputs gpu-check

$(STAMP): settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# Notebooks -> package. The notebooks are the source: never edit clustercam/*.py by hand.
export: $(STAMP)
	$(VENV)/bin/nbdev_export

# All tests: every notebook (nbdev's test runner, cells flagged notest/slow skipped), the check
# that nbdev_export leaves clustercam/ unchanged, and the integration tests in tests/.
test: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(WORKERS) -p no:cacheprovider

# The main job on the embedded synthetic dataset, on the CPU.
demo: $(STAMP)
	$(PY) -m clustercam.harness.demo

bench: $(STAMP)
	$(VENV)/bin/clustercam_bench

# On a machine with a GPU, in a few minutes: the network and CAMs against the reference fixtures (fp32, TF32 off),
# 20 training steps in fp16 and bf16, resume, DDP when two GPUs are visible, throughput. Status 77 without CUDA.
gpu-check: $(STAMP)
	$(PY) -m clustercam.harness.gpucheck

# The notebooks' stored outputs (figures, tables, values), as nbdev's own notebooks are committed:
# tools/run_notebooks.py executes each notebook as `make test` does (notest/slow cells skipped), one
# thread, seeded, then nbdev_clean; it prints which notebooks changed. A rerun changes nothing.
# `make outputs` runs all of nbs/ (WORKERS at a time); `make outputs NB="nbs/21_losses.ipynb nbs/23_crf.ipynb"` some.
NB ?=
outputs: $(STAMP)
	$(PY) tools/run_notebooks.py --jobs $(WORKERS) $(NB)
	$(PY) tools/make_readme.py   # README.md shows index.ipynb's outputs

# The docs site in _docs/ from the notebooks' stored outputs (`make outputs` refreshes them): Quarto
# (nbdev_docs) when installed, else nbdev's processing + pandoc (tools/make_docs.sh). DOCS_EXEC=1 runs
# the notebooks again for the local render instead of using the stored outputs.
docs: $(STAMP)
	bash tools/make_docs.sh

# README.md (and the chapter list in nbs/index.ipynb, nbs/sidebar.yml) from the notebooks, no Quarto.
readme: $(STAMP)
	$(PY) tools/make_readme.py

clean:
	rm -rf _docs _proc .pytest_cache
