# Two commands: `make lab` (set up, then open JupyterLab on notebooks/) and `make test`.
# Setup is idempotent: a second run does nothing and starts within seconds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labviz-installed
KERNEL := $(VENV)/share/jupyter/kernels/labviz/kernel.json
# torch is pinned and installed first, so that no other package pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0
# uv installs in seconds what pip installs in minutes. It searches /opt/wheels where that exists
# (a machine's own wheels, such as torch's CPU build, which it then prefers).
UV         := uv==0.13.9
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
INSTALL     = $(BIN)/uv pip install --python $(BIN)/python --quiet $(FIND_LINKS)

.PHONY: setup system lab app test test-fast zoo figures bench clean

setup: system $(STAMP) $(KERNEL)

system:
	@bash .ci/system-packages.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(UV)
	$(INSTALL) $(TORCH)
	$(INSTALL) -e '.[test]'
	touch $(STAMP)

$(KERNEL): $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name labviz --display-name "Python (labviz)" >/dev/null
	@echo "Registered the Jupyter kernel 'labviz'."

lab: setup
	$(BIN)/labviz lab

app: setup
	$(BIN)/labviz app

# Test tiers (tests/conftest.py gives every test one). The unit, notebooks, service and rebuild
# tiers run in one pytest-xdist run on $(WORKERS) workers, with mypy beside them (its report
# follows theirs; a type error fails the build): each test file's tests on one worker (its module
# fixtures and numba compilations are made once), each notebook on a worker of its own, the
# longest first (tests/conftest.py's START_FIRST); many of these tests wait on a kernel, a server
# or a subprocess, so a third worker keeps both cores busy. The class load and the browser tests
# then run one at a time: they use about half a core, and beside them, under `nice`, the tests
# marked `background` (conftest.py's BACKGROUND: long, CPU-bound, timing nothing) take the rest
# (their report follows). The timing-sensitive service tests stay in the first run: beside the
# browser tests, a worker killed and replaced did not come back in time. Extra pytest options:
# `make test PYTEST_ARGS=--durations=25`.
JOBS        ?= 2
WORKERS     ?= 3
PYTEST_ARGS ?=
PYTEST       = $(BIN)/python -m pytest $(PYTEST_ARGS)
UNIT         = $(PYTEST) -m unit -n $(JOBS) --dist loadfile --no-loadscope-reorder

# One activation cache for the tiers that run the notebooks (tests/conftest.py's zoo_cache), empty
# at the start of every run; mypy's and the background's reports wait there.
export LABVIZ_TEST_ZOO_CACHE := $(CURDIR)/.test-zoo-cache
LOGS := $(LABVIZ_TEST_ZOO_CACHE)

test: setup
	rm -rf $(LOGS) && mkdir $(LOGS)
	$(BIN)/mypy > $(LOGS)/mypy.log 2>&1 & typing=$$!; \
	  $(PYTEST) -m "(unit or notebooks or service or rebuild) and not background" -n $(WORKERS) \
	    --dist loadfile --no-loadscope-reorder; tests=$$?; \
	  wait $$typing; typed=$$?; cat $(LOGS)/mypy.log; \
	  test $$typed -eq 0 && test $$tests -eq 0
	nice -n 19 $(PYTEST) -m background -n $(JOBS) --dist loadfile --no-loadscope-reorder \
	  -p no:cacheprovider --basetemp=$(LOGS)/background > $(LOGS)/background.log 2>&1 & beside=$$!; \
	  $(PYTEST) -m "load or browser"; alone=$$?; \
	  wait $$beside; besides=$$?; echo "--- beside them: the background tests"; \
	  cat $(LOGS)/background.log; test $$alone -eq 0 && test $$besides -eq 0

test-fast: setup
	$(UNIT)

zoo: setup
	$(BIN)/labviz zoo build

figures: setup
	$(BIN)/labviz figures --out figures

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .test-zoo-cache
