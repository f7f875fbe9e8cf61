"""Which input a caller gave: a :class:`~labviz.core.predictions.Predictions`, or the arrays it
stands for.

Displays (and a few compute functions) take either a ``Predictions`` or plain arrays. These
functions decide which one was given, and word every refusal with one template that names the
argument, what it must be and what was seen::

    `predictions` must be a labviz.Predictions, or None with the arrays `y_true` and `probs`;
    got ndarray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from labviz.core.predictions import Predictions

#: What stands in for a Predictions: keyword arrays next to a ``None`` (``"none"``), the argument
#: itself as the first array, with the rest as keywords (``"array"``), or a tuple of the arrays
#: (``"pair"``).
Alternative = Literal["none", "array", "pair"]

_ONE = "a labviz.Predictions"
_SEVERAL = "a labviz.Predictions (or a sequence or mapping of them)"


def _quoted(names: Sequence[str]) -> str:
    """Names in backticks, joined: `a`; `a` and `b`; `a`, `b` and `c`."""
    q = [f"`{n}`" for n in names]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]


def _refuse(name: str, expected: str, seen: str) -> TypeError:
    return TypeError(f"`{name}` must be {expected}; got {seen}.")


def as_predictions(value: object, name: str = "predictions") -> Predictions:
    """``value``, which must be a Predictions.

    >>> as_predictions([1, 2])
    Traceback (most recent call last):
    ...
    TypeError: `predictions` must be a labviz.Predictions; got list.
    """
    if not isinstance(value, Predictions):
        raise _refuse(name, _ONE, type(value).__name__)
    return value


def as_predictions_list(
    value: object, name: str = "predictions"
) -> tuple[list[Predictions], list[str] | None]:
    """``value`` (a Predictions, or a non-empty sequence or mapping of them) as a list, with the
    mapping's keys as strings (None for a Predictions or a sequence)."""
    if isinstance(value, Predictions):
        return [value], None
    if isinstance(value, Mapping):
        items, keys = list(value.values()), [str(k) for k in value]
    elif isinstance(value, (list, tuple)):
        items, keys = list(value), None
    else:
        raise _refuse(name, _SEVERAL, type(value).__name__)
    if not items:
        raise ValueError(f"`{name}` must hold at least one Predictions; got none.")
    for p in items:
        if not isinstance(p, Predictions):
            raise TypeError(f"`{name}` must hold Predictions objects; got {type(p).__name__}.")
    return items, keys


def arrays_given(
    value: object,
    name: str,
    arrays: Mapping[str, object],
    *,
    required: Sequence[str] | None = None,
    alternative: Alternative = "none",
    several: bool = False,
) -> tuple[Any, ...] | None:
    """The arrays given in place of a Predictions, or None when ``value`` is the Predictions.

    Parameters
    ----------
    value : object
        The argument that may be a Predictions (or, with ``several``, a sequence or mapping of
        them: read it with :func:`as_predictions` or :func:`as_predictions_list`).
    name : str
        Its name, for messages.
    arrays : mapping of str to object
        The keyword arguments that replace a Predictions, by name; None means not given. None of
        them may come with a Predictions.
    required : sequence of str, optional
        The ones that must all be given without a Predictions (default: every key of ``arrays``).
        With ``alternative="pair"``, the names of the tuple's items.
    alternative : {"none", "array", "pair"}
        Without a Predictions, ``value`` is None (``"none"``), the first array itself
        (``"array"``), or a tuple of the ``required`` arrays (``"pair"``).
    several : bool
        Whether ``value`` may be a sequence or mapping of Predictions too.

    Returns
    -------
    tuple or None
        The ``required`` arrays in order (after ``value`` itself for ``alternative="array"``;
        ``value`` for ``"pair"``), or None.

    Raises
    ------
    TypeError
        When ``value`` is none of these, or a Predictions comes with arrays, or arrays are missing.

    Examples
    --------
    >>> arrays_given(None, "predictions", {"y_true": [0], "probs": [[1.0, 0.0]]})
    ([0], [[1.0, 0.0]])
    >>> arrays_given(None, "predictions", {"y_true": [0], "probs": None})
    Traceback (most recent call last):
    ...
    TypeError: `predictions` must be a labviz.Predictions, or None with the arrays `y_true` and \
`probs`; got None and `y_true` without `probs`.
    """
    needed = list(arrays) if required is None else list(required)
    given = [k for k, a in arrays.items() if a is not None]
    missing = [k for k in needed if arrays.get(k) is None]
    base = _SEVERAL if several else _ONE
    if alternative == "pair":
        expected = f"{base}, or a ({', '.join(needed)}) tuple"
    elif alternative == "array":
        expected = f"{base}, or an array given with {_quoted(needed)}"
    else:
        plural = "arrays" if len(needed) > 1 else "array"
        expected = f"{base}, or None with the {plural} {_quoted(needed)}"

    if isinstance(value, Predictions) or (several and isinstance(value, (list, tuple, Mapping))):
        if given:
            raise _refuse(name, expected, f"{type(value).__name__} and {_quoted(given)}")
        return None
    if alternative == "pair":
        if not (isinstance(value, tuple) and len(value) == len(needed)):
            seen = (f"a tuple of length {len(value)}" if isinstance(value, tuple)
                    else type(value).__name__)
            raise _refuse(name, expected, seen)
        return value
    if alternative == "array":
        if missing:
            raise _refuse(name, expected, f"{type(value).__name__} without {_quoted(missing)}")
        return (value, *(arrays[k] for k in needed))
    if value is not None:
        raise _refuse(name, expected, type(value).__name__)
    if not given:
        raise _refuse(name, expected, "None and none of the arrays")
    if missing:
        raise _refuse(name, expected, f"None and {_quoted(given)} without {_quoted(missing)}")
    return tuple(arrays[k] for k in needed)
