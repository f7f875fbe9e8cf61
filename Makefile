# Two commands: `make lab` (set up, then open JupyterLab on notebooks/) and `make test`.
# Setup is idempotent: a second run does nothing and starts within seconds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labviz-installed
KERNEL := $(VENV)/share/jupyter/kernels/labviz/kernel.json
# The exact tested set: every package at the version the tests ran with (`make lock` remakes it from
# pyproject.toml's ranges, keeping these versions where they still fit).
LOCK   := requirements.lock
# torch is pinned (as in the lock) and installed first, so that no other package pulls a multi-GB
# CUDA build.
TORCH  := torch==2.13.0
# uv installs in seconds what pip installs in minutes. It searches /opt/wheels where that exists
# (a machine's own wheels, such as torch's CPU build, which it then prefers). It also compiles every
# installed module to bytecode once: where PYTHONDONTWRITEBYTECODE is set, as on this machine,
# Python otherwise compiles the sources of torch, pandas, plotly and the rest again in every
# process (importing them took 11.8 s of CPU, against 5.6 s from bytecode).
UV         := uv==0.13.9
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
INSTALL     = $(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode $(FIND_LINKS)

.PHONY: setup system lab app test test-fast test-min lock zoo figures docs bench clean

setup: system $(STAMP) $(KERNEL)

system:
	@bash .ci/system-packages.sh

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(UV)
	$(INSTALL) $(TORCH)
	$(INSTALL) -r $(LOCK) -e '.[test]'
	touch $(STAMP)

# Remake the lock after a change to pyproject.toml's ranges (`make lock UPGRADE=--upgrade` moves every
# package to its newest release). It is resolved with torch's CPU build (from /opt/wheels, whose
# wheel has no CUDA packages to lock) and written as the plain version, which PyPI has too.
UPGRADE ?=
lock:
	test -x $(BIN)/uv || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet $(UV); }
	echo '$(TORCH)+cpu' > $(VENV)/torch-cpu.txt
	$(BIN)/uv pip compile pyproject.toml --all-extras --python $(BIN)/python --quiet $(FIND_LINKS) \
	  -c $(VENV)/torch-cpu.txt --custom-compile-command 'make lock' $(UPGRADE) -o $(LOCK)
	sed -i 's/^\(torch==.*\)+cpu$$/\1/' $(LOCK)

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
# then run one at a time. From the start, beside all of these, on $(JOBS) workers of one thread
# each, run the tests marked `background` (conftest.py's BACKGROUND: long, CPU-bound, timing
# nothing), and the docs build follows once the first run is over and every notebook has its
# executed copy; their reports come last. They run at the lowest priority, as a scheduling group
# of their own (tests/beside.sh; their notebooks' kernels likewise, tests/test_notebooks.py), so
# they take the CPU the others leave idle and the browser tests keep the cores they ask for. The
# timing-sensitive service tests stay in the first run: beside the browser tests, a worker killed
# and replaced did not come back in time. The built docs are opened in Chromium last. Extra
# pytest options: `make test PYTEST_ARGS=--durations=25`.
JOBS        ?= 2
WORKERS     ?= 3
PYTEST_ARGS ?=
PYTEST       = $(BIN)/python -m pytest $(PYTEST_ARGS)
UNIT         = $(PYTEST) -m unit -n $(JOBS) --dist loadfile --no-loadscope-reorder
BESIDE       = env OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 tests/beside.sh
# The notebooks the docs render: the docs build starts once each has its executed copy.
NOTEBOOKS    = $(words $(wildcard notebooks/[0-9]*.ipynb))

# One activation cache for the tiers that run the notebooks (tests/conftest.py's zoo_cache), empty
# at the start of every run; the executed notebooks, and mypy's and the background's reports,
# wait there.
export LABVIZ_TEST_ZOO_CACHE := $(CURDIR)/.test-zoo-cache
LOGS := $(LABVIZ_TEST_ZOO_CACHE)

# The tests' own processes (70 and more: workers, kernels, servers, subprocesses) may write
# bytecode for labviz's modules and pytest's rewritten test modules, so that only the first
# compiles them, whatever PYTHONDONTWRITEBYTECODE says outside.
test test-fast: export PYTHONDONTWRITEBYTECODE =

