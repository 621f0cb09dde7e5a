"""numpy's names for chainrule's ops: ``import chainrule.numpy as np`` differentiates numpy code.

Like ``autograd.numpy`` and ``jax.numpy``: every numpy function that the op table covers
(``np.sin``, ``np.sum``, ``np.dot``, ``np.einsum``, ``np.linalg.norm``, ...) is chainrule's
function, which records the op. Array makers (``array``, ``zeros``, ``arange``, ...) and
constants are numpy's own: they make constants. A name without a table op is refused
with the nearest one.

>>> import chainrule as cr
>>> import chainrule.numpy as np
>>> cr.grad(lambda x: np.sum(np.sin(x) ** 2))(np.array([0.5]))
array([0.84147098])
"""

from __future__ import annotations

import types
from typing import Any

import numpy as _numpy

from chainrule.errors import ChainruleError
from chainrule.tensor import COMPOSITES, FUNCTIONS, NUMPY_NAMES
from chainrule.text import closest

__all__ = sorted(
    {n for n in NUMPY_NAMES if "." not in n}
    | set(COMPOSITES)
    | {
        "linalg",
        "array",
        "asarray",
        "zeros",
        "ones",
        "zeros_like",
        "ones_like",
        "full",
        "arange",
        "linspace",
        "eye",
        "random",
        "pi",
        "e",
        "inf",
        "nan",
        "newaxis",
        "float32",
        "float64",
    }
)

for _name, _op in NUMPY_NAMES.items():
    if "." not in _name:
        globals()[_name] = FUNCTIONS[_op]
globals().update(COMPOSITES)

#: ``np.linalg.norm`` (the table's norm).
linalg = types.SimpleNamespace(norm=FUNCTIONS["norm"])

array = _numpy.array
asarray = _numpy.asarray
zeros, ones, full, eye = _numpy.zeros, _numpy.ones, _numpy.full, _numpy.eye
zeros_like, ones_like = _numpy.zeros_like, _numpy.ones_like
arange, linspace, random = _numpy.arange, _numpy.linspace, _numpy.random
pi, e, inf, nan, newaxis = _numpy.pi, _numpy.e, _numpy.inf, _numpy.nan, _numpy.newaxis
float32, float64 = _numpy.float32, _numpy.float64


class UnknownNumpyName(ChainruleError, AttributeError):
    """A numpy name that chainrule.numpy does not differentiate."""


def __getattr__(name: str) -> Any:
    close = closest(name, __all__, cutoff=0.5)
    hint = f"; the nearest is chainrule.numpy.{close}" if close else ""
    raise UnknownNumpyName(
        f"chainrule.numpy.{name}: numpy's {name} has no op in chainrule's table{hint}"
    )
