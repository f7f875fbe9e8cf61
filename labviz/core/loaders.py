"""Read a classifier's predictions from files: ``.npz``, a folder of ``.npy``, Parquet, safetensors.

:func:`read_predictions` reads the arrays a path holds, by key, without pickle and, where the format
allows, memory-mapped; :meth:`labviz.core.predictions.Predictions.from_path` reads them and
validates them into a ``Predictions``. Keys are the arguments of ``Predictions.from_arrays``:

``y_true`` (required), ``logits`` or ``probs`` (exactly one)
    integers of shape (n_samples,); floats of shape (n_samples, n_classes).
``features``, ``y_given``, ``ids``, ``images`` (optional, one per sample)
    shapes (n_samples, n_features), (n_samples,), (n_samples,), (n_samples, height, width).
``weights``, ``bias`` (optional, one per class)
    shapes (n_classes, n_features) and (n_classes,).
``class_names``, ``name`` (optional text)
    ``n_classes`` strings, and one string (the file's stem by default).

Any other key is an error, as is a missing ``y_true``, and a damaged, truncated or mislabelled file
is a ``ValueError`` naming the file (and the key, where one is to blame). Nothing is ever unpickled:
an array of Python objects is refused.

Formats
-------
``.npz`` (``np.savez``, as :meth:`~labviz.core.predictions.Predictions.to_npz` writes)
    One member per key; ``class_names`` a 1-D string array, ``name`` a 0-d one. Uncompressed
    members (``np.savez``'s) are memory-mapped with ``mmap=True``, without their zip CRC being
    checked (``mmap=False`` reads and checks them); compressed ones (``np.savez_compressed``) are
    read into memory.

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> tmp = Path(tempfile.mkdtemp())
    >>> np.savez(tmp / "val.npz", y_true=[0, 1], logits=np.float32([[2, 0], [0, 1]]),
    ...          class_names=["cat", "dog"])
    >>> read_predictions(tmp / "val.npz").class_names
    ['cat', 'dog']

A folder of ``.npy`` files
    One file per array key, named for it (``logits.npy``, ``y_true.npy``, ...); the class names in
    ``class_names.json`` (a JSON list of strings) or ``class_names.txt`` (one per line, UTF-8);
    the folder's name is the name. Other files (a README) are ignored; an ``.npy`` file named for
    no key is an error. Arrays are memory-mapped with ``mmap=True``.

    >>> (tmp / "train").mkdir()
    >>> np.save(tmp / "train" / "y_true.npy", np.array([0, 1]))
    >>> np.save(tmp / "train" / "logits.npy", np.float32([[2, 0], [0, 1]]))
    >>> _ = (tmp / "train" / "class_names.json").write_text(json.dumps(["cat", "dog"]))
    >>> files = read_predictions(tmp / "train")
    >>> files.name, isinstance(files.arrays["logits"], np.memmap)
    ('train', True)

Parquet (``.parquet`` or ``.pq``; needs ``pyarrow``, installed by ``pip install labviz[distributed]``)
    One row per sample: integer columns ``y_true`` (and ``y_given``, ``ids``), and list columns
    ``logits`` or ``probs`` (and ``features``) whose rows all have the same length (``n_classes``,
    ``n_features``); no nulls. The schema's metadata may hold ``class_names`` (a JSON list) and
    ``name``. Per-class arrays (``weights``, ``bias``) and ``images`` have no place in per-sample
    rows: use another format for them. The table is decoded into memory (``mmap`` has no effect).

    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> table = pa.table({"y_true": [0, 1], "logits": [[2.0, 0.0], [0.0, 1.0]]})
    >>> pq.write_table(table.replace_schema_metadata({"class_names": '["cat", "dog"]'}),
    ...                tmp / "val.parquet")
    >>> read_predictions(tmp / "val.parquet").arrays["logits"].shape
    (2, 2)

safetensors (``.safetensors``)
    One tensor per array key; ``class_names`` (a JSON list) and ``name`` in the header's
    ``__metadata__`` (other metadata is ignored). The file is checked by ``safetensors.safe_open``
    and its tensors memory-mapped with ``mmap=True``. Types numpy has no dtype for (bfloat16,
    float8) are refused: convert them to float32 or float16 before saving.

    >>> from safetensors.numpy import save_file
    >>> save_file({"y_true": np.array([0, 1]), "logits": np.float32([[2, 0], [0, 1]])},
    ...           str(tmp / "val.safetensors"), metadata={"name": "resnet50 val"})
    >>> read_predictions(tmp / "val.safetensors").name
    'resnet50 val'
    >>> import shutil; shutil.rmtree(tmp)
"""

from __future__ import annotations

import json
import math
import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from numpy.typing import NDArray

