"""The single table of operations.

Every operation the engine knows is ONE entry of :data:`OPS`: its name, the numpy forward,
one backward rule (vector-Jacobian product) per input, a short human formula of its local
derivative (which the explainer prints) and a sentence saying what the rule does. The
entries below are written op by op: each op's forward, rules and entry sit together.
Adding an operation is one entry here: the Tensor methods, the ``chainrule.<name>``
functions, the ``chainrule.numpy`` names, numpy's dispatch on Tensors, the functions a
formula may call, the activations and the op list of ``docs/engine.md`` are all read from
this table. ``tests/test_ops.py`` checks every entry's gradients against finite
differences and PyTorch, and every formula text against its rule.

A backward rule ``rule(g, out, *inputs, **attrs)`` receives the gradient ``g`` flowing into
the output, the output ``out`` and the inputs, and returns the gradient for its own input.
The rules are written against Python operators and :func:`call`, which work on ndarrays
AND on Tensors: plain backward passes ndarrays, ``create_graph=True`` passes Tensors, so
that one rule serves first and higher derivatives. This module knows nothing of the
Tensor class: :func:`call` hands an op to any argument that follows the
:class:`Recorder` protocol (chainrule's Tensor does), and runs the numpy forward otherwise.

The formulas use the placeholders ``{a}``, ``{b}`` (the inputs, in order), ``{x}`` (the
single input of a unary op), ``{out}`` (the output) and ``{p}`` (the op's parameter text).

References: HIPS/autograd ``numpy_vjps.py`` (one rule per input, one shared un-broadcast
helper) and JAX's Autodidax (each rule stated in one plain sentence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from chainrule.errors import DomainError, ShapeError

Array = np.ndarray
Rule = Callable[..., Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One operation: forward, one backward rule per input, and derivative formulas.

    ``forward`` receives ndarrays (the inputs' data) and the op's parameters as keywords.
    ``arity`` is the number of tensor inputs, or ``None`` for a variadic op
    (``concatenate``, ``stack``), whose single rule also receives the input's index
    ``i`` as a keyword. ``expr`` writes the op applied to its inputs (for graphs);
    ``formulas`` hold, per input, the local derivative d out / d input; ``doc`` says in
    one sentence what the rule does.

    What the op is called elsewhere is part of the entry too: ``function`` (a
    ``chainrule.<name>`` function), ``method`` (a Tensor method), ``aliases`` (more names
    for both), ``numpy`` (the numpy functions it stands for when called on Tensors, and
    the names of ``chainrule.numpy``), ``formula_names`` (the names a formula model may
    call it by) and ``activation`` (a layer activation of ``chainrule.nn``). ``signature``,
    when given, is a function with the public call's signature that returns the op's
    ``(inputs, parameters)``; otherwise the public call takes the forward's signature.
    ``entry`` (contractions such as matmul) names the one entry of another input that
    one entry of the derivative reads, for the explainer's one-unit chain rule.
    ``differentiable=False`` marks an op without gradient (argmax): it has no rules and
    returns plain arrays.

    >>> op = OPS["tanh"]
    >>> op.formulas, op.arity, op.elementwise
    (('1 - tanh({x})^2',), 1, True)
    """

    name: str
    forward: Callable[..., Array]
    rules: tuple[Rule, ...]
    formulas: tuple[str, ...]
    expr: str
    doc: str = field(default="", compare=False)
    arity: int | None = 1
    elementwise: bool = False
    differentiable: bool = True
    function: bool = True
    method: bool = False
    aliases: tuple[str, ...] = ()
    numpy: tuple[str, ...] = ()
    formula_names: tuple[str, ...] = ()
    activation: bool = False
    signature: Callable[..., tuple[tuple[Any, ...], dict[str, Any]]] | None = None
    entry: Callable[..., tuple[int, tuple[int, ...]] | None] | None = None

    def __post_init__(self) -> None:
        inputs = 1 if self.arity is None else self.arity
        rules = inputs if self.differentiable else 0
        if len(self.rules) != rules:
            raise ValueError(
                f"op {self.name!r}: {len(self.rules)} backward rule(s) for {inputs} input(s); "
                f"it needs {rules}" + ("" if self.differentiable else " (not differentiable)")
            )
        if len(self.formulas) != inputs:
            raise ValueError(
                f"op {self.name!r}: {len(self.formulas)} derivative formula(s) for {inputs} "
                f"input(s); it needs one per input"
            )


