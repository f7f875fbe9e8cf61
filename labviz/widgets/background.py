"""A slow projection computed in a thread while the explorer stays usable.

From :data:`labviz.widgets.explorer.BACKGROUND_FROM` samples, the explorer shows a PCA
projection at once and computes a UMAP or t-SNE one with :class:`BackgroundProjection`: the
computation runs in a daemon thread, reports its progress in steps of 5 %, and hands over when it
is done, unless the user has loaded another view meanwhile (the result then stays in the caches
but is not shown). What to compute and how to show it are the explorer's; this class runs it,
words its progress for the status line and drops stale results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from labviz.compute.projection import Progress
from labviz.widgets._common import samples

#: Says a text in the status line, of a kind ("info", "busy" or "warn").
Say = Callable[[str, str], None]

#: Progress is reported each time it has grown by this many percent.
PROGRESS_STEP = 5


class BackgroundProjection:
    """Runs one projection at a time in a thread, for the view it was started in."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._view = 0  # counts the views loaded; a result for an older one is dropped

    def new_view(self) -> None:
        """Say that another view was loaded: a projection still running will not be handed over."""
        self._view += 1

    def start(self, compute: Callable[[Progress], object], *, method: str, n_samples: int,
              shown: str, on_done: Callable[[], None], say: Say) -> None:
        """Run ``compute(progress)``, the ``method`` projection of ``n_samples`` samples, in a
        thread while projection ``shown`` is on screen. ``say(text, kind)`` reports its progress
        (while its view is shown) or its failure; ``on_done()`` shows the result, if its view is
        still shown."""
        view, said = self._view, -1

        def progress(done: float) -> None:
            nonlocal said
            percent = int(100 * done)
            if percent >= said + PROGRESS_STEP and view == self._view:
                said = percent
                say(f"Computing the {method.upper()} projection of {samples(n_samples)} in the "
                    f"background: {percent}% (it is cached on disk afterwards); {shown.upper()} "
                    "is shown meanwhile.", "busy")

        def work() -> None:
            try:
                compute(progress)
            except Exception as exc:  # reported, never lost in the thread
                say(f"The {method} projection failed: {exc}", "warn")
                return
            if view == self._view:
                on_done()
                say(f"{method.upper()} projection of {samples(n_samples)} ready.", "info")

        progress(0.0)
        self._thread = threading.Thread(target=work, daemon=True, name="labviz-projection")
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the projection running, if any; True when none is running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()