test: setup
	rm -rf $(LOGS) && mkdir $(LOGS)
	{ $(BESIDE) $(PYTEST) -m background -n $(JOBS) --dist loadfile --no-loadscope-reorder \
	    -p no:cacheprovider --basetemp=$(LOGS)/background; echo $$? > $(LOGS)/background.rc; \
	  } > $(LOGS)/background.log 2>&1 & background=$$!; \
	{ while ! { test -e $(LOGS)/first.done && { test -e $(LOGS)/background.rc || \
	      test "$$(ls $(LOGS)/executed 2>/dev/null | wc -l)" -ge $(NOTEBOOKS); }; }; do sleep 2; done; \
	  LABVIZ_EXECUTED_NOTEBOOKS=$(LOGS)/executed $(BESIDE) $(SPHINX); } > $(LOGS)/docs.log 2>&1 & \
	  docs=$$!; \
	  $(BIN)/mypy > $(LOGS)/mypy.log 2>&1 & typing=$$!; \
	  $(PYTEST) -m "(unit or notebooks or service or rebuild) and not background" -n $(WORKERS) \
	    --dist loadfile --no-loadscope-reorder; tests=$$?; touch $(LOGS)/first.done; \
	  wait $$typing; typed=$$?; cat $(LOGS)/mypy.log; alone=1; \
	  if test $$tests -eq 0 && test $$typed -eq 0; then \
	    $(PYTEST) -m "load or browser" --ignore=tests/test_docs_browser.py; alone=$$?; fi; \
	  wait $$background; wait $$docs; built=$$?; \
	  echo "--- beside them: the background tests"; cat $(LOGS)/background.log; \
	  echo "--- and the docs build"; cat $(LOGS)/docs.log; \
	  test $$tests -eq 0 && test $$typed -eq 0 && test $$alone -eq 0 && test $$built -eq 0 && \
	    test "$$(cat $(LOGS)/background.rc)" -eq 0
	$(PYTEST) tests/test_docs_browser.py

test-fast: setup
	$(UNIT)

# The unit tier on the lowest versions pyproject.toml declares, in a venv of its own: uv resolves
# each declared range to its lowest release with a wheel for this Python (sdists are not built), and
# takes the other packages at their newest. torch from PyPI is a CUDA build of several GB, so torch
# comes from /opt/wheels' lowest CPU build (TORCH_MIN=torch==X.Y.Z+cpu names another);
# $(MIN_VENV)/min.lock records what was installed.
MIN_VENV  := .venv-min
MIN_BIN   := $(MIN_VENV)/bin
CPU_TORCH := $(firstword $(sort $(wildcard /opt/wheels/torch-*+cpu-*.whl)))
TORCH_MIN ?= $(if $(CPU_TORCH),torch==$(word 2,$(subst -, ,$(notdir $(CPU_TORCH)))),$(TORCH))
MIN_UV     = $(MIN_BIN)/uv pip
test-min:
	test -x $(MIN_BIN)/python || $(PYTHON) -m venv $(MIN_VENV)
	test -x $(MIN_BIN)/uv || $(MIN_BIN)/python -m pip install --quiet $(UV)
	echo '$(TORCH_MIN)' > $(MIN_VENV)/torch.txt
	$(MIN_UV) compile pyproject.toml --extra test --python $(MIN_BIN)/python --quiet $(FIND_LINKS) \
	  --resolution lowest-direct --no-build -c $(MIN_VENV)/torch.txt -o $(MIN_VENV)/min.lock
	$(MIN_UV) sync $(MIN_VENV)/min.lock --python $(MIN_BIN)/python --quiet --no-build $(FIND_LINKS)
	$(MIN_UV) install --python $(MIN_BIN)/python --quiet --no-deps -e .
	$(MIN_BIN)/python -m pytest $(PYTEST_ARGS) -m unit -n $(JOBS) --dist loadfile \
	  --no-loadscope-reorder -p no:cacheprovider

zoo: setup
	$(BIN)/labviz zoo build

figures: setup
	$(BIN)/labviz figures --out figures

# The documentation site, offline, into docs/_build/html, with warnings as errors (a broken
# cross-reference or a public name without a docstring fails it). It renders the notebooks as
# `make test` executed them ($(DOCS_NOTEBOOKS), written by tests/test_notebooks.py); a notebook
# with no executed copy there is executed once first, on the activation cache. Nothing is fetched.
DOCS_NOTEBOOKS ?= $(LABVIZ_TEST_ZOO_CACHE)/executed
SPHINX = $(BIN)/python -m sphinx -b html -W --keep-going -q -d docs/_build/doctrees docs docs/_build/html

docs: setup
	$(BIN)/python docs/execute_notebooks.py $(DOCS_NOTEBOOKS)
	LABVIZ_EXECUTED_NOTEBOOKS=$(DOCS_NOTEBOOKS) $(SPHINX)
	@echo "The docs: file://$(CURDIR)/docs/_build/html/index.html"

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .test-zoo-cache
