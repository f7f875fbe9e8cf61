"""Voilà for the classroom app, whose pool of preheated kernels hands out ready kernels only.

Voilà (0.5.13, which labviz pins) counts a pool by its kernels' start tasks, finished or not,
and gives a visitor the pool's first one. When a kernel is taken, the task of its replacement
goes into the pool at once, to start ``fill_delay`` seconds later (``labviz app
--refill-after``: ten minutes by default, so that replacements do not compete with a class's
first runs). A visitor who came once the ready kernels were taken was given such a replacement,
and waited for it: in a class of 30 on a pool of 4, students 5 to 8 waited 610 s for the app,
while students 9 to 30 found the pool empty and had kernels of their own started at once (66 s).

Here a visitor takes a ready kernel if the pool has one, and otherwise has their own started, as
Voilà does for an empty pool. ``labviz app`` runs this module (``python -m labviz.servers.voila_pool``)
with Voilà's own arguments (:func:`labviz.servers.jupyter.app_command`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import voila.app
from voila.voila_kernel_manager import voila_kernel_manager_factory


def ready(task: asyncio.Future) -> bool:
    """Whether a pool's start task has finished with a kernel (not cancelled, not failed)."""
    return task.done() and not task.cancelled() and task.exception() is None


def ready_first(pool: list[asyncio.Future]) -> bool:
    """Move ``pool``'s first ready task to its front (Voilà hands out the first); False if none is."""
    first = next((task for task in pool if ready(task)), None)
    if first is not None:
        pool.remove(first)
        pool.insert(0, first)
    return first is not None


def ready_pool_factory(*args: object, **kwargs: object) -> type:
    """Voilà's kernel manager class (:func:`voila.voila_kernel_manager.voila_kernel_manager_factory`,
    same arguments), whose pools count and hand out ready kernels only."""
    base: Any = voila_kernel_manager_factory(*args, **kwargs)  # a class made at run time
    if not hasattr(base, "get_rendered_notebook"):  # no preheated kernels: nothing to change
        return base

    class ReadyPoolKernelManager(base):
        def get_pool_size(self, notebook_name: str) -> int:
            return sum(map(ready, self._pools.get(notebook_name, [])))

        async def get_rendered_notebook(self, notebook_name: str, *args: object,
                                        **kwargs: object) -> tuple:
            ready_first(self._pools.get(notebook_name, []))
            return await super().get_rendered_notebook(notebook_name, *args, **kwargs)

    return ReadyPoolKernelManager


def main(argv: list[str] | None = None) -> None:
    """Run Voilà with ``argv`` (default: this process's arguments) and the ready-only pool."""
    voila.app.voila_kernel_manager_factory = ready_pool_factory
    voila.app.Voila.launch_instance(argv)


if __name__ == "__main__":
    main()