# ---------------------------------------------------------------------------------------
# Dispatch: rules run on ndarrays, or on anything that records (Tensors)
# ---------------------------------------------------------------------------------------


class Recorder(Protocol):
    """An array-like that records the ops applied to it (chainrule's Tensor).

    Backward rules call ops through :func:`call`. When an argument's type has
    ``record_op``, the op is handed to it (a Tensor records a graph node, which is how
    ``create_graph=True`` differentiates the rules themselves); otherwise the numpy forward
    runs. ``data`` is the ndarray behind the recorder (see :func:`value`).
    """

    data: Array

    @staticmethod
    def record_op(op: Op, *args: Any, **attrs: Any) -> Any: ...


def value(x: Any) -> Any:
    """The ndarray behind ``x`` (a Tensor's data, or ``x`` itself).

    >>> value(np.ones(2))
    array([1., 1.])
    """
    return x.data if hasattr(type(x), "record_op") else x


def call(name: str, *args: Any, **attrs: Any) -> Any:
    """Apply op ``name``: on Tensors it records a graph node, on ndarrays it is plain numpy.

    >>> call("sum", np.ones((2, 3)), axis=0, keepdims=False)
    array([2., 2., 2.])
    """
    op = OPS[name]
    for a in args:
        record = getattr(type(a), "record_op", None)
        if record is not None:
            return record(op, *args, **attrs)
    return op.forward(*args, **attrs)


# ---------------------------------------------------------------------------------------
# Helpers shared by the rules
# ---------------------------------------------------------------------------------------


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


def _share(weights: Array, g: Any) -> Array:
    """0/1 (or 1/2 at a tie) weights in the float dtype of ``g``: float32 stays float32."""
    return weights.astype(value(g).dtype, copy=False)


# Parameters as the public calls accept them (a list of axes, a shape as separate ints).


def is_whole_number(n: Any) -> bool:
    """An int (Python's or numpy's), not a bool."""
    return isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_))


def whole_numbers(where: str, what: str, values: Any) -> tuple[int, ...]:
    """A shape or axes as a tuple of ints: ``values`` is one int, a sequence of them, or a
    1-tuple holding the sequence (from ``*args``). Anything else is a ShapeError naming
    ``where`` (numpy would raise a TypeError, or int() would truncate 2.5 to 2).

    >>> whole_numbers("reshape", "the shape", ((2, 3),))
    (2, 3)
    """
    if is_whole_number(values):
        return (int(values),)
    if isinstance(values, tuple) and len(values) == 1 and not is_whole_number(values[0]):
        values = values[0]  # reshape((2, 3)) rather than reshape(2, 3)
    items = tuple(values) if isinstance(values, (tuple, list, np.ndarray)) else None
    if items is None or not all(is_whole_number(n) for n in items):
        raise ShapeError(f"{where}: {what} must be whole numbers (int), got {values!r}")
    return tuple(int(n) for n in items)


def plain_axis(axis: Any) -> Any:
    """An axis argument as numpy's methods take it (a list of axes becomes a tuple)."""
    return tuple(axis) if isinstance(axis, list) else axis


