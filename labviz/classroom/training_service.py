"""A class's live training on one shared pool of worker processes, scheduled by Dask distributed.

In class, every visitor of the teacher's page gets a kernel. With :class:`~labviz.classroom.live_training.LiveSession`
each of those kernels trains by itself, so 25 students mean 25 trainings fighting over two cores.
Here the visitors' kernels only *submit* runs; a fixed pool of single-threaded worker processes
(one per core) trains them, one run per worker at a time, and the results come back as plain data.
A visitor's kernel never imports torch.

* :class:`TrainingService`: starts its own ``LocalCluster`` (one single-threaded worker process per
  core) or connects to a running scheduler, and hands out one :class:`ServiceSession` per visitor;
* :class:`ServiceSession`: :class:`~labviz.classroom.live_training.LiveSession`'s interface and callback contract
  (``on_batch(run_id, done, total)`` during a run, then exactly one of ``on_done(run)``,
  ``on_cancel(run_id)`` or ``on_error(run_id, exception)``), with the runs trained on the pool;
* :class:`RunLost`: the error a visitor gets when the worker process training their run died twice.

How Dask does the work:

* **One queue, oldest first, round-robin between visitors.** Each run is one Dask task marked as a
  data producer, so the scheduler keeps it in its own queue until a worker thread is free and then
  hands out the oldest. A session keeps at most one task on the scheduler at a time: a visitor's
  next run is submitted only when their previous one has ended, so it queues behind every other
  visitor's waiting run. A visitor who asks for five runs gets one turn per round.
* **Supersede and cancel.** Every run has a ``distributed.Event`` as its stop flag; the worker
  checks it between batches (at most every :data:`STOP_POLL_S`). A new run of a session sets the
  flag of that session's run in progress and drops its waiting ones; a run still waiting in the
  scheduler's queue is also taken out of it (``Future.cancel``). Other visitors' runs never see it.
* **Progress** travels as Dask structured events: the worker logs ``(run, done, total)`` under the
  session's topic (``Worker.log_event``) and the session receives them (``Client.subscribe_topic``).
* **A worker killed mid-run.** The service's scheduler runs with ``allowed-failures = 1`` and
  ``worker-saturation = 1.0`` (:data:`SCHEDULER_CONFIG`): a worker holds only the run it trains, so
  its death charges that run alone; the scheduler retries it once on a fresh worker (the nanny
  restarts the process) and, should that one die too, fails it with ``KilledWorker``, which the
  session reports to that visitor as :class:`RunLost`.

Callbacks run in the session's own dispatcher thread, one at a time and in the order the runs
were submitted, as :class:`~labviz.classroom.live_training.LiveSession`'s run in its training thread.

Start a shared service for a class (the teacher's machine), then connect each kernel to it::

    from labviz.classroom.training_service import TrainingService
    service = TrainingService()            # LocalCluster: one single-threaded worker per core
    service.address                        # e.g. 'tcp://127.0.0.1:40123'

    # in a visitor's kernel
    session = TrainingService(address).session(on_done=print)
    session.submit(LiveConfig(loss="ls", alpha=0.1))

A scheduler started by other means must run with :data:`SCHEDULER_CONFIG` for these guarantees
(``TrainingService(address)`` warns if it does not), e.g. ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1
DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0 dask scheduler``, with workers started as
``dask worker --nworkers 2 --nthreads 1 <address>``. Dask comes with labviz's ``distributed``
extra: ``pip install 'labviz[distributed]'``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import queue
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from labviz.core import _validation as v
from labviz.classroom.live_training import LiveConfig, LiveRun, RunHistory, estimate_seconds, time_per_image, train_live

if TYPE_CHECKING:
    import distributed

__all__ = ["SCHEDULER_CONFIG", "RunLost", "ServiceSession", "TrainingService"]

#: The scheduler settings the service relies on. ``allowed-failures``: a run whose worker dies is
#: retried once, then failed. ``worker-saturation``: a worker is sent one queued task per thread,
#: so a worker holds only the run it trains and the rest wait in the scheduler's queue.
SCHEDULER_CONFIG: dict[str, Any] = {"distributed.scheduler.allowed-failures": 1,
                                    "distributed.scheduler.worker-saturation": 1.0}
#: Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (memory goes back to the system
#: sooner); torch's many small allocations then train about 40% slower, so the service's workers
#: keep glibc's default.
_WORKER_CONFIG: dict[str, Any] = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
#: A worker asks the scheduler whether its run was stopped at most this often (one round trip).
STOP_POLL_S = 0.1

#: ``train_live``'s signature: ``train(config, *, run_id, on_batch, stop) -> LiveRun``.
TrainFunction = Callable[..., LiveRun]

_METRICS = ("accuracy", "ece", "nc1", "intra", "inter", "seconds", "estimated_seconds")


class RunLost(RuntimeError):
    """A run whose worker process died while training it, on its first try and on its one retry."""


def _require_distributed() -> ModuleType:
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise ImportError("labviz.classroom.training_service needs 'distributed', which is not installed; "
                          "install labviz's distributed extra: pip install 'labviz[distributed]'."
                          ) from exc


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ----- what runs on a worker ----------------------------------------------------------------------
class _StopFlag:
    """The ``stop`` that :func:`~labviz.classroom.live_training.train_live` checks before every batch: set
    when the session sets its ``distributed.Event`` (asked of the scheduler at most every
    ``interval`` seconds), or when no client wants the run any more (a visitor's kernel that went
    away: the scheduler then releases the task, and the worker marks it cancelled)."""

    def __init__(self, name: str, interval: float = STOP_POLL_S) -> None:
        from distributed import Event, get_worker

        self._event = Event(name)
        self._interval = interval
        self._checked = -float("inf")
        self._worker = get_worker()
        self._key = self._worker.get_current_task()
        self.seen = False

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self.seen and now - self._checked >= self._interval:
            self._checked = now
            task = self._worker.state.tasks.get(self._key)
            self.seen = task is None or task.state == "cancelled" or self._event.is_set()
        return self.seen


class _Progress:
    """``on_batch(done, total)`` for the training loop: logs the first batch, every ``step`` share
    of the batches and the last one as events (non-blocking: the worker's stream batches them)."""

    def __init__(self, topic: str, key: str, step: float) -> None:
        from distributed import get_worker

        self._worker, self._topic, self._key, self._step = get_worker(), topic, key, step

    def __call__(self, done: int, total: int) -> None:
        every = max(1, int(total * self._step + 1e-9))
        if done == 1 or done % every == 0 or done == total:
            self._worker.log_event(self._topic, {"key": self._key, "kind": "batch",
                                                 "done": int(done), "total": int(total)})


def _train_task(train: TrainFunction, config: LiveConfig, *, run_id: int, key: str, topic: str,
                stop_name: str, progress_step: float) -> dict:
    """One run on a worker; returns plain data: ``{"status": "done", "run": ...}`` or
    ``{"status": "cancelled"}``. Errors propagate (as builtin exceptions, see below)."""
    from distributed import get_worker

    stop = _StopFlag(stop_name)
    if stop.is_set():
        return {"status": "cancelled"}  # stopped while it waited in the queue
    get_worker().log_event(topic, {"key": key, "kind": "start", "pid": os.getpid()})
    try:
        run = train(config, run_id=run_id, on_batch=_Progress(topic, key, progress_step), stop=stop)
    except Exception as exc:
        if stop.seen:  # TrainingCancelled, or whatever a stub raises once it saw the stop flag
            return {"status": "cancelled"}
        if type(exc).__module__ != "builtins":
            # The visitor's kernel unpickles the exception; torch's or labviz.zoo.training's classes
            # would import torch there.
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        raise
    return {"status": "done", "run": _run_to_data(run)}


def _run_to_data(run: LiveRun) -> dict:
    """A finished run as plain data: its measurements and its predictions' fields (numpy arrays)."""
    p = run.predictions
    fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    bad = [k for k, x in fields.items() if hasattr(x, "shape") and not isinstance(x, np.ndarray)]
    if bad:  # a tensor would make the visitor's kernel import torch to unpickle it
        raise TypeError(f"`train` must return predictions holding numpy arrays; got {bad} of type "
                        f"{type(fields[bad[0]]).__name__}.")
    return {"metrics": {m: float(getattr(run, m)) for m in _METRICS}, "predictions": fields}


def _run_from_data(data: dict, *, run_id: int, config: LiveConfig) -> LiveRun:
    from labviz.core.predictions import Predictions

    return LiveRun(run_id=run_id, config=config, predictions=Predictions(**data["predictions"]),
                   **data["metrics"])


def dask_setup(worker: distributed.Worker) -> None:
    """Dask's preload hook, run in each worker process as it starts (``warm=True``): import what
    :func:`~labviz.classroom.live_training.train_live` needs and time its network (about 3 s), so that no
    run waits for it."""
    for module in ("torch", "labviz.zoo.training", "labviz.zoo.models", "labviz.compute.calibration",
                   "labviz.compute.collapse"):
        importlib.import_module(module)
    from labviz.classroom.live_training import estimate_seconds

    estimate_seconds(LiveConfig())  # loads the digits and times the network, once per process


def _scheduler_settings(dask_scheduler: distributed.Scheduler) -> dict[str, Any]:
    return {"distributed.scheduler.allowed-failures": dask_scheduler.allowed_failures,
            "distributed.scheduler.worker-saturation": dask_scheduler.WORKER_SATURATION}


# ----- the service ---------------------------------------------------------------------------------
class TrainingService:
    """A pool of training worker processes behind one Dask scheduler, and a client to it.

    Parameters
    ----------
    address : str, optional
        A running scheduler's address (``"tcp://host:port"``) to connect to. Without it the service
        starts its own ``LocalCluster`` on the loopback interface: ``n_workers`` processes of one
        thread each, with :data:`SCHEDULER_CONFIG`; :meth:`close` stops it.
    n_workers : int, optional
        Worker processes of the cluster the service starts; default one per core.
    train : callable, default :func:`labviz.classroom.live_training.train_live`
        What a worker runs: ``train(config, *, run_id, on_batch, stop) -> LiveRun``, importable or
        picklable. Tests pass a fast stub.
    progress_step : float, default 0.01
        A worker reports progress after the first batch, every ``progress_step`` share of the
        batches and the last one, so ``on_batch`` is called about ``1 / progress_step`` times per
        run (the widget's progress bar moves in steps of 0.02).
    warm : bool, default True
        Workers of a cluster the service starts import torch and the training modules when they
        start (:func:`dask_setup`), so that a run does not wait for them; so does a worker the
        nanny restarts.
    timeout : float, default 30
        Seconds to wait for the cluster to start or the scheduler to answer.

    Attributes
    ----------
    client : distributed.Client
        Not the default client: other Dask work in the process keeps its own scheduler.
    cluster : distributed.LocalCluster or None
        The cluster the service started, None when it connected to ``address``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        train: TrainFunction = train_live,
        progress_step: float = 0.01,
        warm: bool = True,
        timeout: float = 30,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"`address` must be a scheduler address (str) or None; "
                            f"got {type(address).__name__}.")
        if address is not None and n_workers is not None:
            raise ValueError(f"`n_workers` is for a cluster the service starts; got "
                             f"n_workers={n_workers!r} with address={address!r}.")
        if not callable(train):
            raise TypeError(f"`train` must be callable; got {type(train).__name__}.")
        if not isinstance(warm, bool):
            raise TypeError(f"`warm` must be a bool; got {type(warm).__name__}.")
        step = v.check_float(progress_step, "progress_step")
        if not 0 < step <= 1:
            raise ValueError(f"`progress_step` must be in (0, 1]; got {progress_step!r}.")
        timeout = v.check_float(timeout, "timeout")
        if timeout <= 0:
            raise ValueError(f"`timeout` must be > 0; got {timeout!r}.")
        n = _default_workers() if n_workers is None else v.check_int(n_workers, "n_workers", minimum=1)
        dist = _require_distributed()
        import dask

        self.train, self.progress_step = train, step
        self._per_image: dict[tuple[str, int], float] = {}
        self.cluster: distributed.LocalCluster | None = None
        self._sessions: list[ServiceSession] = []
        if address is None:
            with dask.config.set({**SCHEDULER_CONFIG, **_WORKER_CONFIG}):
                self.cluster = dist.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, silence_logs=40,  # logging.ERROR: a killed worker is expected
                    # no dashboard, but the scheduler's HTTP routes (health) still listen: loopback only
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    preload=[__name__] if warm else [], timeout=timeout)
            address = self.cluster.scheduler_address
        try:
            self.client = dist.Client(address, set_as_default=False, timeout=timeout)
        except BaseException:
            if self.cluster is not None:
                self.cluster.close()
            raise
        if self.cluster is None:
            settings = self.client.run_on_scheduler(_scheduler_settings)
            if settings != SCHEDULER_CONFIG:
                warnings.warn(f"The scheduler at {address} runs with {settings}; the training "
                              f"service expects {SCHEDULER_CONFIG} (a run is retried once when its "
                              "worker dies, and waits in the scheduler's queue until a worker is "
                              "free).", RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        return (f"TrainingService({self.address!r}, {self.n_workers} workers, "
                f"{len(self._sessions)} sessions)")

    def __enter__(self) -> TrainingService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """The scheduler's address: pass it to ``TrainingService(address)`` in other processes."""
        return self.client.scheduler.address

    @property
    def n_workers(self) -> int:
        """Worker processes connected now."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def seconds_per_image(self, arch: str, image_size: int) -> float:
        """Training seconds per image of the network ``arch`` on ``image_size`` images, timed once
        on a worker (:func:`~labviz.classroom.live_training.time_per_image`) and kept on the scheduler, so
        that every visitor's time estimate is the workers' and no visitor's kernel imports torch.

        The first visitor to ask waits for a free worker (at most one run); the others read it
        from the scheduler.
        """
        key = (str(arch), int(image_size))
        if key not in self._per_image:
            name = f"labviz-seconds-per-image-{key[0]}-{key[1]}"
            value = self.client.get_dataset(name, default=None)
            if value is None:
                value = float(self.client.submit(time_per_image, *key, pure=False).result())
                self.client.publish_dataset(value, name=name, override=True)
            self._per_image[key] = float(value)
        return self._per_image[key]

    def session(
        self,
        *,
        on_batch: Callable[[int, int, int], None] | None = None,
        on_done: Callable[[LiveRun], None] | None = None,
        on_cancel: Callable[[int], None] | None = None,
        on_error: Callable[[int, BaseException], None] | None = None,
    ) -> ServiceSession:
        """A new visitor's session: its runs, its callbacks, its history (see :class:`ServiceSession`)."""
        session = ServiceSession(self, on_batch=on_batch, on_done=on_done, on_cancel=on_cancel,
                                 on_error=on_error)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every session (their runs are stopped, no more callbacks), the client, and the
        cluster if the service started it."""
        for session in self._sessions:
            session.close()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ----- one visitor ------------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class _Run:
    run_id: int
    config: LiveConfig
    key: str
    future: Any = None
    started: bool = False
    stopped: bool = False
    stop_sent: bool = False

    @property
    def stop_name(self) -> str:
        return f"{self.key}-stop"


_CLOSE = object()


class ServiceSession(RunHistory):
    """One visitor's runs on a :class:`TrainingService`: :class:`~labviz.classroom.live_training.LiveSession`'s
    interface, with the training done by the service's workers.

    Make it with :meth:`TrainingService.session`. :meth:`submit` returns at once. Submitting a run
    while one is waiting or training *supersedes* it: it stops at its next batch (or leaves the
    queue) and its results are dropped. With ``supersede=False`` the run waits behind the session's
    own runs instead (an α sweep); the service still gives every visitor one turn per round.
    :meth:`cancel` stops the session's runs the same way. Nothing here touches other sessions' runs.

    Callbacks run in this session's dispatcher thread, in the order the runs were submitted:
    ``on_batch(run_id, done, total)`` as the worker reports progress (every
    ``progress_step`` of the batches, see :class:`TrainingService`; a retried run starts again
    from 0), then exactly one of ``on_done(run)``, ``on_cancel(run_id)`` or
    ``on_error(run_id, exception)``. A run whose worker died twice ends in ``on_error`` with a
    :class:`RunLost`.

    Attributes
    ----------
    runs : list of LiveRun
        The finished runs, oldest first.
    """

    _lock: threading.Condition  # waited on by wait() and notified as runs end

    def __init__(
        self,
        service: TrainingService,
        *,
        on_batch: Callable[[int, int, int], None] | None = None,
        on_done: Callable[[LiveRun], None] | None = None,
        on_cancel: Callable[[int], None] | None = None,
        on_error: Callable[[int, BaseException], None] | None = None,
    ) -> None:
        if not isinstance(service, TrainingService):
            raise TypeError(f"`service` must be a TrainingService; got {type(service).__name__}.")
        self.on_batch, self.on_done, self.on_cancel, self.on_error = on_batch, on_done, on_cancel, on_error
        self.runs: list[LiveRun] = []
        self._service, self._client = service, service.client
        self._token = f"labviz-run-{uuid.uuid4().hex}"  # keys and event topic, unique across kernels
        self._lock = threading.Condition()
        self._waiting: deque[_Run] = deque()
        self._active: _Run | None = None
        self._next_id = 1
        self._current_id: int | None = None
        self._unreported = 0  # runs submitted whose terminal callback has not returned yet
        self._closed = False
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._client.subscribe_topic(self._token, self._on_event)
        self._thread = threading.Thread(target=self._dispatch, daemon=True,
                                        name=f"labviz-service-{self._token[-6:]}")
        self._thread.start()

    def estimate_seconds(self, config: LiveConfig) -> float:
        """Predicted wall time of a run of ``config`` on the service's workers (not counting its
        wait in the queue); see :meth:`TrainingService.seconds_per_image`."""
        return estimate_seconds(config, self._service.seconds_per_image)

    def __repr__(self) -> str:
        with self._lock:
            n_waiting = len(self._waiting) + (self._active is not None)
        return f"ServiceSession({len(self.runs)} runs, {n_waiting} waiting or training)"

    # ----- LiveSession's interface ------------------------------------------------------------------
    @property
    def current_id(self) -> int | None:
        """The id of the run submitted last (running or not), None before the first."""
        return self._current_id

    @property
    def running(self) -> bool:
        """Whether a run of this session is waiting or training."""
        with self._lock:
            return self._active is not None or bool(self._waiting)

    def submit(self, config: LiveConfig, *, supersede: bool = True) -> int:
        """Queue ``config`` for training on the service; return its run id.

        Parameters
        ----------
        config : LiveConfig
            Validated again here: a bad config raises its ``LiveConfig`` error and nothing is queued.
        supersede : bool, default True
            Stop this session's waiting and training runs (as :meth:`LiveSession.start` does), or
            queue behind them.

        Returns
        -------
        int
            The run's id in this session (1, 2, ...).
        """
        if not isinstance(config, LiveConfig):
            raise TypeError(f"`config` must be a LiveConfig; got {type(config).__name__}.")
        # A frozen dataclass can still be changed with object.__setattr__: check it as built.
        config = LiveConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(LiveConfig)})
        if not isinstance(supersede, bool):
            raise TypeError(f"`supersede` must be a bool; got {type(supersede).__name__}.")
        with self._lock:
            if self._closed:
                raise RuntimeError("This session is closed; make a new one with service.session().")
            stopped = self._stop_all() if supersede else []
            run = _Run(self._next_id, config, f"{self._token}-{self._next_id}")
            self._next_id += 1
            self._waiting.append(run)
            self._unreported += 1
            self._current_id = run.run_id
            # An idle session submits here, so that runs reach the queue in the order of the calls;
            # otherwise the dispatcher does, once the session's previous run has ended.
            now = self._active is None and len(self._waiting) == 1
            if now:
                self._active = self._waiting.popleft()
        self._send_stops(stopped)
        if now:
            self._submit(run)
        else:
            self._inbox.put(("wake", None))
        return run.run_id

    def start(self, config: LiveConfig) -> int:
        """:meth:`submit` with ``supersede=True``: :meth:`LiveSession.start`'s name, for the widget."""
        return self.submit(config)

    def cancel(self) -> bool:
        """Stop this session's waiting and training runs (their results are dropped); False if it
        had none."""
        with self._lock:
            stopped = self._stop_all()
        self._send_stops(stopped)
        self._inbox.put(("wake", None))
        return bool(stopped)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every run of this session has ended and its callback returned; True if idle."""
        with self._lock:
            return self._lock.wait_for(lambda: self._unreported == 0, timeout)

    def close(self) -> None:
        """Stop this session's runs and its dispatcher; no callback is called after this returns."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stopped = self._stop_all()
        self._send_stops(stopped)
        self._inbox.put(_CLOSE)
        if threading.current_thread() is not self._thread:
            self._thread.join(10)
        with self._lock:
            active, self._active = self._active, None
            self._waiting.clear()
            self._unreported = 0
            self._lock.notify_all()
        if active is not None and active.future is not None:
            active.future.release()  # the scheduler drops its result, if it still comes
        try:
            self._client.unsubscribe_topic(self._token)
        except ValueError:  # never subscribed: the client was closed first
            pass

    # ----- stopping --------------------------------------------------------------------------------
    def _stop_all(self) -> list[_Run]:
        """Mark every run of the session stopped (with the lock held); return them."""
        runs = [r for r in (self._active, *self._waiting) if r is not None and not r.stopped]
        for r in runs:
            r.stopped = True
        return runs

    def _send_stops(self, runs: list[_Run]) -> None:
        """Tell the service: set a submitted run's stop flag, and take it out of the queue if it has
        not started. Runs not submitted yet are dropped by the dispatcher."""
        from distributed import Event

        for run in runs:
            with self._lock:
                future = run.future
                if future is None or run.stop_sent:
                    continue
                run.stop_sent = True
            Event(run.stop_name, client=self._client).set()
            if not run.started:
                future.cancel()

    # ----- the dispatcher thread ---------------------------------------------------------------------
    def _on_event(self, event: tuple[float, dict]) -> None:
        """Runs in the client's event loop: hand the worker's message to the dispatcher."""
        self._inbox.put(("event", event[1]))

    def _dispatch(self) -> None:
        while True:
            item = self._inbox.get()
            if item is _CLOSE:
                return
            kind, payload = item
            if kind == "event":
                self._handle_event(payload)
            elif kind == "finished":
                self._finish(payload)
            elif kind == "failed":
                self._fail(*payload)
            self._start_next()

    def _handle_event(self, msg: dict) -> None:
        run = self._active
        if run is None or msg.get("key") != run.key:  # a late message of a run that has ended
            return
        if msg["kind"] == "start":
            run.started = True
        elif msg["kind"] == "batch" and self.on_batch is not None:
            self._call(self.on_batch, run.run_id, msg["done"], msg["total"])

    def _start_next(self) -> None:
        """Submit the next waiting run if none is on the service; report dropped ones cancelled."""
        dropped, run = [], None
        with self._lock:
            if self._active is not None or self._closed:
                return
            while self._waiting:
                candidate = self._waiting.popleft()
                if candidate.stopped:
                    dropped.append(candidate)
                else:
                    run = self._active = candidate
                    break
        for r in dropped:
            self._report_cancel(r)
        if run is not None:
            self._submit(run)

    def _submit(self, run: _Run) -> None:
        """Put the session's active run on the scheduler's queue."""
        from dask._task_spec import Task

        s = self._service
        # `_data_producer` is Dask's explicit mark for a "root-ish" task: the scheduler holds it in
        # its queue until a worker thread is free, instead of assigning it to a worker at once.
        task = Task(run.key, _train_task, s.train, run.config, run_id=run.run_id, key=run.key,
                    topic=self._token, stop_name=run.stop_name, progress_step=s.progress_step,
                    _data_producer=True)
        try:
            # fifo_timeout=0: every run gets a newer "generation" than all before it, so the queue
            # is strictly oldest first, and a retried run keeps its place at the front.
            [future] = self._client.get({run.key: task}, [run.key], sync=False, retries=0,
                                        fifo_timeout=0)
        except Exception as exc:  # e.g. a `train` that does not pickle, or the client was closed
            self._inbox.put(("failed", (run, exc)))
            return
        with self._lock:
            run.future = future
            stop = run.stopped
        if stop:  # stopped between leaving the waiting list and reaching the service
            self._send_stops([run])
        future.add_done_callback(lambda _, run=run: self._inbox.put(("finished", run)))

    def _finish(self, run: _Run) -> None:
        """Report a run whose future is done: exactly one terminal callback."""
        from distributed import Event, KilledWorker

        future, outcome, error = run.future, None, None
        if future.status == "finished":
            outcome = future.result()
        elif future.status == "error":
            error = future.exception()
            if isinstance(error, KilledWorker):
                error = RunLost(f"Run {run.run_id} was lost: the worker process training it died "
                                "(killed, or out of memory) on its first try and again on its "
                                "retry. The class's other runs are unaffected; try it again, or "
                                "with fewer epochs or training images.")
        elif not run.stopped:  # cancelled, but not by this session: the scheduler dropped it
            error = RuntimeError(f"Run {run.run_id} was dropped by the training service "
                                 "(its scheduler was restarted or is unreachable).")
        future.release()
        if run.stop_sent:
            Event(run.stop_name, client=self._client).clear()  # frees it on the scheduler
        result = None
        if error is None and outcome is not None and outcome["status"] == "done":
            result = _run_from_data(outcome["run"], run_id=run.run_id, config=run.config)
        with self._lock:
            self._active = None
            if run.stopped:  # stopped after its last batch: dropped
                result = None
            if result is not None:
                self.runs.append(result)
        if error is not None:
            self._report_error(run, error)
        elif result is not None:
            if self.on_done is not None:
                self._call(self.on_done, result)
            self._reported()
        else:
            self._report_cancel(run)

    def _fail(self, run: _Run, error: BaseException) -> None:
        """Report a run that could not be put on the service."""
        with self._lock:
            self._active = None
        self._report_error(run, error)

    def _report_error(self, run: _Run, error: BaseException) -> None:
        if self.on_error is None:
            warnings.warn(f"Run {run.run_id} failed: {error}", RuntimeWarning, stacklevel=1)
        else:
            self._call(self.on_error, run.run_id, error)
        self._reported()

    def _report_cancel(self, run: _Run) -> None:
        if self.on_cancel is not None:
            self._call(self.on_cancel, run.run_id)
        self._reported()

    def _reported(self) -> None:
        """One run's terminal callback has returned."""
        with self._lock:
            self._unreported -= 1
            self._lock.notify_all()

    def _call(self, callback: Callable, *args: object) -> None:
        """A callback that raises must not stop the dispatcher: its error becomes a warning."""
        try:
            callback(*args)
        except Exception as exc:
            warnings.warn(f"{getattr(callback, '__name__', 'callback')} raised {exc!r}",
                          RuntimeWarning, stacklevel=1)
