"""Fused loops for the compiled replay of the common layers, on numba (optional).

On the arrays of a small network (a batch of 64 rows through 128 units), a numpy call
costs a few microseconds, most of it the call itself and one pass over memory. Where a
layer takes two or three calls, each reading what the last one wrote, one loop here does
the work in one pass:

- :func:`bias_relu`: ``relu(z + b)`` (a bias added to each row, then ReLU), and
  ``bias_add``: ``z + b`` alone (both written over ``z``);
- :func:`relu_rule_sum`: ReLU's rule, and the bias's slope (the sum down the columns);
- :func:`column_sum`: a bias's slope on its own;
- ``row_shift``, ``cross_entropy`` and ``cross_entropy_rule``: the mean softmax
  cross-entropy of one-hot rows (or class probabilities) and its rule for the logits,
  around numpy's ``exp`` (vectorised, and the op table's own);
- ``correct``: how many rows a classifier's outputs get right (``argmax`` and ``==``);
- :func:`descend` (and ``descend_values``, which does not keep the step sizes): gradient
  descent's step over a flat vector, and whether every new value is a finite number.

The arithmetic is the op table's, written per number in the same order, so the numbers
are numpy's, except for some sums (numpy may add in another order: the last bit) and
``log`` (another math library's: within a unit in the last place).

:func:`get` returns the loops, compiled by numba on first use (and cached on disk), or
None when numba is not installed (``pip install chainrule[fast]``): the replay then
makes its numpy calls. :func:`layers` returns one function more, which runs a whole
table of these loops and BLAS products (the replay of
:class:`chainrule.compile.LayerProgram`), or None without scipy.

>>> import numpy as np
>>> k = get()
>>> if k is not None:
...     z = np.array([[1.0, -2.0], [-1.0, 3.0]])
...     k.bias_relu(z, np.array([0.5, 0.5]))
...     print(z.tolist())
... else:
...     print([[1.5, 0.0], [0.0, 3.5]])
[[1.5, 0.0], [0.0, 3.5]]
"""

from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["available", "get", "layers"]

_kernels: SimpleNamespace | None = None
_unusable = False  # numba is installed but cannot be imported (e.g. too old for numpy)
_layers: Any = None
_layers_unusable = False  # scipy is installed, but numba's products through it fail

# The instructions of :func:`layers`' replay, one row of its table each:
# ``(op, out, a, b, c, flags)``, the four operands numbers of array descriptors.
DOT = 0  # out = a @ b (flags: 1 takes a.T, 2 takes b.T, 3 both)
BIAS_RELU = 1  # out = relu(out + a), a a row
BIAS_ADD = 2  # out = out + a, a a row
RELU_RULE_SUM = 3  # out = a * sign(b) (b: ReLU's result), c = its sums down the columns
RELU_RULE = 4  # out = a * sign(b)
COLUMN_SUM = 5  # out = the sums of a down its columns (a row)
ROW_SHIFT = 6  # out = a - max(a, axis=1)
CROSS_ENTROPY = 7  # out (1 x 1) = the loss of a (shifted), b (exp(a), becomes log p), c
CROSS_ENTROPY_RULE = 8  # out = the rule for the logits, out holding exp(log p), a the target
TRANSPOSE = 9  # out (stored as cols x rows) = a


def available() -> bool:
    """Whether numba is installed (without importing it)."""
    return not _unusable and importlib.util.find_spec("numba") is not None


def get() -> SimpleNamespace | None:
    """The fused loops (see the module's documentation), or None without a numba that
    imports (the numpy replay is used then)."""
    global _kernels, _unusable
    if _kernels is None and available():
        try:
            _kernels = _make()
        except ImportError:
            _unusable = True
    return _kernels


def layers() -> Any:
    """The numba replay of a program of matrix layers (see
    :class:`chainrule.compile.LayerProgram`), or None without numba, or without scipy
    (numba's matrix products call BLAS through scipy).

    ``replay(code, desc, start, stop, values, slopes, scratch, in0, in1)`` runs rows
    ``start:stop`` of the table ``code``. Every array is a run of numbers in one of five
    flat vectors (the trained values, their slopes, the program's own scratch, and two
    inputs), named by a row of ``desc``: ``(vector, offset, rows, cols)``, a matrix of that
    shape in C order (a row or a number is a 1 x n or 1 x 1 matrix). One call replaces a
    numpy call per op, and each numpy call's fixed cost (about a microsecond).
    """
    global _layers, _layers_unusable
    if _layers is None and not _layers_unusable and importlib.util.find_spec("scipy"):
        if get() is not None:  # (the loops that the replay calls)
            replay = _make_layers()
            try:  # compiled (or loaded from numba's cache) now, on a 1 x 1 product
                works = _multiplies(replay)
            except Exception:  # (numba's own errors: a scipy it cannot take BLAS from)
                works = False
            if works:
                _layers = replay
            else:
                _layers_unusable = True
    return _layers


