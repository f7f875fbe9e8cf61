"""Shared fixtures, and the tier of every test.

Every test gets its own cache folder, so tests never see each other's entries.

Every collected test belongs to exactly one tier (``make test`` runs them all, ``make test-fast``
the first; ``pytest -m "service or rebuild"`` selects two):

``unit``
    In-process checks: no other process, server, browser or network. Parallel-safe under
    ``pytest -n 2``. Doctests are unit tests.
``notebooks``
    Executes the notebooks in fresh kernels.
``service``
    Starts processes alongside the test: Dask clusters, the training service, servers,
    subprocesses, kaleido's headless Chromium for static figure export.
``rebuild``
    Retrains zoo checkpoints, natively and under other CPU kernels, against the shipped files.
``load``
    A class of students on the classroom app at once (``class_load.run_class``): run alone.
``browser``
    Drives pages in a real Chromium with Playwright, as a person would: run alone.

A test's tier comes from :data:`FILE_TIERS` (the first tier listed for its file), unless the test
carries another of its file's tiers as a marker (``@pytest.mark.service``). A test file missing
from the table, a marker its file does not list, or two tier markers on one test fail the
collection.

``make test`` runs the first four tiers in one pytest-xdist run, so that a worker waiting on a
server, a kernel or a subprocess leaves the cores to the others, and the last two one test at a
time. Under ``--dist loadfile`` a test file's tests go to one worker (its module fixtures and numba
compilations are made once), except those of :data:`SPREAD`, which go one by one
(:func:`pytest_xdist_make_scheduler`).

The browser and load tests use about half a core. The tests of :data:`BACKGROUND` (long, busy on
the CPU, and timing nothing) carry the marker ``background`` besides their tier: ``make test``
runs them beside the browser and load tests, on two workers at the lowest priority
(``tests/beside.sh``), so that these keep the cores they ask for and the idle rest does the
background's work.
"""

from __future__ import annotations

import os
from pathlib import Path

# pytest-xdist's workers share the cores: each (and each notebook kernel it starts) gets its share
# of threads for numpy's BLAS and torch, set before either is imported. Two workers of two threads
# on two cores make torch's small-batch work spin: the fooling probes took 7x the CPU time.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _pytest.doctest import DoctestItem  # noqa: E402

from labviz import Predictions, zoo  # noqa: E402
from labviz.studies import FASHION  # noqa: E402

TESTS = Path(__file__).resolve().parent

#: The tiers, in the order ``make test`` runs them.
TIERS = ("unit", "notebooks", "service", "rebuild", "load", "browser")