Format = Literal["npz", "npy", "parquet", "safetensors"]

#: The array keys, in the order of ``Predictions.from_arrays``'s arguments.
ARRAY_KEYS = ("y_true", "logits", "probs", "features", "y_given", "ids", "weights", "bias", "images")
#: The text keys.
TEXT_KEYS = ("class_names", "name")
#: The keys a Parquet table may hold as columns: one value (or list) per sample.
PARQUET_COLUMNS = ("y_true", "logits", "probs", "features", "y_given", "ids")

_SUFFIXES: dict[str, Format] = {".npz": "npz", ".parquet": "parquet", ".pq": "parquet",
                                ".safetensors": "safetensors"}
_SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2",
                       "I32": "<i4", "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4",
                       "U64": "<u8", "BOOL": "?"}
# What a damaged zip raises besides BadZipFile: an unknown compression or version
# (NotImplementedError), "File is encrypted" (RuntimeError), a bad CRC or length (zipfile.BadZipFile),
# a truncated member (EOFError), a bad deflate stream (zlib.error, an Exception).
# A member claiming more bytes than memory holds (MemoryError) is damaged too.
_ZIP_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError,
               RuntimeError, MemoryError, zlib.error)


class _Refused(ValueError):
    """A file refused with a message that names it already (not to be wrapped again)."""


@dataclass(frozen=True)
class PredictionFiles:
    """What a predictions file (or folder) holds.

    Attributes
    ----------
    path : Path
    arrays : dict of str to ndarray
        By key (see the module's docstring); memory-mapped ``np.memmap`` arrays where the format
        and ``mmap`` allow. Values are not checked here: ``Predictions.from_arrays`` does that.
    class_names : list of str or None
    name : str
    """

    path: Path
    arrays: dict[str, NDArray[Any]]
    class_names: list[str] | None
    name: str


def read_predictions(
    path: str | os.PathLike[str], *, mmap: bool = True, file_format: Format | None = None
) -> PredictionFiles:
    """Read the prediction arrays a file or folder holds, without pickle.

    Parameters
    ----------
    path : str or path-like
        An ``.npz``, ``.parquet``/``.pq`` or ``.safetensors`` file, or a folder of ``.npy`` files
        (see the module's docstring for what each must hold).
    mmap : bool
        Memory-map the arrays where the format allows (a folder of ``.npy``, uncompressed ``.npz``
        members, safetensors), rather than reading them into memory.
    file_format : {"npz", "npy", "parquet", "safetensors"}, optional
        The format, when the path's suffix does not say it ("npy" is a folder).

    Returns
    -------
    PredictionFiles

    Raises
    ------
    FileNotFoundError
        If nothing is at ``path``.
    ValueError
        For a damaged, truncated or mislabelled file, an unknown key or a missing ``y_true``,
        naming the file and the key.
    TypeError
        For text keys of the wrong type, or tensors numpy has no dtype for.
    """
    path = Path(path)
    if not isinstance(mmap, bool):
        raise TypeError(f"`mmap` must be a bool; got {type(mmap).__name__} {mmap!r}.")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    fmt = _format_of(path) if file_format is None else file_format
    if fmt not in ("npz", "npy", "parquet", "safetensors"):
        raise ValueError(f"`file_format` must be one of ['npz', 'npy', 'parquet', 'safetensors']; "
                         f"got {fmt!r}.")
    if fmt == "npy":
        if not path.is_dir():
            raise ValueError(f"{path} must be a folder of .npy files for file_format='npy'; "
                             "got a file.")
        arrays, texts = _read_npy_folder(path, mmap)
        default_name = path.name
    else:
        if path.is_dir():
            raise ValueError(f"{path} must be a {fmt} file; got a folder.")
        read = {"npz": _read_npz, "parquet": _read_parquet, "safetensors": _read_safetensors}[fmt]
        arrays, texts = read(path, mmap)
        default_name = path.stem
    unknown = sorted(set(arrays) - set(ARRAY_KEYS))
    if unknown:
        expected = ([f"{k}.npy" for k in ARRAY_KEYS] + ["class_names.json", "class_names.txt"]
                    if fmt == "npy" else list(ARRAY_KEYS + TEXT_KEYS))
        raise ValueError(f"{path} holds arrays labviz does not know: {unknown}; "
                         f"expected some of {expected}.")
    if "y_true" not in arrays:
        raise ValueError(f"{path} must hold a `y_true` array; got {sorted(arrays)}.")
    names = texts.get("class_names")
    name = texts.get("name", default_name)
    return PredictionFiles(path=path, arrays=arrays, name=_text(name, path, "name"),
                           class_names=None if names is None else _names(names, path))


