# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: demo test install browser clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch is pinned first: a CPU build of it is on the machine; an unpinned torch pulls CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]" torch==2.13.0
	touch $(STAMP)

install: $(STAMP)

# Every seed experiment on the default model, offline, gathered into one page.
demo: $(STAMP)
	$(VENV)/bin/layerscope tour --out runs/demo
	@echo "Open runs/demo/report.html in a browser (each experiment's own files are in runs/demo/<name>/)."

# The report's browser tests drive Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is not installed: the browser tests will be skipped"; fi; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
