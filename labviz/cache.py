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
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]


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
    """Write ``arrays`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz(path: Path, required: tuple[str, ...] = ()) -> Arrays:
    """Read every array of an ``.npz`` file without pickle; raise ``ValueError`` if it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path} is not a readable labviz array file ({exc}).") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}.")
    return arrays


def cached_arrays(
    namespace: str, key: str, build: Callable[[], Arrays], *, required: tuple[str, ...] = ()
) -> Arrays:
    """Return the cached arrays for ``(namespace, key)``, building and storing them on a miss.

    A damaged entry is reported with a warning, rebuilt and replaced.
    """
    path = cache_dir() / namespace / f"{key}.npz"
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
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = list(sub.glob("*.npz"))
        spaces[sub.name] = {"entries": len(files), "bytes": sum(f.stat().st_size for f in files)}
    return {"path": str(root), "namespaces": spaces}


def clear_cache() -> int:
    """Delete every cache entry; return how many files were removed.

    Only labviz's own namespaces inside the cache folder are touched.
    """
    root = cache_dir()
    removed = 0
    for sub in [p for p in root.iterdir() if p.is_dir()]:
        removed += sum(1 for _ in sub.glob("*.npz"))
        shutil.rmtree(sub)
    return removed