def _multiplies(replay: Any) -> bool:
    """Whether ``replay`` multiplies 2 by 3 (see :func:`layers`)."""
    scratch, unused = np.array([0.0, 2.0, 3.0, 0.0]), np.zeros(0)
    desc = np.array([[2, 0, 1, 1], [2, 1, 1, 1], [2, 2, 1, 1], [2, 3, 1, 1]], dtype=np.int64)
    code = np.array([[DOT, 3, 1, 2, 0, 0]], dtype=np.int64)
    replay(code, desc, 0, 1, unused, unused, scratch, unused, unused)
    return bool(scratch[3] == 6.0)


def _make_layers() -> Any:
    """The replay of :func:`layers` (after :func:`_make`, whose loops it calls)."""
    import numba

    global pick, transpose  # (see the note above _make)
    jit = numba.njit(cache=True, nogil=True)

    @jit
    def pick(desc: Any, d: int, values: Any, slopes: Any, scratch: Any, in0: Any, in1: Any) -> Any:
        """The matrix that row ``d`` of ``desc`` names (a view, no copy)."""
        vector, at, rows, cols = desc[d, 0], desc[d, 1], desc[d, 2], desc[d, 3]
        if vector == 0:
            base = values
        elif vector == 1:
            base = slopes
        elif vector == 2:
            base = scratch
        elif vector == 3:
            base = in0
        else:
            base = in1
        return base[at : at + rows * cols].reshape((rows, cols))

    @jit
    def transpose(a: Any, out: Any) -> None:
        """``out = a.T`` (written in order, read down a's columns)."""
        rows, cols = a.shape
        for j in range(cols):
            for i in range(rows):
                out[j, i] = a[i, j]

    @jit
    def replay(
        code: Any,
        desc: Any,
        start: int,
        stop: int,
        values: Any,
        slopes: Any,
        scratch: Any,
        in0: Any,
        in1: Any,
    ) -> None:
        for row in range(start, stop):
            op, flags = code[row, 0], code[row, 5]
            out = pick(desc, code[row, 1], values, slopes, scratch, in0, in1)
            a = pick(desc, code[row, 2], values, slopes, scratch, in0, in1)
            b = pick(desc, code[row, 3], values, slopes, scratch, in0, in1)
            if op == DOT:
                if flags == 0:
                    np.dot(a, b, out)
                elif flags == 1:
                    np.dot(a.T, b, out)
                elif flags == 2:
                    np.dot(a, b.T, out)
                else:
                    np.dot(a.T, b.T, out)
            elif op == BIAS_RELU:
                bias_relu(out, a[0])
            elif op == BIAS_ADD:
                bias_add(out, a[0])
            elif op == RELU_RULE_SUM:
                c = pick(desc, code[row, 4], values, slopes, scratch, in0, in1)
                relu_rule_sum(a, b, out, c[0])
            elif op == RELU_RULE:
                relu_rule(a, b, out)
            elif op == COLUMN_SUM:
                column_sum(a, out[0])
            elif op == ROW_SHIFT:
                row_shift(a, out)
            elif op == CROSS_ENTROPY:
                c = pick(desc, code[row, 4], values, slopes, scratch, in0, in1)
                out[0, 0] = cross_entropy(a, b, c)
            elif op == CROSS_ENTROPY_RULE:
                # The loss is the program's root: its slope is 1.
                cross_entropy_rule(out, a, -1.0 / out.shape[0], out)
            elif op == TRANSPOSE:
                transpose(a, out)

    return replay


# The loops that another loop calls are module globals, made by _make(): numba keeps a
# compiled loop on disk keyed by, among others, the values it closes over, and a loop that
# reached another through a closure missed that cache in every new process (about half a
# second each time, 1.5 s for the layers' replay).
bias_relu: Any
bias_add: Any
sign: Any
relu_rule: Any
relu_rule_sum: Any
column_sum: Any
row_shift: Any
cross_entropy: Any
cross_entropy_rule: Any
pick: Any
transpose: Any


