"""The single table of operations.

Every operation the engine knows is ONE entry of :data:`OPS`: its name, the numpy forward,
one backward rule (vector-Jacobian product) per input, and a short human formula of its
local derivative, which the explainer prints. Adding an operation touches this file only;
``tests/test_ops.py`` checks every entry's gradients against finite differences and PyTorch.

A backward rule ``rule(g, out, *inputs, **attrs)`` receives the gradient ``g`` flowing into
the output, the output ``out`` and the inputs, and returns the gradient for its own input.
The rules are written against Python operators and the dispatching functions below, which
work on ndarrays AND on Tensors: plain backward passes ndarrays, ``create_graph=True``
passes Tensors, so that one rule serves first and higher derivatives.

The formulas use the placeholders ``{a}``, ``{b}`` (the inputs, in order), ``{x}`` (the
single input of a unary op), ``{out}`` (the output) and ``{p}`` (the op's parameter text).

References: HIPS/autograd ``numpy_vjps.py`` (one rule per input, one shared un-broadcast
helper) and JAX's Autodidax (each rule stated in one plain sentence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import DomainError, ShapeError

Array = np.ndarray
Rule = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: forward, one backward rule per input, and derivative formulas.

    ``forward`` receives ndarrays (the inputs' data) and the op's parameters as keywords.
    ``arity`` is the number of tensor inputs, or ``None`` for a variadic op
    (``concatenate``, ``stack``), whose single rule also receives the input's index
    ``i`` as a keyword. ``expr`` writes the op applied to its inputs (for graphs);
    ``formulas`` hold, per input, the local derivative d out / d input.
    """

    name: str
    forward: Callable[..., Array]
    rules: tuple[Rule, ...]
    formulas: tuple[str, ...]
    expr: str
    arity: int | None = 1
    elementwise: bool = False
    doc: str = field(default="", compare=False)


# ---------------------------------------------------------------------------------------
# Helpers shared by the rules
# ---------------------------------------------------------------------------------------


class _TensorNotBound:
    """Stands for the Tensor class until ``chainrule.tensor`` is imported (which binds it)."""


#: Set by ``chainrule.tensor`` at import: the Tensor class and the function that applies
#: an op to tensors. Kept here so the rules can dispatch without a circular import.
_TENSOR: type = _TensorNotBound
_APPLY: Callable[..., Any] | None = None


def _is_tensor(x: object) -> bool:
    return isinstance(x, _TENSOR)


def value(x: Any) -> Array:
    """The ndarray behind ``x`` (a Tensor's data, or ``x`` itself)."""
    return x.data if isinstance(x, _TENSOR) else x


def call(name: str, *args: Any, **attrs: Any) -> Any:
    """Apply op ``name``: on Tensors it records a graph node, on ndarrays it is plain numpy.

    >>> call("sum", np.ones((2, 3)), axis=0, keepdims=False)
    array([2., 2., 2.])
    """
    op = OPS[name]
    for a in args:
        if isinstance(a, _TENSOR):
            assert _APPLY is not None
            return _APPLY(op, *args, **attrs)
    return op.forward(*args, **attrs)


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``.

    The one helper every binary rule uses to undo numpy broadcasting.

    >>> unbroadcast(np.ones((4, 3, 2)), (3, 1))
    array([[8.],
           [8.],
           [8.]])
    """
    if g.shape == shape:
        return g
    if not shape:  # back to a single number (a weight or a bias): sum everything
        return g.sum() if type(g) is np.ndarray else call("sum", g, axis=None, keepdims=False)
    lead = g.ndim - len(shape)
    axes = list(range(lead))  # the axes that broadcasting added in front...
    for i, n in enumerate(shape):  # ...and those that it stretched from length 1
        if n == 1 and g.shape[lead + i] != 1:
            axes.append(lead + i)
    if axes:
        g = call("sum", g, axis=tuple(axes), keepdims=False)
    return call("reshape", g, shape=shape) if g.shape != shape else g


def _expand(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Broadcast a reduction's gradient ``g`` back to the reduced input's ``shape``."""
    if not keepdims and axis is not None:
        kept = list(shape)
        for ax in _axes(axis, len(shape)):
            kept[ax] = 1
        g = call("reshape", g, shape=tuple(kept))
    return call("broadcast_to", g, shape=shape)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim if ndim else 0 for a in axis)


def _contiguous(x: Any) -> Any:
    # BLAS needs unit strides: a broadcast (stride-0) gradient would fall off the fast path.
    return np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x


