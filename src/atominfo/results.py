"""A small base for result dataclasses: JSON-safe `to_dict`, readable repr, HTML for Jupyter.

Subclass `Result` and decorate with ``@dataclass`` (frozen or not)::

    @dataclass
    class Curve(Result):
        _fields_shown = ("sizes", "entropy")   # optional: what repr/HTML show
        sizes: np.ndarray
        entropy: np.ndarray

* ``to_dict()``: every field, numpy arrays and scalars as lists and Python
  numbers, NaN and infinities as None (so `json.dumps` never writes
  ``NaN`` or ``Infinity``), nested results as dicts. Override it to rename
  keys, and pass the values through `jsonable`.
* ``repr(result)``: one line, floats to 6 significant digits, long arrays
  abbreviated.
* ``_repr_html_()``: a two-column HTML table (field, value), shown by Jupyter.
"""

from __future__ import annotations

import dataclasses
import html
import math
from pathlib import PurePath
from typing import Any, ClassVar

import numpy as np


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: arrays -> lists, numpy scalars -> numbers, NaN/inf -> None."""
    if isinstance(value, Result) or callable(getattr(value, "to_dict", None)):
        return jsonable(value.to_dict())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # anything else JSON cannot hold: its text


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(
            value, precision=6, threshold=8, edgeitems=3, separator=", "
        ).replace("\n", "")
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return (
            _short(np.asarray(value))
            if np.asarray(value).dtype != object
            else f"[{len(value)} items]"
        )
    return repr(value)


class Result:
    """Base of result dataclasses (see the module docstring)."""

    # fields shown by repr and the HTML table; None: every field
    _fields_shown: ClassVar[tuple[str, ...] | None] = None
    # set by @dataclass on each subclass (declared only, so that the type
    # checker sees a Result as a dataclass instance)
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # @dataclass adds a __repr__ only where the class has none of its own
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = Result.__repr__

    def _shown(self) -> list[str]:
        names = [f.name for f in dataclasses.fields(self)]
        return [n for n in names if n in self._fields_shown] if self._fields_shown else names

    def to_dict(self) -> dict:
        """Every field as plain JSON types (non-finite numbers as None)."""
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={_short(getattr(self, n))}" for n in self._shown())
        return f"{type(self).__name__}({body})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(n)}</th>"
            f"<td style='text-align:left'>{html.escape(_short(getattr(self, n)))}</td>"
            "</tr>"
            for n in self._shown()
        )
        return f"<table><caption>{html.escape(type(self).__name__)}</caption>{rows}</table>"