#: Each test file's tiers: the first is that of its unmarked tests; a test in one of the others
#: carries that tier's marker.
FILE_TIERS: dict[str, tuple[str, ...]] = {
    "test_app_browser.py": ("browser",),
    "test_architecture.py": ("unit",),
    "test_benchmarks_smoke.py": ("service", "unit"),
    "test_browser.py": ("browser",),
    "test_browser_tools.py": ("browser",),
    "test_calibration.py": ("unit",),
    "test_calibration_intervals.py": ("unit",),
    "test_calibration_report.py": ("unit", "service"),
    "test_class_app.py": ("service", "unit"),
    "test_class_board.py": ("unit", "service"),
    "test_class_load.py": ("load",),
    "test_collapse.py": ("unit",),
    "test_confusion.py": ("unit",),
    "test_datasets.py": ("unit", "service"),
    "test_docs_browser.py": ("browser",),
    "test_distributed.py": ("unit", "service"),
    "test_environment.py": ("unit",),
    "test_explorer_browser.py": ("browser",),
    "test_explorer_calibration.py": ("unit",),
    "test_explorer_finds.py": ("unit",),
    "test_explorer_layout.py": ("unit",),
    "test_explorer_own_predictions.py": ("unit",),
    "test_explorer_webgl.py": ("unit",),
    "test_export.py": ("unit", "service"),
    "test_figures_calibration.py": ("unit",),
    "test_figures_layout.py": ("unit",),
    "test_files_safety.py": ("unit", "service"),
    "test_generative.py": ("unit", "service"),
    "test_hostile_inputs.py": ("unit", "service"),
    "test_html_report.py": ("unit", "service"),
    "test_inversion_latent.py": ("unit",),
    "test_label_errors_batched.py": ("unit",),
    "test_label_quality.py": ("unit",),
    "test_live.py": ("unit",),
    "test_loaders.py": ("unit",),
    "test_loaders_fuzz.py": ("unit",),
    "test_logits_look_like_probs.py": ("unit",),
    "test_moved.py": ("unit", "service"),
    "test_neighbours.py": ("unit",),
    "test_notebook_layout.py": ("browser",),
    "test_notebooks.py": ("notebooks", "unit"),
    "test_out_of_core.py": ("unit",),
    "test_package_face.py": ("unit",),
    "test_predictions.py": ("unit",),
    "test_projection.py": ("unit",),
    "test_properties.py": ("unit",),
    "test_readme.py": ("unit",),
    "test_report.py": ("service", "unit"),
    "test_scan.py": ("unit",),
    "test_server.py": ("unit", "service"),
    "test_shared_module.py": ("browser",),
    "test_studies_calibration_depth.py": ("unit",),
    "test_studies_fooling.py": ("unit",),
    "test_studies_inversion.py": ("unit",),
    "test_studies_label_errors.py": ("unit",),
    "test_studies_label_smoothing.py": ("unit",),
    "test_studies_maxsup.py": ("unit",),
    "test_studies_noisy_labels.py": ("unit",),
    "test_studies_non_uniformity.py": ("unit",),
    "test_studies_verdicts.py": ("unit",),
    "test_training.py": ("unit",),
    "test_training_service.py": ("service",),
    "test_wheel.py": ("service", "unit"),
    "test_widgets.py": ("unit",),
    "test_zoo.py": ("unit", "rebuild", "service"),
}


#: Tests run beside the browser and load tiers (``make test``): per test file, the parts of the
#: test ids chosen (None: the whole file). Each is long and busy on the CPU, and none times
#: anything or is needed by a browser test (notebook 01, whose executed copy the browser test of
#: its layout opens, stays in the first run). Measured alone on a quiet machine: notebooks 03, 06,
#: 04 and 02 take 58, 49, 16 and 12 s from an empty activation cache; test_wheel's builds a wheel
#: and installs it (about 40 s); test_projection's UMAP tests compile umap's and pynndescent's
#: numba code (40 s with numba's cache on disk, more in a fresh environment). In the first run,
#: on its three busy workers, the sampled UMAP's test alone took 140-230 s.
BACKGROUND: dict[str, tuple[str, ...] | None] = {
    "test_projection.py": None,
    "test_notebooks.py": ("[03_", "[06_", "[04_", "[02_"),
    "test_benchmarks_smoke.py": None,
    "test_report.py": None,
    "test_wheel.py": ("test_the_wheel", "test_an_installed_wheel"),
}


def _in_background(item: pytest.Item) -> bool:
    parts = BACKGROUND.get(item.path.name, ())
    return parts is None or any(part in item.nodeid for part in parts)


def _selected_tiers(config: pytest.Config) -> frozenset[str] | None:
    """The tiers ``-m`` selects when it names one or joins several with ``or`` (in parentheses
    before ``and not background`` too), all of them for ``-m background``, else None."""
    expr = config.getoption("markexpr", "").strip()
    if expr == "background":
        return frozenset(TIERS)
    expr = expr.removesuffix(" and not background").strip().removeprefix("(").removesuffix(")")
    names = [name.strip() for name in expr.split(" or ")]
    return frozenset(names) if names and set(names) <= set(TIERS) else None


def _background_only(config: pytest.Config) -> bool:
    return config.getoption("markexpr", "").strip() == "background"


