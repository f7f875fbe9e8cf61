"""Live training for a classroom: train a small CNN on real data in seconds, measure it, keep a history.

The compute layer of :func:`labviz.live` (the widget is in :mod:`labviz.widgets.trainer`):

* :class:`LiveConfig`: one run's knobs (loss, α, label noise, epochs, seed, dataset);
* :func:`train_live`: train it, evaluate it on the test split and measure accuracy, ECE, NC1 and the
  intra/inter-class metrics: a :class:`LiveRun`;
* :class:`LiveSession`: runs in a background thread (a new run supersedes the old one, any run
  can be cancelled) and a history of finished runs, so a class builds its own α sweep;
* :func:`estimate_seconds`: how long a run will take, from a short timing on this machine.

Runs use the zoo's data splits (:func:`labviz.zoo.split_data`). Digits (scikit-learn's bundled
8×8 images) always work, and a 30-epoch run takes about 1.5 s on this 2-core machine;
Fashion-MNIST runs on a subset of the zoo's train split. Knowledge distillation distils from a
zoo teacher (the CE or the LS α = 0.1 checkpoint of the same dataset, seed 0) into the zoo's
smaller student network, as the zoo's KD runs do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from labviz.core import _validation as v

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from labviz.core.predictions import Predictions

LiveDataset = Literal["digits", "fashion-mnist"]
LiveLoss = Literal["ce", "ls", "maxsup", "kd"]
LiveTeacher = Literal["ce", "ls"]
DATASETS: tuple[str, ...] = ("digits", "fashion-mnist")
LOSSES: tuple[str, ...] = ("ce", "ls", "maxsup", "kd")
TEACHERS: tuple[str, ...] = ("ce", "ls")
#: Where α is used; CE and KD take none.
ALPHA_LOSSES: tuple[str, ...] = ("ls", "maxsup")
#: Accepted α for LS and MaxSup: below 1 the true class keeps the largest target; negative LS
#: is bounded by the floor of :data:`labviz.zoo.training.NLS_FLOOR`.
ALPHA_RANGE = (-0.5, 0.9)
MAX_EPOCHS = 200
#: Default Fashion-MNIST subset: about 10 s for 10 epochs on one core of this machine.
DEFAULT_FMNIST_TRAIN = 2000
LOSS_NAMES = {"ce": "CE", "ls": "LS", "maxsup": "MaxSup", "kd": "KD"}
#: Columns of :meth:`LiveSession.history`.
HISTORY_COLUMNS = ("run", "dataset", "loss", "alpha", "teacher", "noise", "epochs", "seed",
                   "n_train", "accuracy", "ece", "nc1", "intra", "inter", "seconds")


@dataclass(frozen=True)
class LiveConfig:
    """The knobs of one live run.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
    loss : {"ce", "ls", "maxsup", "kd"}
    alpha : float
        LS or MaxSup strength, in [-0.5, 0.9] (negative LS is floored as in
        :func:`labviz.zoo.training.label_smoothing_loss`). Must be 0 for CE and KD.
    noise_rate : float
        Share of training labels flipped uniformly to another class, in [0, 0.9].
    epochs : int
    seed : int
        Seeds the weights, the batch order and the label noise.
    teacher : {"ce", "ls"}
        For KD only: distil from the zoo's CE or LS α = 0.1 checkpoint.
    n_train : int or None
        Fashion-MNIST only: how many of the zoo's 10,000 training images to use (default 2,000).
        Digits always use the whole train split (1,077 images); None there.
    """

    dataset: LiveDataset = "digits"
    loss: LiveLoss = "ce"
    alpha: float = 0.0
    noise_rate: float = 0.0
    epochs: int = 30
    seed: int = 0
    teacher: LiveTeacher = "ce"
    n_train: int | None = None

    def __post_init__(self) -> None:
        v.check_option(self.dataset, "dataset", DATASETS)
        v.check_option(self.loss, "loss", LOSSES)
        v.check_option(self.teacher, "teacher", TEACHERS)
        alpha = v.check_float(self.alpha, "alpha")
        lo, hi = ALPHA_RANGE
        if self.loss in ALPHA_LOSSES and not lo <= alpha <= hi:
            raise ValueError(f"`alpha` must be in [{lo}, {hi}] for loss={self.loss!r}; got {alpha!r}.")
        if self.loss not in ALPHA_LOSSES and alpha != 0:
            raise ValueError(f"`alpha` must be 0 for loss={self.loss!r} (it takes no α); got {alpha!r}.")
        rate = v.check_float(self.noise_rate, "noise_rate")
        if not 0 <= rate <= 0.9:
            raise ValueError(f"`noise_rate` must be in [0, 0.9]; got {rate!r}.")
        v.check_int(self.epochs, "epochs", minimum=1, maximum=MAX_EPOCHS)
        v.check_int(self.seed, "seed", minimum=0)
        if self.dataset == "digits" and self.n_train is not None:
            raise ValueError(f"`n_train` is for Fashion-MNIST; digits use their whole train split. "
                             f"Got n_train={self.n_train!r}.")
        if self.n_train is not None:
            v.check_int(self.n_train, "n_train", minimum=100, maximum=10_000)

    @property
    def train_size(self) -> int:
        """Number of training images this run uses."""
        if self.dataset == "digits":
            from labviz.zoo import split_indices

            return len(split_indices("digits")["train"])
        return self.n_train or DEFAULT_FMNIST_TRAIN

    def describe(self) -> str:
        """A one-line summary, e.g. ``"LS α=0.10 · noise 0% · 30 epochs · seed 0 · digits"``."""
        loss = LOSS_NAMES[self.loss]
        if self.loss in ALPHA_LOSSES:
            loss += f" α={self.alpha:.2f}"
        if self.loss == "kd":
            loss += f" from the {LOSS_NAMES[self.teacher]} teacher"
        data = self.dataset if self.dataset == "digits" else f"Fashion-MNIST ({self.train_size:,} images)"
        return f"{loss} · noise {self.noise_rate:.0%} · {self.epochs} epochs · seed {self.seed} · {data}"


@dataclass(frozen=True, eq=False)
class LiveRun:
    """A finished live run: its config, test-split predictions and measurements.

    Attributes
    ----------
    run_id : int
        Its number in the session (1, 2, ...).
    config : LiveConfig
    predictions : Predictions
        Logits, features, head weights and images of the test split.
    accuracy, ece, nc1, intra, inter : float
        Test accuracy, top-label ECE (15 bins), NC1, intra-class variation and class separation.
    seconds : float
        Wall time from the start of the run to these results (training, evaluation, metrics).
    estimated_seconds : float
        What :func:`estimate_seconds` predicted before the run.
    """

    run_id: int
    config: LiveConfig
    predictions: Predictions
    accuracy: float
    ece: float
    nc1: float
    intra: float
    inter: float
    seconds: float
    estimated_seconds: float

    @property
    def label(self) -> str:
        """The run's name in the views' status line: "run <id>: <its settings>"."""
        return f"run {self.run_id}: {self.config.describe()}"

    def row(self) -> dict:
        """This run as one row of :meth:`LiveSession.history`."""
        c = self.config
        return {"run": self.run_id, "dataset": c.dataset, "loss": LOSS_NAMES[c.loss],
                "alpha": c.alpha, "teacher": LOSS_NAMES[c.teacher] if c.loss == "kd" else "",
                "noise": c.noise_rate, "epochs": c.epochs, "seed": c.seed, "n_train": c.train_size,
                "accuracy": self.accuracy, "ece": self.ece, "nc1": self.nc1, "intra": self.intra,
                "inter": self.inter, "seconds": self.seconds}


# ----- one run -----------------------------------------------------------------------------------
def _arch(config: LiveConfig) -> str:
    return "cnn-small" if config.loss == "kd" else "cnn"


def _train_data(config: LiveConfig) -> tuple[np.ndarray, np.ndarray]:
    from labviz.zoo import split_data

    images, labels, _ = split_data(config.dataset, "train")
    if config.dataset == "fashion-mnist":  # the split is a random permutation: its head is a random subset
        images, labels = images[:config.train_size], labels[:config.train_size]
    return images, labels


@lru_cache(maxsize=4)
def _teacher(dataset: str, teacher: str) -> nn.Module:
    """The zoo teacher, loaded (and its sha256 checked) once per session: KD only reads it."""
    from labviz import zoo

    prefix = "digits" if dataset == "digits" else "fmnist"
    return zoo.load(f"{prefix}-ce-s0" if teacher == "ce" else f"{prefix}-ls0.1-s0")[0]


def train_live(
    config: LiveConfig,
    *,
    run_id: int = 1,
    on_batch: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> LiveRun:
    """Train one live run from scratch, evaluate it on the test split and measure it.

    Deterministic for a given config (training is seeded and single-threaded, as in the zoo).

    Parameters
    ----------
    config : LiveConfig
    run_id : int
    on_batch : callable, optional
        ``on_batch(done, total)`` after every training batch.
    stop : threading.Event, optional
        Set it to cancel: :class:`labviz.zoo.training.TrainingCancelled` is raised at the next batch.

    Returns
    -------
    LiveRun
    """
    import torch

    from labviz.compute.calibration import expected_calibration_error
    from labviz.compute.collapse import collapse_metrics
    from labviz.zoo.models import SmallCNN
    from labviz.core.predictions import Predictions
    from labviz.zoo.training import TrainConfig, images_to_tensor, symmetric_noise, train
    from labviz.zoo import class_names, split_data

    if not isinstance(config, LiveConfig):
        raise TypeError(f"`config` must be a LiveConfig; got {type(config).__name__}.")
    estimate = estimate_seconds(config)
    start = time.perf_counter()
    images, labels = _train_data(config)
    if config.noise_rate:
        labels = symmetric_noise(labels, config.noise_rate, n_classes=10, seed=config.seed).labels
    torch.manual_seed(config.seed)
    model = SmallCNN(n_classes=10, image_size=images.shape[1], arch=_arch(config))
    train(model, images, labels, TrainConfig(loss=config.loss, alpha=config.alpha,
                                             epochs=config.epochs, seed=config.seed),
          teacher=_teacher(config.dataset, config.teacher) if config.loss == "kd" else None,
          progress=False,
          description=f"live run {run_id}", on_batch=on_batch, stop=stop)

    test_images, y_test, ids = split_data(config.dataset, "test")
    with torch.inference_mode():
        feats = torch.cat([model.embed(xb) for xb in images_to_tensor(test_images).split(2048)])
        logits = model.head(feats)
    predictions = Predictions.from_arrays(
        y_true=y_test, logits=logits.numpy(), features=feats.numpy(), ids=ids,
        class_names=class_names(config.dataset), weights=model.head.weight.detach().numpy(),
        bias=model.head.bias.detach().numpy(), images=test_images, name=f"run {run_id}")
    m = collapse_metrics(predictions)
    return LiveRun(
        run_id=run_id, config=config, predictions=predictions,
        accuracy=float((predictions.y_pred == y_test).mean()),
        ece=expected_calibration_error(y_test, predictions.probs, n_bins=15),
        nc1=m.nc1, intra=m.intra, inter=m.inter,
        seconds=time.perf_counter() - start, estimated_seconds=estimate)


# ----- time estimate -----------------------------------------------------------------------------
@lru_cache(maxsize=8)
def time_per_image(arch: str, image_size: int) -> float:
    """Training seconds per image (forward, backward, Adam step, batches of 128) on one thread,
    timed on this machine over a few batches of random images."""
    import torch

    from labviz.zoo.models import SmallCNN

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as training runs
    try:
        torch.manual_seed(0)
        model = SmallCNN(n_classes=10, image_size=image_size, arch=arch)
        optimizer = torch.optim.Adam(model.parameters())
        x = torch.rand(128, 1, image_size, image_size)
        y = torch.randint(0, 10, (128,))
        times = []
        for _ in range(4):  # the first batch warms up allocations; the best of the others counts
            start = time.perf_counter()
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        return min(times[1:]) / len(x)
    finally:
        torch.set_num_threads(threads)


def estimate_seconds(config: LiveConfig,
                     seconds_per_image: Callable[[str, int], float] | None = None) -> float:
    """Predicted wall time of :func:`train_live` for ``config`` on this machine.

    Training images x epochs x the seconds per image of a short timing of this network here
    (:func:`time_per_image`), plus the test-set pass, at one third of a training step per
    image. The timing is taken once per network and image size (about 0.1 s). It is an estimate:
    other work on the machine slows real runs, and :class:`LiveRun` keeps both numbers.
    ``seconds_per_image(arch, image_size)`` replaces the timing here, e.g. by one taken where the
    runs train (:meth:`labviz.classroom.training_service.TrainingService.seconds_per_image`).
    """
    from labviz.zoo import split_indices

    size = 8 if config.dataset == "digits" else 28
    per_image = (seconds_per_image or time_per_image)(_arch(config), size)
    n_test = len(split_indices(config.dataset)["test"])
    return per_image * (config.epochs * config.train_size + n_test / 3)


# ----- a session: background runs and their history ------------------------------------------------
@dataclass(eq=False)
class _Job:
    run_id: int
    config: LiveConfig
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class RunHistory:
    """The finished runs of a session, ``runs`` (guarded by ``_lock``), and their table; shared by
    :class:`LiveSession` and :class:`labviz.classroom.training_service.ServiceSession`."""

    runs: list[LiveRun]
    _lock: threading.Lock | threading.Condition

    def history(self) -> pd.DataFrame:
        """One row per finished run (columns :data:`HISTORY_COLUMNS`), oldest first."""
        import pandas as pd

        with self._lock:
            rows = [r.row() for r in self.runs]
        return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))

    def estimate_seconds(self, config: LiveConfig) -> float:
        """Predicted wall time of a run of ``config`` where this session trains it."""
        return estimate_seconds(config)

    def get(self, run_id: int) -> LiveRun:
        """The finished run numbered ``run_id``."""
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise ValueError(f"`run_id` must be one of the finished runs {[r.run_id for r in self.runs]}; "
                         f"got {run_id!r}.")


class LiveSession(RunHistory):
    """Live runs in a background thread, one at a time, and the history of the finished ones.

    :meth:`start` returns at once; the run trains in a daemon thread. Starting another run while one
    trains *supersedes* it: the old run stops at its next batch and its results are dropped, so the
    history and the callbacks only ever see whole runs, in the order they were started.
    :meth:`cancel` stops the current run the same way. For a run in the calling thread, call
    :func:`train_live`.

    Callbacks run in the training thread: ``on_batch(run_id, done, total)`` after each batch, then
    exactly one of ``on_done(run)``, ``on_cancel(run_id)`` or ``on_error(run_id, exception)``.
    """

    def __init__(
        self,
        *,
        on_batch: Callable[[int, int, int], None] | None = None,
        on_done: Callable[[LiveRun], None] | None = None,
        on_cancel: Callable[[int], None] | None = None,
        on_error: Callable[[int, BaseException], None] | None = None,
    ) -> None:
        self.on_batch, self.on_done, self.on_cancel, self.on_error = on_batch, on_done, on_cancel, on_error
        self.runs: list[LiveRun] = []
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._next_id = 1

    def __repr__(self) -> str:
        job = self._job
        state = f"training run {job.run_id}" if job is not None and self.running else "idle"
        return f"LiveSession({len(self.runs)} runs, {state})"

    @property
    def current_id(self) -> int | None:
        """The id of the run started last (running or not), None before the first."""
        job = self._job
        return None if job is None else job.run_id

    @property
    def running(self) -> bool:
        """Whether a run is training now."""
        job = self._job
        return job is not None and job.thread is not None and job.thread.is_alive()

    def start(self, config: LiveConfig) -> int:
        """Train ``config`` in the background, superseding any run in progress; return its run id."""
        if not isinstance(config, LiveConfig):
            raise TypeError(f"`config` must be a LiveConfig; got {type(config).__name__}.")
        with self._lock:
            previous = self._job
            if previous is not None:
                previous.stop.set()
            job = _Job(self._take_id(), config)
            job.thread = threading.Thread(target=self._work, args=(job, previous), daemon=True,
                                          name=f"labviz-live-{job.run_id}")
            self._job = job
        job.thread.start()
        return job.run_id

    def cancel(self) -> bool:
        """Stop the run in progress (its results are dropped); False if none was running."""
        job = self._job
        if job is None or not self.running:
            return False
        job.stop.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends; True if none is running any more."""
        job = self._job
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return not self.running

    def _take_id(self) -> int:
        run_id, self._next_id = self._next_id, self._next_id + 1
        return run_id

    def _work(self, job: _Job, previous: _Job | None) -> None:
        from labviz.zoo.training import TrainingCancelled

        if previous is not None and previous.thread is not None:
            previous.thread.join()  # one training at a time: torch's thread setting is global
        try:
            if job.stop.is_set():
                raise TrainingCancelled(f"run {job.run_id} was superseded before it started.")
            def report(done: int, total: int) -> None:
                callback = self.on_batch  # read per batch: it may be replaced during a run
                if callback is not None:
                    callback(job.run_id, done, total)

            on_batch = None if self.on_batch is None else report
            result = train_live(job.config, run_id=job.run_id, on_batch=on_batch, stop=job.stop)
        except TrainingCancelled:
            if self.on_cancel is not None:
                self.on_cancel(job.run_id)
            return
        except Exception as exc:  # reported to the caller's callback, never lost in the thread
            if self.on_error is not None:
                self.on_error(job.run_id, exc)
                return
            raise
        with self._lock:
            superseded = job.stop.is_set()  # stopped after its last batch: still superseded
            if not superseded:
                self.runs.append(result)
        if superseded:
            if self.on_cancel is not None:
                self.on_cancel(job.run_id)
        elif self.on_done is not None:
            self.on_done(result)


__all__ = ["LiveConfig", "LiveRun", "LiveSession", "estimate_seconds", "train_live"]