def _shape_text(*arrays: Array) -> str:
    return " and ".join(str(tuple(np.shape(a))) for a in arrays)


def _broadcasting(name: str, fn: Callable[[Array, Array], Array]) -> Callable[..., Array]:
    """Wrap a binary numpy function so a broadcast failure names the op and the shapes."""

    def forward(a: Array, b: Array) -> Array:
        try:
            return fn(a, b)
        except ValueError as exc:
            if np.ndim(a) and np.ndim(b):
                try:
                    np.broadcast_shapes(np.shape(a), np.shape(b))
                except ValueError:
                    raise ShapeError(
                        f"{name}: shapes {_shape_text(a, b)} do not broadcast"
                    ) from None
            raise ShapeError(f"{name}: {exc} (shapes {_shape_text(a, b)})") from None

    forward.__name__ = f"{name}_forward"
    return forward


# ---------------------------------------------------------------------------------------
# Forward functions that need more than one numpy call
# ---------------------------------------------------------------------------------------


def _pow_forward(a: Array, b: Array) -> Array:
    if b.ndim == 0 and b >= 0 and float(b).is_integer():  # x ** 2 and the like: always real
        return np.power(a, b)
    negative = a < 0
    if negative.any():  # a negative base needs an integer power
        bad = negative & (np.floor(b) != b)
        if bad.any():
            base = np.broadcast_to(a, bad.shape)[bad][0]
            power = np.broadcast_to(b, bad.shape)[bad][0]
            raise DomainError(
                f"pow: a negative base to a non-integer power is not a real number "
                f"(shapes {_shape_text(a, b)}; e.g. {base:g} ** {power:g})"
            )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.power(a, b)