def pytest_configure(config: pytest.Config) -> None:
    """Under ``-m`` for tiers other than unit, or for the background, leave the package's doctests
    (all unit, none in the background) out of the default paths: collecting them imports every
    labviz module."""
    tiers = _selected_tiers(config)
    if (tiers is not None and ("unit" not in tiers or _background_only(config))
            and config.args_source == pytest.Config.ArgsSource.TESTPATHS):
        config.args[:] = [arg for arg in config.args if Path(arg).resolve() != TESTS.parent / "labviz"]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m`` for some tiers, or for the background, skip importing the test files that hold
    no test of them."""
    selected = _selected_tiers(config)
    tiers = FILE_TIERS.get(collection_path.name)
    if selected is None or tiers is None or collection_path.parent != TESTS:
        return None
    if _background_only(config):
        return True if collection_path.name not in BACKGROUND else None
    return True if selected.isdisjoint(tiers) else None


def _tier(item: pytest.Item) -> tuple[str | None, str | None]:
    """(tier, None) for a test of tests/, or (None, why it has none)."""
    marked = {m.name for m in item.iter_markers() if m.name in TIERS}
    tiers = FILE_TIERS.get(item.path.name)
    if tiers is None:
        return None, (f"{item.path.name} is not in FILE_TIERS of tests/conftest.py: add it with "
                      f"its tiers (one or more of {', '.join(TIERS)})")
    if len(marked) > 1:
        return None, f"{item.name} is marked with {len(marked)} tiers ({', '.join(sorted(marked))})"
    if not marked:
        return tiers[0], None
    (tier,) = marked
    if tier not in tiers:
        return None, (f"{item.name} is marked {tier!r}, a tier FILE_TIERS does not list for "
                      f"{item.path.name} {tiers}")
    return tier, None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Give each test of tests/ its tier's marker as its module is collected; a test without
    exactly one tier makes the collection of its module an error (in pytest-xdist's workers too)."""
    report = yield
    if report.passed and collector.path.parent == TESTS:
        problems = []
        for node in report.result:
            if isinstance(node, pytest.Item):
                tier, problem = _tier(node)
                if tier is None:
                    problems.append(problem)
                else:
                    node.add_marker(tier)
        if problems:
            report.outcome = "failed"
            report.longrepr = ("every test needs exactly one tier (see tests/conftest.py):\n  "
                               + "\n  ".join(dict.fromkeys(problems)))
            report.result = []
    return report


