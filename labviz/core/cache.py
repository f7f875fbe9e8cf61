"""On-disk cache for heavy results (activations, projections), safe to share between kernels.

Entries are ``.npz`` files read with ``allow_pickle=False``: a cache file can hold arrays only, never
code. Writes go to a temporary file in the same folder and are renamed into place, so a reader sees
either the old entry or the new one, never half of one. A corrupt entry is detected (zip CRC, missing
keys) and rebuilt, never used.

The cache lives in ``$LABVIZ_CACHE_DIR`` if set, else ``~/.cache/labviz``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# atomic_write_bytes is public here too (labviz.cache's since 0.1): users' code imports it.
from labviz.core.files import atomic_write, atomic_write_bytes

Arrays = dict[str, np.ndarray]

#: The cache folder's subfolders that labviz owns (every ``cached_arrays`` namespace in the package).
#: :func:`clear_cache` touches nothing else, so the cache root can be shared with the user's files.
NAMESPACES: tuple[str, ...] = ("activations", "datasets", "inversions", "neighbours", "probes",
                               "projections", "regions")

# A temporary file untouched this long belongs to a crashed write, not to one in progress.
_STALE_TMP_SECONDS = 600


def cache_dir() -> Path:
    """The cache folder (created on first use)."""
    root = os.environ.get("LABVIZ_CACHE_DIR") or Path.home() / ".cache" / "labviz"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(**parts: object) -> str:
    """A stable short key for the given parameters (order-independent)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def atomic_write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (see :func:`labviz.core.files.atomic_write`), as a
    file private to its owner: a cache entry or a user's results are nobody else's to read."""
    members: dict[str, Any] = dict(arrays)
    atomic_write(path, lambda fh: np.savez(fh, **members), mode=0o600)


def read_npz(path: Path, required: tuple[str, ...] = ()) -> Arrays:
    """Read every array of an ``.npz`` file without pickle; raise ``ValueError`` if it is damaged."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy loads as one ndarray
            raise ValueError(f"expected an .npz archive, got a single {type(data).__name__}")
        with data:
            arrays = {k: data[k] for k in data.files}
    # A damaged zip header surfaces as NotImplementedError (unknown compression or version) or
    # RuntimeError ("File is encrypted") from zipfile; both mean "damaged", not "bug".
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError,
            RuntimeError) as exc:
        raise ValueError(f"{path} is not a readable labviz array file ({exc}).") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}.")
    return arrays


def entry_path(namespace: str, key: str) -> Path:
    """Where the cache keeps the arrays of ``(namespace, key)``, whether or not they are there yet."""
    return cache_dir() / namespace / f"{key}.npz"


def cached_arrays(
    namespace: str, key: str, build: Callable[[], Arrays], *, required: tuple[str, ...] = ()
) -> Arrays:
    """Return the cached arrays for ``(namespace, key)``, building and storing them on a miss.

    A damaged entry is reported with a warning, rebuilt and replaced.
    """
    path = entry_path(namespace, key)
    if path.exists():
        try:
            return read_npz(path, required)
        except ValueError as exc:
            warnings.warn(f"Rebuilding a damaged cache entry: {exc}", stacklevel=2)
    arrays = build()
    atomic_write_npz(path, arrays)
    return arrays


def cache_info() -> dict[str, object]:
    """Where the cache is, and how many entries and bytes each namespace holds."""
    root = cache_dir()
    spaces = {}
    for sub in (root / name for name in NAMESPACES):
        if not sub.is_dir():
            continue
        files = list(sub.glob("*.npz"))
        spaces[sub.name] = {"entries": len(files), "bytes": sum(f.stat().st_size for f in files)}
    return {"path": str(root), "namespaces": spaces}


def clear_cache() -> int:
    """Delete every cache entry; return how many entries were removed.

    Only the ``*.npz`` entries (and leftover ``.*.tmp`` files of interrupted writes) in labviz's
    own namespaces (:data:`NAMESPACES`) are deleted; a namespace folder is removed once empty.
    Anything else in the cache folder, such as the user's own files and folders, is left alone.
    """
    root = cache_dir()
    removed = 0
    for sub in (root / name for name in NAMESPACES):
        if not sub.is_dir():
            continue
        for entry in sub.glob("*.npz"):
            if entry.is_file():
                entry.unlink(missing_ok=True)  # another process may have removed it meanwhile
                removed += 1
        for tmp in sub.glob(".*.tmp"):
            try:
                if tmp.is_file() and time.time() - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    tmp.unlink()
            except FileNotFoundError:  # its write just finished (renamed) or another clear ran
                pass
        try:
            sub.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return removed