def _make() -> SimpleNamespace:
    import numba

    global bias_relu, bias_add, sign, relu_rule, relu_rule_sum, column_sum, row_shift
    global cross_entropy, cross_entropy_rule

    jit = numba.njit(cache=True, nogil=True)

    @jit
    def bias_relu(z: Any, b: Any) -> None:
        """``z = max(z + b, 0)`` in place, for a matrix ``z`` and a row ``b`` (NaN stays
        NaN, as with ``np.maximum``). (In place with one array: a loop that wrote into a
        second array that may be ``z`` would be checked for overlap and, finding it, run
        one number at a time, twice as slow.)"""
        rows, cols = z.shape
        for i in range(rows):
            for j in range(cols):
                x = z[i, j] + b[j]
                z[i, j] = x if not x < 0.0 else 0.0

    @jit
    def bias_add(z: Any, b: Any) -> None:
        """``z = z + b`` in place, for a matrix ``z`` and a row ``b``."""
        rows, cols = z.shape
        for i in range(rows):
            for j in range(cols):
                z[i, j] += b[j]

    @jit
    def sign(y: Any) -> float:
        """``np.sign(y)``: 1, -1 or 0, and NaN for NaN (ReLU's weight from its result)."""
        return 1.0 if y > 0.0 else (-1.0 if y < 0.0 else (0.0 if y == 0.0 else y))

    @jit
    def relu_rule(g: Any, r: Any, out: Any) -> None:
        """ReLU's rule from its result ``r``: ``out = g * sign(r)`` (1 where the input
        was above 0, 0 where not, NaN where it was NaN)."""
        rows, cols = g.shape
        for i in range(rows):
            for j in range(cols):
                out[i, j] = g[i, j] * sign(r[i, j])

    @jit
    def relu_rule_sum(g: Any, r: Any, out: Any, total: Any) -> None:
        """:func:`relu_rule`, and ``total`` = the sum of ``out`` down its columns (the
        slope of a bias added before the ReLU)."""
        rows, cols = g.shape
        for i in range(rows):
            for j in range(cols):
                x = g[i, j] * sign(r[i, j])
                out[i, j] = x
                if i == 0:
                    total[j] = x
                else:
                    total[j] += x

    @jit
    def column_sum(g: Any, total: Any) -> None:
        """``total`` = the sum of the matrix ``g`` down its columns, row after row."""
        rows, cols = g.shape
        for j in range(cols):
            total[j] = g[0, j]
        for i in range(1, rows):
            for j in range(cols):
                total[j] += g[i, j]

    @jit
    def row_shift(z: Any, shifted: Any) -> None:
        """``shifted = z - max(z, axis=1)`` (each row by its maximum, NaN if it has one)."""
        rows, cols = z.shape
        for i in range(rows):
            peak = z[i, 0]
            for j in range(1, cols):
                x = z[i, j]
                if x > peak or x != x:
                    peak = x
            for j in range(cols):
                shifted[i, j] = z[i, j] - peak

    @jit
    def cross_entropy(shifted: Any, e: Any, t: Any) -> float:
        """The rest of ``log_softmax`` after ``e = exp(shifted)`` (numpy's exp, as the op
        table's): ``e`` becomes ``lp = shifted - log(sum(e, axis=1))``; returns the mean
        over rows of ``-sum(lp * t)``."""
        rows, cols = shifted.shape
        total = 0.0
        for i in range(rows):
            sums = 0.0
            for j in range(cols):
                sums += e[i, j]
            log_sum = math.log(sums)
            for j in range(cols):
                x = shifted[i, j] - log_sum
                e[i, j] = x
                total += x * t[i, j]
        return -(total / rows)

    @jit
    def cross_entropy_rule(e: Any, t: Any, scale: Any, out: Any) -> None:
        """The rule of :func:`cross_entropy` for ``z``, given ``e = exp(lp)`` and ``scale``
        = the loss's slope over ``-rows``: ``g_lp = t * scale``, then log_softmax's rule
        ``g_lp - e * sum(g_lp)`` row by row (``out`` may be ``e``)."""
        rows, cols = e.shape
        for i in range(rows):
            sums = 0.0
            for j in range(cols):
                sums += t[i, j] * scale
            for j in range(cols):
                out[i, j] = t[i, j] * scale - e[i, j] * sums

    @jit
    def descend(values: Any, slopes: Any, lr: Any, step_sizes: Any, new: Any) -> bool:
        """Gradient descent over flat vectors: ``step_sizes = slopes * lr`` and ``new =
        values - step_sizes`` (``new`` may be ``values``); True when every new value is a
        finite number."""
        bad = 0
        for i in range(values.shape[0]):
            s = slopes[i] * lr
            step_sizes[i] = s
            v = values[i] - s
            new[i] = v
            bad |= (v - v) != 0.0  # inf - inf and NaN - NaN are NaN
        return bad == 0

    @jit
    def descend_values(values: Any, slopes: Any, lr: Any, new: Any) -> bool:
        """:func:`descend` without writing the step sizes down (a pass over memory less)."""
        bad = 0
        for i in range(values.shape[0]):
            v = values[i] - slopes[i] * lr
            new[i] = v
            bad |= (v - v) != 0.0
        return bad == 0

    @jit
    def correct(out: Any, labels: Any) -> int:
        """How many rows of ``out`` have their largest entry (the first NaN, or the first of
        equal ones, as ``argmax``) at the column ``labels`` names."""
        count = 0
        for i in range(out.shape[0]):
            best, at = out[i, 0], 0
            for j in range(1, out.shape[1]):
                x = out[i, j]
                if x > best or (x != x and best == best):
                    best, at = x, j
            if at == labels[i]:
                count += 1
        return count

    return SimpleNamespace(
        bias_relu=bias_relu,
        bias_add=bias_add,
        relu_rule=relu_rule,
        relu_rule_sum=relu_rule_sum,
        column_sum=column_sum,
        row_shift=row_shift,
        cross_entropy=cross_entropy,
        cross_entropy_rule=cross_entropy_rule,
        descend=descend,
        descend_values=descend_values,
        correct=correct,
    )