#: Test files whose tests pytest-xdist hands out one by one under ``--dist loadfile``: each notebook
#: runs in a kernel of its own, and two or three at once share the cores.
SPREAD = ("test_notebooks.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile``, with each test of the :data:`SPREAD` files a unit of its own."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SpreadSome(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0].rsplit("/", 1)[-1] in SPREAD:
                return nodeid
            return super()._split_scope(nodeid)

    return SpreadSome(config, log)

#: The longest tests and test files, in the order they start (an entry is part of a test id).
#: With ``--no-loadscope-reorder`` pytest-xdist hands out units (a file, or a notebook) in the
#: order they are collected, each worker holding two: its first, and the next it will run. The
#: background starts with the first run, at the lowest priority: one worker takes 06, 04 and
#: then 03, the other test_projection (its UMAP tests compile numba code for most of a minute of
#: CPU) and 02, so that 03, which computes many activations of its own, starts once the first
#: run's notebooks have cached theirs; the docs build, which renders every notebook's executed
#: copy, starts after 03, beside the rest. Measured from fresh clones: with 06 and
#: test_projection first and the docs build after the whole background, 728 s; with 06, 04, 03,
#: 02 first (03 at once, beside the first run's notebooks, both computing the same
#: activations), 806 s. In the first run: notebook 01 (whose activations 02 reuses from the
#: shared cache, ``zoo_cache``), the class app and the training service, which wait on their
#: workers, and the live classroom's notebook.
START_FIRST = ("[06_", "test_projection.py", "[04_", "[02_", "[03_", "[01_", "test_class_app.py",
               "test_training_service.py", "[08_")


def _start_rank(item: pytest.Item) -> int:
    return next((rank for rank, part in enumerate(START_FIRST) if part in item.nodeid),
                len(START_FIRST))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Doctests are unit tests; any other test without a tier stops the run, before ``-m`` selects.
    The tests of :data:`START_FIRST` move to the front, and those of :data:`BACKGROUND` get the
    marker ``background``."""
    items.sort(key=_start_rank)  # stable: the rest keep their order
    untiered = []
    for item in items:
        if item.path.parent == TESTS and _in_background(item):
            item.add_marker("background")
        if isinstance(item, DoctestItem):
            item.add_marker("unit")
        elif not any(m.name in TIERS for m in item.iter_markers()):
            untiered.append(item.nodeid)
    if untiered:
        raise pytest.UsageError("tests outside tests/ without a tier (see tests/conftest.py):\n  "
                                + "\n  ".join(untiered))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("labviz-cache")))


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One activation cache for the tests that run the notebooks on the shipped checkpoints, as in
    a teaching session: the first to need a checkpoint's activations computes them, the others
    reload them (the cache writes each entry atomically, so processes may share it).

    ``make test`` names one empty folder (``LABVIZ_TEST_ZOO_CACHE``) for all its tiers, so the
    browser tests reload what the notebooks computed; otherwise it is this run's own, shared by
    pytest-xdist's workers.
    """
    given = os.environ.get("LABVIZ_TEST_ZOO_CACHE")
    if given:
        cache = Path(given)
    elif "PYTEST_XDIST_WORKER" in os.environ:
        cache = tmp_path_factory.getbasetemp().parent / "zoo-cache"  # the run's, above each worker's
    else:
        return tmp_path_factory.mktemp("zoo-cache")
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture
def shared_zoo_cache(zoo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test, and the kernels and servers it starts, use :func:`zoo_cache`."""
    monkeypatch.setenv("LABVIZ_CACHE_DIR", str(zoo_cache))
    return zoo_cache


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def patch_studies(monkeypatch, name: str, value) -> None:
    """Replace ``name`` in every ``labviz.studies`` module that holds it (each imported its own)."""
    import sys

    import labviz.studies  # noqa: F401  (loads every study module)

    for modname, module in list(sys.modules.items()):
        if (modname == "labviz.studies" or modname.startswith("labviz.studies.")) and hasattr(module, name):
            monkeypatch.setattr(module, name, value)


def softmax_rows(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def two_family_zoo(monkeypatch, rng):
    """Two families of two seeds each, served from synthetic Predictions instead of the zoo."""
    entries, preds = {}, {}
    for family, sharp in (("ce", 3.0), ("ls0.1", 1.0)):
        for seed in (0, 1):
            name = f"fake-{family}-s{seed}"
            entries[name] = {"name": name, "seed": seed, "family": family, "dataset": "fake", "alpha": 0.0,
                             "sha256": f"{name:0>64}"}
            for split in ("val", "test"):
                y = rng.integers(0, 3, size=300)
                z = rng.normal(size=(300, 3))
                z[np.arange(300), y] += 2.0
                preds[(name, split)] = Predictions.from_arrays(y_true=y, logits=sharp * z,
                                                               name=f"{name} [{split}]")

    monkeypatch.setattr(zoo, "predictions", lambda name, split="test", *, with_images=True: preds[(name, split)])
    patch_studies(monkeypatch, "members",
                        lambda family, dataset=FASHION: [n for n, e in entries.items()
                                                                 if e["family"] == family])
    monkeypatch.setattr(zoo, "entry", lambda name: entries[name])
    monkeypatch.setattr(zoo, "class_names", lambda dataset: ("a", "b", "c"))
    return entries, preds
