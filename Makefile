# Quick start: `make demo` (theory experiments + report) and `make test` (test suite + lint + mypy).
# Both create the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench gpu-check gpu-check-dry clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench,tensorboard,lightning,timm]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dimcollapse demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The GPU check (bench/README.md): CUDA tests, the cifar preset's speed, a short table1, in
# <= 8 minutes. It builds its own venv from the python that holds torch (GPU_PYTHON); on a lent
# device machine: bash bench/gpu_check.sh --out "$$OUT" --data-dir .gpudata/cifar10.
GPU_PYTHON ?= python3
gpu-check:
	bash bench/gpu_check.sh --python $(GPU_PYTHON) $(GPU_CHECK_ARGS)

# The same script on this CPU at toy sizes (CUDA tests skipped); tests/bench runs it in `make test`.
gpu-check-dry: $(STAMP)
	bash bench/gpu_check.sh --dry --python $(PY) --out runs/gpu-check-dry

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