def _log_forward(x: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.log(x)


def _sigmoid_forward(x: Array) -> Array:
    # 1 / (1 + e^-x) written as exp(-softplus(-x)): no overflow for any x.
    return np.exp(-np.logaddexp(0.0, -x))


def _shift(x: Array, axis: int, name: str) -> Array:
    """The maximum along ``axis`` (kept), subtracted so that exp cannot overflow."""
    try:
        return x.max(axis=axis, keepdims=True)
    except ValueError as exc:  # numpy's AxisError is a ValueError
        raise ShapeError(f"{name}: {exc} (shape {np.shape(x)}, axis {axis})") from None


def _softmax_forward(x: Array, axis: int = -1) -> Array:
    e = np.exp(x - _shift(x, axis, "softmax"))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_forward(x: Array, axis: int = -1) -> Array:
    shifted = x - _shift(x, axis, "log_softmax")
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _matmul_forward(a: Array, b: Array) -> Array:
    try:
        return np.matmul(a, b)
    except ValueError:
        raise ShapeError(_matmul_problem(a, b)) from None


def _matmul_problem(a: Array, b: Array) -> str:
    """Why ``a @ b`` failed, in words (only computed after numpy refused)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return f"matmul: needs arrays of at least 1 dimension, got {_shape_text(a, b)}"
    k_a = np.shape(a)[-1]
    k_b = np.shape(b)[0] if np.ndim(b) == 1 else np.shape(b)[-2]
    if k_a != k_b:
        return (
            f"matmul: shapes {_shape_text(a, b)} do not match "
            f"(inner dimensions {k_a} and {k_b} differ)"
        )
    return f"matmul: batch shapes of {_shape_text(a, b)} do not broadcast"


# The forwards below call array methods (x.sum, x.reshape, ...) rather than the np.sum-style
# functions: same results, without the functions' Python wrapper (about 1 us per call).


def _reduction(name: str) -> Callable[..., Array]:
    """The forward ``x.<name>(axis, keepdims)``: a bad axis or an empty max names the op."""

    def forward(x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        try:
            return getattr(x, name)(axis=axis, keepdims=keepdims)
        except (ValueError, TypeError) as exc:  # numpy's AxisError is a ValueError
            raise ShapeError(f"{name}: {exc} (shape {np.shape(x)}, axis {axis})") from None

    forward.__name__ = f"{name}_forward"
    return forward


def _transpose_forward(x: Array, axes: tuple[int, ...] | None = None) -> Array:
    try:
        return x.transpose(axes)
    except (ValueError, TypeError) as exc:  # a repeated or missing axis, or one too large
        raise ShapeError(
            f"transpose: axes {axes} are not a permutation of the {np.ndim(x)} axes of shape "
            f"{np.shape(x)} ({exc})"
        ) from None


def _swapaxes_forward(x: Array, axis1: int = -2, axis2: int = -1) -> Array:
    # (matmul's rules call it without axes: a batched transpose of the last two)
    try:
        return x.swapaxes(axis1, axis2)
    except (ValueError, TypeError) as exc:  # numpy's AxisError is a ValueError
        raise ShapeError(
            f"swapaxes: {exc} (shape {np.shape(x)}, axes {axis1!r} and {axis2!r})"
        ) from None


def _reshape_forward(x: Array, shape: tuple[int, ...]) -> Array:
    try:
        return x.reshape(shape)
    except ValueError:
        raise ShapeError(f"reshape: cannot reshape {np.shape(x)} into {shape}") from None


def _broadcast_to_forward(x: Array, shape: tuple[int, ...]) -> Array:
    # The copies are written out (a contiguous, writable array) instead of numpy's read-only
    # stride-0 view: the rules downstream, BLAS's matmul in particular, need unit strides.
    # (It is also 4x faster than np.broadcast_to for small arrays.)
    if x.ndim > len(shape):
        raise ShapeError(f"broadcast_to: cannot broadcast {np.shape(x)} to {shape}")
    try:
        out = np.empty(shape, dtype=x.dtype)
        out[...] = x
    except ValueError:
        raise ShapeError(f"broadcast_to: cannot broadcast {np.shape(x)} to {shape}") from None
    return out


def _getitem_forward(x: Array, index: Any) -> Array:
    try:
        return x[index]
    except IndexError as exc:
        raise ShapeError(f"getitem: {exc} (shape {np.shape(x)})") from None


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _scatter_forward(g: Array, index: Any, shape: tuple[int, ...]) -> Array:
    out = np.zeros(shape, dtype=np.result_type(g))
    if _is_basic_index(index):
        out[index] = g  # no index repeats: a plain assignment
    else:
        np.add.at(out, index, g)  # fancy indices may repeat: accumulate
    return out


def _nothing_to_join(name: str, xs: tuple[Array, ...]) -> None:
    if not xs:
        raise ShapeError(f"{name}: needs at least one tensor to join, got an empty sequence")


def _concatenate_forward(*xs: Array, axis: int = 0) -> Array:
    _nothing_to_join("concatenate", xs)
    try:
        return np.concatenate(xs, axis=axis)
    except ValueError:
        raise ShapeError(
            f"concatenate: shapes {_shape_text(*xs)} do not fit along axis {axis}"
        ) from None


def _stack_forward(*xs: Array, axis: int = 0) -> Array:
    _nothing_to_join("stack", xs)
    try:
        return np.stack(xs, axis=axis)
    except ValueError:
        raise ShapeError(f"stack: shapes {_shape_text(*xs)} differ") from None


def _where_forward(x: Array, y: Array, cond: Array) -> Array:
    try:
        return np.where(cond, x, y)
    except ValueError:
        raise ShapeError(
            f"where: shapes {_shape_text(cond, x, y)} (condition, x, y) do not broadcast"
        ) from None


def _clip_forward(x: Array, lo: float | None = None, hi: float | None = None) -> Array:
    return np.clip(x, lo, hi)


# ---------------------------------------------------------------------------------------
# Backward rules: one named function per input
# ---------------------------------------------------------------------------------------


def add_a(g, out, a, b):
    return unbroadcast(g, a.shape)


def add_b(g, out, a, b):
    return unbroadcast(g, b.shape)


def sub_b(g, out, a, b):
    return unbroadcast(-g, b.shape)


def mul_a(g, out, a, b):
    return unbroadcast(g * b, a.shape)


def mul_b(g, out, a, b):
    return unbroadcast(g * a, b.shape)


def div_a(g, out, a, b):
    return unbroadcast(g / b, a.shape)


def div_b(g, out, a, b):
    return unbroadcast(-g * out / b, b.shape)


def pow_a(g, out, a, b):
    # d a^b / da = b a^(b-1). Where b = 0, a^b is the constant 1 and the slope is 0, as in
    # PyTorch, even at a = 0, where the formula reads 0 * 0^-1 = 0 * inf = NaN: there the
    # base is replaced by 1 first, so no inf enters the rule (nor its own derivatives).
    vb = value(b)
    # (.item(): a Python comparison, ten times faster than numpy's for one number)
    if not (vb.item() == 0 if vb.ndim == 0 else (vb == 0).any()):  # the usual case
        return unbroadcast(g * b * a ** (b - 1), a.shape)
    both_zero = (value(a) == 0) & (vb == 0)
    base = call("where", a, 1.0, cond=~both_zero) if both_zero.any() else a
    return unbroadcast(g * b * base ** (b - 1), a.shape)


def pow_b(g, out, a, b):
    # d a^b / db = a^b ln a, taken as 0 where a <= 0. At a = 0, b >= 0 PyTorch gives 0 too;
    # at a = 0, b < 0 it gives -inf (inf * ln 0) and at a negative base NaN (the log of a
    # negative number). A negative base only has real powers for integer b, so a^b is not
    # differentiable in b there: rather than NaN, which would poison every gradient that a
    # sum of terms shares, the exponent gets 0 wherever a <= 0.
    positive = value(a) > 0
    if positive.all():
        return unbroadcast(g * out * call("log", a), b.shape)
    # Both factors are made finite there (1 for the base, 0 for a^b, which is inf at a = 0,
    # b < 0) rather than multiplied by 0 afterwards: 0 * inf would be NaN again.
    safe_a = call("where", a, 1.0, cond=positive)
    safe_out = call("where", out, 0.0, cond=positive)
    return unbroadcast(g * safe_out * call("log", safe_a), b.shape)


def _share(weights: Array, g: Any) -> Array:
    """0/1 (or 1/2 at a tie) weights in the float dtype of ``g``: float32 stays float32."""
    return weights.astype(value(g).dtype, copy=False)


def maximum_a(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((va > vb) + 0.5 * (va == vb), g), a.shape)


def maximum_b(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((vb > va) + 0.5 * (va == vb), g), b.shape)


def minimum_a(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((va < vb) + 0.5 * (va == vb), g), a.shape)


def minimum_b(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((vb < va) + 0.5 * (va == vb), g), b.shape)


def matmul_a(g, out, a, b):
    g = _contiguous(g)
    if a.ndim == 1 and b.ndim == 1:  # inner product: out is a scalar
        return g * b
    if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
        return unbroadcast(call("reshape", g, shape=g.shape + (1,)) * b, a.shape)
    if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        col = call("matmul", b, call("reshape", g, shape=g.shape + (1,)))
        return unbroadcast(call("reshape", col, shape=col.shape[:-1]), a.shape)
    return unbroadcast(call("matmul", g, call("swapaxes", b)), a.shape)


def matmul_b(g, out, a, b):
    g = _contiguous(g)
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
        col = call("matmul", call("swapaxes", a), call("reshape", g, shape=g.shape + (1,)))
        return unbroadcast(call("reshape", col, shape=col.shape[:-1]), b.shape)
    if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        outer = call("reshape", a, shape=a.shape + (1,)) * call(
            "reshape", g, shape=g.shape[:-1] + (1,) + g.shape[-1:]
        )
        return unbroadcast(outer, b.shape)
    return unbroadcast(call("matmul", call("swapaxes", a), g), b.shape)


def neg_x(g, out, x):
    return -g


def abs_x(g, out, x):
    return g * np.sign(value(x))


def exp_x(g, out, x):
    return g * out


def log_x(g, out, x):
    return g / x


def sqrt_x(g, out, x):
    return g / (2 * out)


def softplus_x(g, out, x):
    return g * call("sigmoid", x)


def relu_x(g, out, x):
    return g * (value(x) > 0)


def sigmoid_x(g, out, x):
    return g * out * (1 - out)


def tanh_x(g, out, x):
    return g * (1 - out * out)


def softmax_x(g, out, x, axis=-1):
    return out * (g - call("sum", g * out, axis=axis, keepdims=True))


def log_softmax_x(g, out, x, axis=-1):
    return g - call("exp", out) * call("sum", g, axis=axis, keepdims=True)


def clip_x(g, out, x, lo=None, hi=None):
    vx = value(x)
    inside = np.ones(vx.shape, dtype=bool)
    if lo is not None:
        inside &= vx >= lo
    if hi is not None:
        inside &= vx <= hi
    return g * inside


def sum_x(g, out, x, axis=None, keepdims=False):
    return _expand(g, x.shape, axis, keepdims)


def mean_x(g, out, x, axis=None, keepdims=False):
    count = x.size // max(out.size, 1) if x.size else 1
    return _expand(g, x.shape, axis, keepdims) / count


def _extremum_x(g, out, x, axis=None, keepdims=False):
    # The gradient is shared equally between the entries that attain the extremum.
    vx, vout = value(x), value(out)
    if not keepdims and axis is not None:
        vout = np.expand_dims(vout, _axes(axis, vx.ndim))
    hit = vx == vout
    share = _share(hit / np.sum(hit, axis=axis, keepdims=True), g)
    return _expand(g, x.shape, axis, keepdims) * share


def reshape_x(g, out, x, shape):
    return call("reshape", g, shape=x.shape)


def transpose_x(g, out, x, axes=None):
    if axes is None:
        return call("transpose", g, axes=None)
    # Undo the permutation. numpy allows negative axes (-1 is the last), so normalise first.
    inverse = tuple(int(i) for i in np.argsort([a % x.ndim for a in axes]))
    return call("transpose", g, axes=inverse)


def swapaxes_x(g, out, x, axis1=-2, axis2=-1):
    return call("swapaxes", g, axis1=axis1, axis2=axis2)  # a swap is its own inverse


def broadcast_to_x(g, out, x, shape):
    return unbroadcast(g, x.shape)


def getitem_x(g, out, x, index):
    return call("scatter", g, index=index, shape=x.shape)


def scatter_g(g, out, x, index, shape):
    return call("getitem", g, index=index)


def concatenate_i(g, out, *xs, i, axis=0):
    start = sum(x.shape[axis] for x in xs[:i])
    index = [slice(None)] * g.ndim
    index[axis] = slice(start, start + xs[i].shape[axis])
    return call("getitem", g, index=tuple(index))


def stack_i(g, out, *xs, i, axis=0):
    index = [slice(None)] * g.ndim
    index[axis] = i
    return call("getitem", g, index=tuple(index))


def where_x(g, out, x, y, cond):
    return unbroadcast(g * cond, x.shape)


def where_y(g, out, x, y, cond):
    return unbroadcast(g * ~np.asarray(cond, dtype=bool), y.shape)


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

# fmt: off
_ENTRIES = [
    # Binary, broadcasting like numpy.
    Op("add", _broadcasting("add", np.add), (add_a, add_b), ("1", "1"), "{a} + {b}", 2, True,
       "The sum passes its gradient unchanged to both terms."),
    Op("sub", _broadcasting("sub", np.subtract), (add_a, sub_b), ("1", "-1"), "{a} - {b}", 2,
       True, "The gradient goes to the first term, and negated to the second."),
    Op("mul", _broadcasting("mul", np.multiply), (mul_a, mul_b), ("{b}", "{a}"), "{a} {b}", 2,
       True, "Each factor's derivative is the other factor."),
    Op("div", _broadcasting("div", np.divide), (div_a, div_b), ("1 / {b}", "-{a} / {b}^2"),
       "{a} / {b}", 2, True, "d(a/b)/da = 1/b and d(a/b)/db = -a/b^2."),
    Op("pow", _pow_forward, (pow_a, pow_b), ("{b} {a}^({b} - 1)", "{a}^{b} ln {a}"),
       "{a}^{b}", 2, True,
       "The power rule for the base (0 where b = 0); a^b ln a for the exponent (0 where "
       "a <= 0)."),
    Op("maximum", _broadcasting("maximum", np.maximum), (maximum_a, maximum_b),
       ("1 if {a} > {b} else 0", "1 if {b} > {a} else 0"), "max({a}, {b})", 2, True,
       "The gradient goes to the larger input (shared at a tie)."),
    Op("minimum", _broadcasting("minimum", np.minimum), (minimum_a, minimum_b),
       ("1 if {a} < {b} else 0", "1 if {b} < {a} else 0"), "min({a}, {b})", 2, True,
       "The gradient goes to the smaller input (shared at a tie)."),
    Op("matmul", _matmul_forward, (matmul_a, matmul_b), ("{b}^T", "{a}^T"), "{a} @ {b}", 2,
       False, "d(A@B): the gradient times B^T for A, A^T times the gradient for B."),
    # Unary, elementwise.
    Op("neg", np.negative, (neg_x,), ("-1",), "-{x}", 1, True, "Negation flips the sign."),
    Op("abs", np.abs, (abs_x,), ("sign({x})",), "|{x}|", 1, True, "d|x|/dx is the sign of x."),
    Op("exp", np.exp, (exp_x,), ("e^{x}",), "e^{x}", 1, True, "e^x is its own derivative."),
    Op("log", _log_forward, (log_x,), ("1 / {x}",), "ln {x}", 1, True, "d ln x / dx = 1/x."),
    Op("sqrt", np.sqrt, (sqrt_x,), ("1 / (2 sqrt({x}))",), "sqrt({x})", 1, True,
       "d sqrt(x)/dx = 1 / (2 sqrt(x))."),
    Op("softplus", lambda x: np.logaddexp(0.0, x), (softplus_x,), ("e^{x} / (1 + e^{x})",),
       "softplus({x})", 1, True, "softplus(x) = ln(1 + e^x); its derivative is the sigmoid."),
    Op("relu", lambda x: np.maximum(x, 0.0), (relu_x,), ("1 if {x} > 0 else 0",), "relu({x})",
       1, True, "ReLU passes the gradient where its input is positive."),
    Op("sigmoid", _sigmoid_forward, (sigmoid_x,), ("sigmoid({x}) (1 - sigmoid({x}))",),
       "sigmoid({x})", 1, True, "d sigmoid(x)/dx = sigmoid(x) (1 - sigmoid(x))."),
    Op("tanh", np.tanh, (tanh_x,), ("1 - tanh({x})^2",), "tanh({x})", 1, True,
       "d tanh(x)/dx = 1 - tanh(x)^2."),
    Op("clip", _clip_forward, (clip_x,), ("1 if {p} else 0",), "clip({x}, {p})", 1, True,
       "Clipping passes the gradient where the input lies inside the bounds."),
    # Along an axis.
    Op("softmax", _softmax_forward, (softmax_x,), ("s (delta - s), s = softmax({x})",),
       "softmax({x})", 1, False, "d s_i/d x_j = s_i (delta_ij - s_j)."),
    Op("log_softmax", _log_softmax_forward, (log_softmax_x,),
       ("delta - softmax({x})",), "log_softmax({x})", 1, False,
       "d log s_i / d x_j = delta_ij - s_j."),
    Op("sum", _reduction("sum"), (sum_x,), ("1",), "sum({x})", 1, False,
       "A sum passes the gradient to every term."),
    Op("mean", _reduction("mean"), (mean_x,), ("1 / n",), "mean({x})", 1, False,
       "A mean passes 1/n of the gradient to every term."),
    Op("max", _reduction("max"), (_extremum_x,), ("1 at the maximum, else 0",), "max({x})", 1,
       False, "The gradient goes to the largest entry (shared at a tie)."),
    Op("min", _reduction("min"), (_extremum_x,), ("1 at the minimum, else 0",), "min({x})", 1,
       False, "The gradient goes to the smallest entry (shared at a tie)."),
    # Shape and indexing.
    Op("reshape", _reshape_forward, (reshape_x,), ("1",), "{x}", 1, False,
       "Reshaping moves no values: the gradient is reshaped back."),
    Op("transpose", _transpose_forward, (transpose_x,), ("1",),
       "{x}^T", 1, False, "The gradient is transposed back."),
    Op("swapaxes", _swapaxes_forward, (swapaxes_x,), ("1",), "{x}^T", 1, False,
       "Swapping two axes (the last two by default); the gradient is swapped back."),
    Op("broadcast_to", _broadcast_to_forward, (broadcast_to_x,), ("1",), "{x}", 1, False,
       "Copies of an entry each send their gradient back to it: they are summed."),
    Op("getitem", _getitem_forward, (getitem_x,), ("1",), "{x}[{p}]", 1, False,
       "The picked entries get the gradient; the others get zero."),
    Op("scatter", _scatter_forward, (scatter_g,), ("1",), "scatter({x})", 1, False,
       "The adjoint of indexing: its gradient is the gradient indexed again."),
    Op("concatenate", _concatenate_forward, (concatenate_i,), ("1",), "concat({a}, ...)",
       None, False, "Each input gets its own slice of the gradient."),
    Op("stack", _stack_forward, (stack_i,), ("1",), "stack({a}, ...)", None, False,
       "Each input gets its own slice of the gradient."),
    Op("where", _where_forward, (where_x, where_y), ("1 where cond", "1 where not cond"),
       "where(cond, {a}, {b})", 2, True, "Each branch gets the gradient where it was chosen."),
]
# fmt: on

#: name -> Op. The single source of every operation's forward, rules and formulas.
OPS: dict[str, Op] = {op.name: op for op in _ENTRIES}