def _format_of(path: Path) -> Format:
    if path.is_dir():
        return "npy"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path} must be an .npz, .parquet, .pq or .safetensors file, or a folder "
                         f"of .npy files; got the suffix {path.suffix!r} (pass file_format= to "
                         "say which format it is).")
    return fmt


def _names(names: object, path: Path) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise TypeError(f"{path}: `class_names` must be a list of strings; got "
                        f"{type(names).__name__}.")
    return names


def _text(value: object, path: Path, key: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{path}: `{key}` must be a string; got {type(value).__name__}.")
    return value


# ----- .npy headers, shared by .npy files and .npz members ----------------------------------------
@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype[Any]
    size: int  # bytes before the data

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _npy_header(fh: IO[bytes], where: str) -> _Header:
    """The header of the ``.npy`` data ``fh`` is at the start of; refuses Python objects."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    # numpy parses the header's dict with tokenize and ast.literal_eval: a damaged one can raise
    # TokenError, SyntaxError or RecursionError as well as ValueError.
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, tokenize.TokenError,
            RecursionError, MemoryError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{where} is not a readable .npy array ({exc}).") from None
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects ({dtype}), which labviz never unpickles; "
                         "expected an array of numbers.")
    return _Header(tuple(shape), bool(fortran), dtype, fh.tell())


def _map(path: Path, offset: int, header: _Header, mmap: bool) -> NDArray[Any]:
    """The array whose data starts ``offset`` bytes into ``path``, memory-mapped or read."""
    order: Literal["C", "F"] = "F" if header.fortran else "C"
    if header.nbytes == 0:  # nothing to map
        return np.empty(header.shape, dtype=header.dtype, order=order)
    arr = np.memmap(path, dtype=header.dtype, mode="r", offset=offset, shape=header.shape,
                    order=order)
    return arr if mmap else np.array(arr, order=order)


def _check_size(header: _Header, held: int, where: str) -> None:
    if header.size + header.nbytes != held:
        raise ValueError(f"{where} is truncated or mislabelled: its header declares shape "
                         f"{header.shape} of {header.dtype} ({header.nbytes} bytes of data), but "
                         f"it holds {held - header.size}.")


# ----- formats --------------------------------------------------------------------------------
Texts = dict[str, object]


def _read_npy_folder(path: Path, mmap: bool) -> tuple[dict[str, NDArray[Any]], Texts]:
    arrays: dict[str, NDArray[Any]] = {}
    for file in sorted(f for f in path.glob("*.npy") if f.is_file()):
        with open(file, "rb") as fh:
            header = _npy_header(fh, str(file))
        _check_size(header, file.stat().st_size, str(file))
        arrays[file.stem] = _map(file, header.size, header, mmap)
    texts: Texts = {}
    given = [f for f in (path / "class_names.json", path / "class_names.txt") if f.is_file()]
    if len(given) > 1:
        raise ValueError(f"{path} holds both class_names.json and class_names.txt; expected one.")
    for file in given:
        try:
            text = file.read_text(encoding="utf-8")
            texts["class_names"] = (json.loads(text) if file.suffix == ".json"
                                    else text.splitlines())
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ValueError(f"{file} is not readable {file.suffix[1:].upper()} "
                             f"class names ({exc}).") from None
    return arrays, texts


def _read_npz(path: Path, mmap: bool) -> tuple[dict[str, NDArray[Any]], Texts]:
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
            found = {info.filename.removesuffix(".npy"): _npz_member(path, archive, raw, info, mmap)
                     for info in archive.infolist()}
            if len(found) != len(archive.infolist()):
                raise _Refused(f"{path} holds a member twice: {archive.namelist()}.")
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except _ZIP_ERRORS as exc:
        raise ValueError(f"{path} is not a readable labviz array file ({exc}).") from None
    texts: Texts = {}
    for key in TEXT_KEYS:
        if key in found:
            value = found.pop(key)
            if value.dtype.kind != "U" or value.ndim != (1 if key == "class_names" else 0):
                want = "a 1-D array of strings" if key == "class_names" else "a 0-d string array"
                raise TypeError(f"{path}: `{key}` must be {want}; got an array of shape "
                                f"{value.shape} and dtype {value.dtype}.")
            texts[key] = value.tolist()
    return found, texts


def _npz_member(
    path: Path, archive: zipfile.ZipFile, raw: IO[bytes], info: zipfile.ZipInfo, mmap: bool
) -> NDArray[Any]:
    where = f"its member {info.filename!r}"
    try:
        with archive.open(info) as fh:
            header = _npy_header(fh, where)
        _check_size(header, info.file_size, where)
        start = (_member_start(raw, info, where)
                 if mmap and info.compress_type == zipfile.ZIP_STORED and header.nbytes else None)
    except ValueError as exc:  # names the member; the file is named here
        raise _Refused(f"{path} is not a readable labviz array file: {exc}") from None
    if start is not None:
        return _map(path, start + header.size, header, mmap=True)
    with archive.open(info) as fh:  # zipfile checks the CRC as it reads to the end
        return np.lib.format.read_array(fh, allow_pickle=False)


def _member_start(raw: IO[bytes], info: zipfile.ZipInfo, where: str) -> int:
    """Where a stored zip member's bytes start: after its local header, name and extra field."""
    raw.seek(info.header_offset)
    local = raw.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise ValueError(f"{where} has a damaged zip header.")
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len


def _read_parquet(path: Path, mmap: bool) -> tuple[dict[str, NDArray[Any]], Texts]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Reading Parquet needs pyarrow: pip install 'labviz[distributed]' "
                          "(or pyarrow).") from None
    try:  # a damaged file can also hold names that are not UTF-8 (UnicodeDecodeError)
        table = pq.read_table(path, memory_map=mmap)
        names = table.column_names
        metadata = table.schema.metadata or {}
    except (pa.lib.ArrowException, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable Parquet file ({exc}).") from None
    unknown = sorted(set(names) - set(PARQUET_COLUMNS))
    if unknown:
        raise ValueError(f"{path} holds columns labviz does not know: {unknown}; expected some "
                         f"of {list(PARQUET_COLUMNS)} (one row per sample).")
    if len(set(names)) != len(names):
        raise ValueError(f"{path} holds a column twice: {names}.")
    arrays = {}
    for i, key in enumerate(names):
        try:
            arrays[key] = _column(table.column(i), path, key, pa)
        except pa.lib.ArrowException as exc:
            raise ValueError(f"{path}: column `{key}` is not readable ({exc}).") from None
    texts: Texts = {}
    for key, value in metadata.items():
        name = key.decode("utf-8", "replace")
        if name in TEXT_KEYS:
            texts[name] = _decode_metadata(value.decode("utf-8", "replace"), path, name)
    return arrays, texts


def _column(col: Any, path: Path, key: str, pa: Any) -> NDArray[Any]:
    """A Parquet column as a numpy array: numbers as 1-D, lists of numbers as 2-D."""
    if col.null_count:
        raise ValueError(f"{path}: column `{key}` must have no nulls; got {col.null_count}.")
    kind = col.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return np.asarray(col.to_numpy())
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)):
        raise TypeError(f"{path}: column `{key}` must hold numbers, or lists of numbers; "
                        f"got {kind}.")
    if not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        raise TypeError(f"{path}: column `{key}` must hold lists of numbers; got {kind}.")
    lists = col.combine_chunks()
    values = lists.flatten()
    if values.null_count:
        raise ValueError(f"{path}: column `{key}` must have no null entries in its lists; "
                         f"got {values.null_count}.")
    n = len(lists)
    if pa.types.is_fixed_size_list(kind):
        width = kind.list_size
    else:
        lengths = np.asarray(lists.value_lengths().to_numpy(zero_copy_only=False))
        width = int(lengths[0]) if n else 0
        if n and np.any(lengths != width):
            row = int(np.flatnonzero(lengths != width)[0])
            raise ValueError(f"{path}: column `{key}` must hold lists of one length (one entry "
                             f"per column); got row 0 of length {width} and row {row} of length "
                             f"{int(lengths[row])}.")
    return np.asarray(values.to_numpy(zero_copy_only=False)).reshape(n, width)


def _decode_metadata(value: str, path: Path, key: str) -> object:
    if key == "name":
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{path}: `{key}` in the metadata must be a JSON list of strings "
                         f"({exc}).") from None


def _read_safetensors(path: Path, mmap: bool) -> tuple[dict[str, NDArray[Any]], Texts]:
    from safetensors import SafetensorError, safe_open

    try:  # safe_open checks the header: offsets within the file, sizes matching the shapes
        with safe_open(str(path), framework="np") as f:
            keys = list(f.keys())
            metadata = f.metadata() or {}
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file ({exc}).") from None
    arrays: dict[str, NDArray[Any]] = {}
    for key in keys:
        info = header[key]
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise TypeError(f"{path}: `{key}` has the type {info['dtype']}, which numpy has no "
                            "dtype for; save it as float32 or float16.")
        begin, _ = info["data_offsets"]
        tensor = _Header(tuple(info["shape"]), False, np.dtype(dtype), 0)
        arrays[key] = _map(path, 8 + header_len + begin, tensor, mmap)
    texts: Texts = {k: _decode_metadata(v, path, k) for k, v in metadata.items() if k in TEXT_KEYS}
    return arrays, texts
