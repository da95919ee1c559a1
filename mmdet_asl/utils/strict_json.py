"""Strict JSON for the metric and result files the tools write.

Python's ``json`` writes ``NaN`` and ``Infinity`` tokens by default, which strict readers (``jq``, browsers,
``JSON.parse``, most non-Python parsers) reject. An undefined number (a NaN mean, the std of one seed, an AP
without ground truth) is written as ``null`` instead, so every file parses everywhere and no reader can
average an undefined value as a number.
"""
import json
import math
from typing import Any


def strict(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by None, in nested dicts, lists and tuples.

    NumPy and torch scalars and arrays become Python numbers and lists first (``json`` cannot write them).
    """
    if hasattr(value, 'tolist') and hasattr(value, 'ndim'):  # numpy / torch scalar or array
        value = value.tolist()
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(obj: Any, **kwargs) -> str:
    """``json.dumps`` of :func:`strict` ``(obj)``; ``allow_nan=False`` guards against anything left over."""
    return json.dumps(strict(obj), allow_nan=False, **kwargs)


def dump_json(obj: Any, path: str, **kwargs) -> None:
    """Write ``obj`` to ``path`` as strict JSON (undefined numbers as ``null``)."""
    text = dumps_json(obj, **kwargs)  # serialise first: a failure leaves no half-written file
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def undefined_as_nan(value: Any) -> Any:
    """The inverse of :func:`strict` for files of numbers: every ``null`` back to NaN, the undefined value it
    stood for, so that means and tables over re-read results treat it as before it was written."""
    if isinstance(value, dict):
        return {k: undefined_as_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [undefined_as_nan(v) for v in value]
    return float('nan') if value is None else value


def load_json(path: str) -> Any:
    """Read a result file written by :func:`dump_json`, with ``null`` numbers as NaN."""
    with open(path, encoding='utf-8') as f:
        return undefined_as_nan(json.load(f))
