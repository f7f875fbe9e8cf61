"""Files written whole or not at all, and JSON manifests that record each file's sha256.

A write goes to a temporary file in the target's folder, which is synced and then renamed over the
target, so a reader sees the old file or the new one, never half of one. A manifest is a JSON list
of entries (dicts), each naming a ``file`` in the manifest's folder and its ``sha256``; a file is
used only once it matches the sha256 its entry records.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "check_sha256", "read_manifest", "sha256_file",
           "verify_entries", "write_manifest"]


# ----- atomic writes ------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *,
                 mode: int | None = None) -> None:
    """Write ``path`` atomically: ``write(fh)`` fills a temporary file in the same folder, which is
    synced and then renamed over ``path``, so a reader never sees a half-written file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder is created if missing.
    write : callable
        Called once with the temporary file, opened for binary writing.
    mode : int, optional
        Permission bits of the written file. By default they are those of a new file under the
        process's umask (as ``open`` creates it).

    Notes
    -----
    The temporary file is ``.<name>.<random>.tmp`` next to ``path`` and is removed if ``write``
    raises. A crash can leave one behind; :func:`labviz.core.cache.clear_cache` removes old ones.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *,
                       mode: int | None = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    ``mode`` defaults to readable by everyone, as the zoo's shipped checkpoints and manifests are;
    None leaves the bits to the umask.
    """
    atomic_write(path, lambda fh: fh.write(data), mode=mode)


# ----- sha256 -------------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of the file at ``path``, read in blocks of 1 MiB."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike[str], expected: str, *, rebuild: str) -> None:
    """Raise ``ValueError`` unless the file at ``path`` has the sha256 ``expected``.

    The message names the file, the sha256 expected and the one seen, and says to rebuild the file
    with ``rebuild`` (e.g. ``"`labviz zoo build`"``).
    """
    seen = sha256_file(path)
    if seen != expected:
        raise ValueError(f"{path} failed its sha256 check: expected {expected}, got {seen}. "
                         f"The file is corrupt or was replaced; rebuild it with {rebuild}.")


# ----- manifests ----------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike[str], *, required: Sequence[str], kind: str,
                  build_hint: str) -> list[dict[str, Any]]:
    """The entries of the JSON manifest at ``path``, each checked for the ``required`` fields.

    Parameters
    ----------
    path : str or os.PathLike
    required : sequence of str
        Fields every entry must have.
    kind : str
        What the manifest lists (``"zoo"``, ``"generator"``), for the messages.
    build_hint : str
        How to build a missing manifest (``"build the zoo with `labviz zoo build`"``).

    Returns
    -------
    list of dict

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``; the message ends with ``build_hint``.
    ValueError
        If the file is not JSON, not a list of objects, or an entry lacks a required field.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No {kind} manifest at {path}; {build_hint}.")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path} must hold a JSON list of entries; got {type(entries).__name__}.")
    for e in entries:
        missing = [f for f in required if f not in e]
        if missing:
            raise ValueError(f"{kind.capitalize()} manifest entry {e.get('name', '?')!r} in {path} "
                             f"lacks fields {missing}.")
    return entries


def write_manifest(path: str | os.PathLike[str], entries: Iterable[dict[str, Any]]) -> None:
    """Write ``entries``, sorted by ``name``, as the JSON manifest at ``path``, atomically.

    One field a line (``indent=1``), so that a rebuild's changes read well in a diff.
    """
    text = json.dumps(sorted(entries, key=lambda e: e["name"]), indent=1) + "\n"
    atomic_write_bytes(path, text.encode())


def verify_entries(folder: str | os.PathLike[str], entries: Iterable[dict[str, Any]]) -> list[str]:
    """Names of the ``entries`` whose ``file`` in ``folder`` is missing or fails its ``sha256``."""
    folder = Path(folder)
    return [e["name"] for e in entries
            if not (folder / e["file"]).is_file() or sha256_file(folder / e["file"]) != e["sha256"]]