def _reduce_signature(
    x: Any, axis: Any = None, keepdims: bool = False
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (x,), {"axis": plain_axis(axis), "keepdims": keepdims}


# ---------------------------------------------------------------------------------------
# Forward functions that need more than one numpy call
# ---------------------------------------------------------------------------------------


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


def _softplus_forward(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def _relu_forward(x: Array) -> Array:
    return np.maximum(x, 0.0)


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
# The table, op by op: forward, rules and entry together
# ---------------------------------------------------------------------------------------

_ENTRIES: list[Op] = []


def _entry(op: Op) -> Op:
    """Add ``op`` to the table (in this order: the docs and the formula functions keep it)."""
    _ENTRIES.append(op)
    return op


# -- binary arithmetic, broadcasting like numpy ------------------------------------------


def add_a(g, out, a, b):
    return unbroadcast(g, a.shape)


def add_b(g, out, a, b):
    return unbroadcast(g, b.shape)


_entry(
    Op(
        name="add",
        forward=_broadcasting("add", np.add),
        rules=(add_a, add_b),
        formulas=("1", "1"),
        expr="{a} + {b}",
        arity=2,
        elementwise=True,
        numpy=("add",),
        doc="The sum passes its gradient unchanged to both terms.",
    )
)


def sub_b(g, out, a, b):
    return unbroadcast(-g, b.shape)


_entry(
    Op(
        name="sub",
        forward=_broadcasting("sub", np.subtract),
        rules=(add_a, sub_b),
        formulas=("1", "-1"),
        expr="{a} - {b}",
        arity=2,
        elementwise=True,
        numpy=("subtract",),
        doc="The gradient goes to the first term, and negated to the second.",
    )
)


def mul_a(g, out, a, b):
    return unbroadcast(g * b, a.shape)


def mul_b(g, out, a, b):
    return unbroadcast(g * a, b.shape)


_entry(
    Op(
        name="mul",
        forward=_broadcasting("mul", np.multiply),
        rules=(mul_a, mul_b),
        formulas=("{b}", "{a}"),
        expr="{a} {b}",
        arity=2,
        elementwise=True,
        numpy=("multiply",),
        doc="Each factor's derivative is the other factor.",
    )
)


def div_a(g, out, a, b):
    return unbroadcast(g / b, a.shape)


def div_b(g, out, a, b):
    return unbroadcast(-g * out / b, b.shape)


_entry(
    Op(
        name="div",
        forward=_broadcasting("div", np.divide),
        rules=(div_a, div_b),
        formulas=("1 / {b}", "-{a} / {b}^2"),
        expr="{a} / {b}",
        arity=2,
        elementwise=True,
        numpy=("divide", "true_divide"),
        doc="d(a/b)/da = 1/b and d(a/b)/db = -a/b^2.",
    )
)


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


_entry(
    Op(
        name="pow",
        forward=_pow_forward,
        rules=(pow_a, pow_b),
        formulas=("{b} {a}^({b} - 1)", "{a}^{b} ln {a}"),
        expr="{a}^{b}",
        arity=2,
        elementwise=True,
        numpy=("power",),
        doc="The power rule for the base (0 where b = 0); a^b ln a for the exponent (0 "
        "where a <= 0).",
    )
)


def maximum_a(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((va > vb) + 0.5 * (va == vb), g), a.shape)


def maximum_b(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((vb > va) + 0.5 * (va == vb), g), b.shape)


_entry(
    Op(
        name="maximum",
        forward=_broadcasting("maximum", np.maximum),
        rules=(maximum_a, maximum_b),
        formulas=("1 if {a} > {b} else 0", "1 if {b} > {a} else 0"),
        expr="max({a}, {b})",
        arity=2,
        elementwise=True,
        method=True,
        numpy=("maximum",),
        formula_names=("maximum",),
        doc="The gradient goes to the larger input (shared at a tie).",
    )
)


def minimum_a(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((va < vb) + 0.5 * (va == vb), g), a.shape)


def minimum_b(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((vb < va) + 0.5 * (va == vb), g), b.shape)


_entry(
    Op(
        name="minimum",
        forward=_broadcasting("minimum", np.minimum),
        rules=(minimum_a, minimum_b),
        formulas=("1 if {a} < {b} else 0", "1 if {b} < {a} else 0"),
        expr="min({a}, {b})",
        arity=2,
        elementwise=True,
        method=True,
        numpy=("minimum",),
        formula_names=("minimum",),
        doc="The gradient goes to the smaller input (shared at a tie).",
    )
)


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


def matmul_entry(
    k: int, shapes: list[tuple[int, ...]], unit: int, out_unit: int
) -> tuple[int, tuple[int, ...]] | None:
    """The one entry of the other input that a layer's ``z = a @ W`` reads.

    The formulas write matmul's derivative for whole matrices (``W^T``); the explainer
    follows one unit of a layer, one column of ``W`` (of shape (n, m)): dz[j]/dW[i, j] =
    a[i] and dz[j]/da[i] = W[i, j]. Given the input ``k`` differentiated, the input shapes,
    the flat entry ``unit`` of input ``k`` and the output entry ``out_unit`` (j), it
    returns the other input and the index of the entry to write, or None when the
    product is not a layer's.

    >>> matmul_entry(1, [(4, 2), (2, 3)], 5, 2)  # dz[2]/dW[1, 2] = a[1]
    (0, (1,))
    >>> matmul_entry(0, [(4, 2), (2, 3)], 1, 2)  # dz[2]/da[1] = W[1, 2]
    (1, (1, 2))
    """
    a_shape, b_shape = shapes
    if len(b_shape) != 2:
        return None
    if k == 1:
        return 0, (int(np.unravel_index(unit, b_shape)[0]),)
    if len(a_shape) == 2:
        return 1, (unit, out_unit)
    return None


_entry(
    Op(
        name="matmul",
        forward=_matmul_forward,
        rules=(matmul_a, matmul_b),
        formulas=("{b}^T", "{a}^T"),
        expr="{a} @ {b}",
        arity=2,
        method=True,
        numpy=("matmul",),
        entry=matmul_entry,
        doc="d(A@B): the gradient times B^T for A, A^T times the gradient for B.",
    )
)


# -- unary, elementwise ------------------------------------------------------------------


def neg_x(g, out, x):
    return -g


_entry(
    Op(
        name="neg",
        forward=np.negative,
        rules=(neg_x,),
        formulas=("-1",),
        expr="-{x}",
        elementwise=True,
        numpy=("negative",),
        doc="Negation flips the sign.",
    )
)


def softplus_x(g, out, x):
    return g * call("sigmoid", x)


_entry(
    Op(
        name="softplus",
        forward=_softplus_forward,
        rules=(softplus_x,),
        formulas=("e^{x} / (1 + e^{x})",),
        expr="softplus({x})",
        elementwise=True,
        method=True,
        formula_names=("softplus",),
        activation=True,
        doc="softplus(x) = ln(1 + e^x); its derivative is the sigmoid.",
    )
)


def relu_x(g, out, x):
    return g * (value(x) > 0)


_entry(
    Op(
        name="relu",
        forward=_relu_forward,
        rules=(relu_x,),
        formulas=("1 if {x} > 0 else 0",),
        expr="relu({x})",
        elementwise=True,
        method=True,
        formula_names=("relu",),
        activation=True,
        doc="ReLU passes the gradient where its input is positive.",
    )
)


def sigmoid_x(g, out, x):
    return g * out * (1 - out)


_entry(
    Op(
        name="sigmoid",
        forward=_sigmoid_forward,
        rules=(sigmoid_x,),
        formulas=("sigmoid({x}) (1 - sigmoid({x}))",),
        expr="sigmoid({x})",
        elementwise=True,
        method=True,
        formula_names=("sigmoid",),
        activation=True,
        doc="d sigmoid(x)/dx = sigmoid(x) (1 - sigmoid(x)).",
    )
)


def tanh_x(g, out, x):
    return g * (1 - out * out)


_entry(
    Op(
        name="tanh",
        forward=np.tanh,
        rules=(tanh_x,),
        formulas=("1 - tanh({x})^2",),
        expr="tanh({x})",
        elementwise=True,
        method=True,
        numpy=("tanh",),
        formula_names=("tanh",),
        activation=True,
        doc="d tanh(x)/dx = 1 - tanh(x)^2.",
    )
)


def exp_x(g, out, x):
    return g * out


_entry(
    Op(
        name="exp",
        forward=np.exp,
        rules=(exp_x,),
        formulas=("e^{x}",),
        expr="e^{x}",
        elementwise=True,
        method=True,
        numpy=("exp",),
        formula_names=("exp",),
        doc="e^x is its own derivative.",
    )
)


def log_x(g, out, x):
    return g / x


_entry(
    Op(
        name="log",
        forward=_log_forward,
        rules=(log_x,),
        formulas=("1 / {x}",),
        expr="ln {x}",
        elementwise=True,
        method=True,
        numpy=("log",),
        formula_names=("log", "ln"),
        doc="d ln x / dx = 1/x.",
    )
)


def sqrt_x(g, out, x):
    return g / (2 * out)


_entry(
    Op(
        name="sqrt",
        forward=np.sqrt,
        rules=(sqrt_x,),
        formulas=("1 / (2 sqrt({x}))",),
        expr="sqrt({x})",
        elementwise=True,
        method=True,
        numpy=("sqrt",),
        formula_names=("sqrt",),
        doc="d sqrt(x)/dx = 1 / (2 sqrt(x)).",
    )
)


def abs_x(g, out, x):
    return g * np.sign(value(x))


_entry(
    Op(
        name="abs",
        forward=np.abs,
        rules=(abs_x,),
        formulas=("sign({x})",),
        expr="|{x}|",
        elementwise=True,
        method=True,
        numpy=("absolute", "abs"),
        formula_names=("abs",),
        doc="d|x|/dx is the sign of x.",
    )
)


def clip_x(g, out, x, lo=None, hi=None):
    vx = value(x)
    inside = np.ones(vx.shape, dtype=bool)
    if lo is not None:
        inside &= vx >= lo
    if hi is not None:
        inside &= vx <= hi
    return g * inside


_entry(
    Op(
        name="clip",
        forward=_clip_forward,
        rules=(clip_x,),
        formulas=("1 if {p} else 0",),
        expr="clip({x}, {p})",
        elementwise=True,
        method=True,
        numpy=("clip",),
        doc="Clipping passes the gradient where the input lies inside the bounds.",
    )
)


# -- along an axis -----------------------------------------------------------------------


def softmax_x(g, out, x, axis=-1):
    return out * (g - call("sum", g * out, axis=axis, keepdims=True))


_entry(
    Op(
        name="softmax",
        forward=_softmax_forward,
        rules=(softmax_x,),
        formulas=("s (delta - s), s = softmax({x})",),
        expr="softmax({x})",
        method=True,
        doc="d s_i/d x_j = s_i (delta_ij - s_j).",
    )
)


def log_softmax_x(g, out, x, axis=-1):
    return g - call("exp", out) * call("sum", g, axis=axis, keepdims=True)


_entry(
    Op(
        name="log_softmax",
        forward=_log_softmax_forward,
        rules=(log_softmax_x,),
        formulas=("delta - softmax({x})",),
        expr="log_softmax({x})",
        method=True,
        doc="d log s_i / d x_j = delta_ij - s_j.",
    )
)


def sum_x(g, out, x, axis=None, keepdims=False):
    return _expand(g, x.shape, axis, keepdims)


_entry(
    Op(
        name="sum",
        forward=_reduction("sum"),
        rules=(sum_x,),
        formulas=("1",),
        expr="sum({x})",
        method=True,
        numpy=("sum",),
        signature=_reduce_signature,
        doc="A sum passes the gradient to every term.",
    )
)


def mean_x(g, out, x, axis=None, keepdims=False):
    count = x.size // max(out.size, 1) if x.size else 1
    return _expand(g, x.shape, axis, keepdims) / count


_entry(
    Op(
        name="mean",
        forward=_reduction("mean"),
        rules=(mean_x,),
        formulas=("1 / n",),
        expr="mean({x})",
        method=True,
        numpy=("mean",),
        signature=_reduce_signature,
        doc="A mean passes 1/n of the gradient to every term.",
    )
)


def _extremum_x(g, out, x, axis=None, keepdims=False):
    # The gradient is shared equally between the entries that attain the extremum.
    vx, vout = value(x), value(out)
    if not keepdims and axis is not None:
        vout = np.expand_dims(vout, _axes(axis, vx.ndim))
    hit = vx == vout
    share = _share(hit / np.sum(hit, axis=axis, keepdims=True), g)
    return _expand(g, x.shape, axis, keepdims) * share


_entry(
    Op(
        name="max",
        forward=_reduction("max"),
        rules=(_extremum_x,),
        formulas=("1 at the maximum, else 0",),
        expr="max({x})",
        method=True,
        numpy=("max", "amax"),
        signature=_reduce_signature,
        doc="The gradient goes to the largest entry (shared at a tie).",
    )
)
_entry(
    Op(
        name="min",
        forward=_reduction("min"),
        rules=(_extremum_x,),
        formulas=("1 at the minimum, else 0",),
        expr="min({x})",
        method=True,
        numpy=("min", "amin"),
        signature=_reduce_signature,
        doc="The gradient goes to the smallest entry (shared at a tie).",
    )
)


# -- shape and indexing ------------------------------------------------------------------


def reshape_x(g, out, x, shape):
    return call("reshape", g, shape=x.shape)


def _reshape_signature(x: Any, shape: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (x,), {"shape": whole_numbers("reshape", "the shape", shape)}


_entry(
    Op(
        name="reshape",
        forward=_reshape_forward,
        rules=(reshape_x,),
        formulas=("1",),
        expr="{x}",
        method=True,
        numpy=("reshape",),
        signature=_reshape_signature,
        doc="Reshaping moves no values: the gradient is reshaped back.",
    )
)


def transpose_x(g, out, x, axes=None):
    if axes is None:
        return call("transpose", g, axes=None)
    # Undo the permutation. numpy allows negative axes (-1 is the last), so normalise first.
    inverse = tuple(int(i) for i in np.argsort([a % x.ndim for a in axes]))
    return call("transpose", g, axes=inverse)


def _transpose_signature(x: Any, axes: Any = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if axes is not None:
        axes = whole_numbers("transpose", "the axes", axes)
    return (x,), {"axes": axes}


_entry(
    Op(
        name="transpose",
        forward=_transpose_forward,
        rules=(transpose_x,),
        formulas=("1",),
        expr="{x}^T",
        method=True,
        numpy=("transpose",),
        signature=_transpose_signature,
        doc="The gradient is transposed back.",
    )
)


def swapaxes_x(g, out, x, axis1=-2, axis2=-1):
    return call("swapaxes", g, axis1=axis1, axis2=axis2)  # a swap is its own inverse


_entry(
    Op(
        name="swapaxes",
        forward=_swapaxes_forward,
        rules=(swapaxes_x,),
        formulas=("1",),
        expr="{x}^T",
        method=True,
        numpy=("swapaxes",),
        doc="Swapping two axes (the last two by default); the gradient is swapped back.",
    )
)


def broadcast_to_x(g, out, x, shape):
    return unbroadcast(g, x.shape)


def _broadcast_to_signature(x: Any, shape: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (x,), {"shape": whole_numbers("broadcast_to", "the shape", shape)}


_entry(
    Op(
        name="broadcast_to",
        forward=_broadcast_to_forward,
        rules=(broadcast_to_x,),
        formulas=("1",),
        expr="{x}",
        method=True,
        numpy=("broadcast_to",),
        signature=_broadcast_to_signature,
        doc="Copies of an entry each send their gradient back to it: they are summed.",
    )
)


def getitem_x(g, out, x, index):
    return call("scatter", g, index=index, shape=x.shape)


_entry(
    Op(
        name="getitem",
        forward=_getitem_forward,
        rules=(getitem_x,),
        formulas=("1",),
        expr="{x}[{p}]",
        function=False,
        doc="The picked entries get the gradient; the others get zero.",
    )
)


def scatter_g(g, out, x, index, shape):
    return call("getitem", g, index=index)


_entry(
    Op(
        name="scatter",
        forward=_scatter_forward,
        rules=(scatter_g,),
        formulas=("1",),
        expr="scatter({x})",
        function=False,
        doc="The adjoint of indexing: its gradient is the gradient indexed again.",
    )
)


def concatenate_i(g, out, *xs, i, axis=0):
    start = sum(x.shape[axis] for x in xs[:i])
    index = [slice(None)] * g.ndim
    index[axis] = slice(start, start + xs[i].shape[axis])
    return call("getitem", g, index=tuple(index))


def _join_signature(xs: Any, axis: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return tuple(xs), {"axis": axis}


_entry(
    Op(
        name="concatenate",
        forward=_concatenate_forward,
        rules=(concatenate_i,),
        formulas=("1",),
        expr="concat({a}, ...)",
        arity=None,
        numpy=("concatenate",),
        signature=_join_signature,
        doc="Each input gets its own slice of the gradient.",
    )
)


def stack_i(g, out, *xs, i, axis=0):
    index = [slice(None)] * g.ndim
    index[axis] = i
    return call("getitem", g, index=tuple(index))


_entry(
    Op(
        name="stack",
        forward=_stack_forward,
        rules=(stack_i,),
        formulas=("1",),
        expr="stack({a}, ...)",
        arity=None,
        numpy=("stack",),
        signature=_join_signature,
        doc="Each input gets its own slice of the gradient.",
    )
)


def where_x(g, out, x, y, cond):
    return unbroadcast(g * cond, x.shape)


def where_y(g, out, x, y, cond):
    return unbroadcast(g * ~np.asarray(cond, dtype=bool), y.shape)


def _where_signature(cond: Any, x: Any, y: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (x, y), {"cond": np.asarray(value(cond), dtype=bool)}


_entry(
    Op(
        name="where",
        forward=_where_forward,
        rules=(where_x, where_y),
        formulas=("1 where cond", "1 where not cond"),
        expr="where(cond, {a}, {b})",
        arity=2,
        elementwise=True,
        numpy=("where",),
        signature=_where_signature,
        doc="Each branch gets the gradient where it was chosen.",
    )
)


#: name -> Op. The single source of every operation's forward, rules and formulas.
OPS: dict[str, Op] = {op.name: op for op in _ENTRIES}
