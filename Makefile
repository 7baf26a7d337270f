# Two commands do all set-up on a fresh machine: `make demo` and `make test`; `make check` is the quick tier of the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: demo test check lint install browser fonts clean bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch is pinned first: a CPU build of it is on the machine; an unpinned torch pulls CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]" torch==2.13.0
	touch $(STAMP)

install: $(STAMP)

# Every seed experiment on the default model, offline, gathered into one page.
demo: $(STAMP) fonts
	$(VENV)/bin/layerscope tour --out runs/demo
	@echo "Open runs/demo/report.html in a browser (each experiment's own files are in runs/demo/<name>/)."

# Debian packages, installed only where missing: the report's browser tests drive Debian's chromium (never a
# downloaded browser); PNG figures fall back to Debian's Noto fonts for every other script (Indic, Arabic, Hebrew,
# Thai, Ethiopic, Tibetan, ...: fonts-noto-core), CJK, and symbol fonts for emoji.
FONTS := fonts-noto-core fonts-noto-cjk fonts-symbola
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "not installed:$$missing (the tests that need them are skipped)"; fi; fi

fonts:
	@$(call apt_install,$(FONTS))

browser:
	@$(call apt_install,chromium $(FONTS))

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

# The tests run on every core (pytest-xdist), in groups that share costly work (tests/conftest.py says which).
XDIST := -n auto --maxprocesses 4 --dist loadgroup --no-loadscope-reorder

# Every test (CI runs this through .ci/run).
test: lint browser
	$(PY) -m pytest -q $(XDIST) --durations=40

# The quick tier, for development: every test not marked slow, i.e. none that needs the default model, a Jupyter
# kernel, chromium or Ray, nor the few that start many processes (tests/conftest.py sets the mark).
check: lint fonts
	$(PY) -m pytest -q $(XDIST) -m "not slow" --durations=20

# Every timing benchmark against its peers and baselines, one ratio per line with its spread over repeats
# (benchmarks/run_all.py). The peers (nnsight, TransformerLens) go into their own environment, .venv-bench.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[test,bench]" torch==2.13.0
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs
