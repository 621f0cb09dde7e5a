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

    ``reads_inputs=False`` says that the rules read only the inputs' shapes, never their
    values (add, sub, neg, sum, mean): the engine then does not keep those inputs
    read-only for the backward pass, nor check them for changes made in place, as
    PyTorch checks only the tensors that an op saves.

    ``direct`` is the numpy function that a binary op's ``forward`` calls, wrapped only to
    word numpy's errors (``a + b``, ``a * b``): the operators call it directly and hand
    its ``ValueError`` to ``forward`` for the message. A forward made by
    ``_broadcasting`` gives its ufunc.

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
    reads_inputs: bool = True
    direct: Callable[[Array, Array], Array] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.direct is None:  # a binary forward that wraps a ufunc to word its errors
            object.__setattr__(self, "direct", getattr(self.forward, "ufunc", None))
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
    if type(x) is _ndarray:  # the usual case, without looking for an attribute it lacks
        return x
    return x.data if hasattr(type(x), "record_op") else x


#: The types that never record: ``call`` passes them by without asking (a failed
#: attribute lookup costs more than numpy's work on a small array).
_PLAIN = frozenset((np.ndarray, float, int, bool, type(None), tuple))
_ndarray = np.ndarray
_add_reduce = np.add.reduce
_empty = np.empty
_ascontiguous = np.ascontiguousarray


def call(name: str, *args: Any, **attrs: Any) -> Any:
    """Apply op ``name``: on Tensors it records a graph node, on ndarrays it is plain numpy.

    >>> call("sum", np.ones((2, 3)), axis=0, keepdims=False)
    array([2., 2., 2.])
    """
    for a in args:
        if type(a) not in _PLAIN:
            record = getattr(type(a), "record_op", None)
            if record is not None:
                return record(OPS[name], *args, **attrs)
    return _FORWARDS[name](*args, **attrs)


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
        # (np.add.reduce is what ndarray.sum() calls, without its Python wrapper; into a
        # 0-d array, as sum's forward, not a numpy scalar that the sweep must convert)
        if type(g) is _ndarray:
            return _add_reduce(g, None, None, _empty((), g.dtype))
        return call("sum", g, axis=None, keepdims=False)
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


def _share(weights: Array, g: Any, *inputs: Any) -> Array:
    """0/1 (or 1/2 at a tie) weights in the float dtype of ``g``: float32 stays float32.

    The weights come from comparisons, and a comparison with NaN is undefined, not
    false: wherever one of ``inputs`` is NaN the weight is NaN, so a NaN input gives a NaN
    gradient instead of a 0 that hides it (the NaN rule of docs/engine.md). A NaN that
    flows in as ``g`` stays NaN by itself: NaN * 0 is NaN.

    >>> _share(np.array([1.0, 0.0]), np.zeros(2), np.array([np.nan, 1.0]))
    array([nan,  0.])
    """
    shared = weights.astype(value(g).dtype, copy=False)
    for x in inputs:
        undefined = np.isnan(value(x))
        if undefined.any():
            shared = np.where(undefined, np.nan, shared).astype(shared.dtype, copy=False)
    return shared


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
    forward.ufunc = fn  # type: ignore[attr-defined]  # a compiled replay calls it with out=
    return forward


def _pow_forward(a: Array, b: Array) -> Array:
    if b.ndim == 0:  # (.item(): a Python comparison, ten times faster than numpy's on 0-d)
        exponent = b.item()
        if exponent >= 0 and float(exponent).is_integer():  # x ** 2 and the like: real
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


#: The slope that leaky_relu keeps below 0: PyTorch's and ONNX's default.
LEAKY_SLOPE = 0.01


def _leaky_relu_forward(x: Array) -> Array:
    return np.where(x > 0, x, LEAKY_SLOPE * x)


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

    method = getattr(np.ndarray, name)  # looked up once, not at every call
    whole = np.add.reduce if name == "sum" else None

    def forward(x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        try:
            if type(x) is _ndarray:
                if whole is not None and axis is None and not keepdims and x.dtype.kind == "f":
                    # The sum of everything (a loss), straight into a 0-d array: the same
                    # numpy reduction as x.sum(), without a numpy scalar to convert.
                    return whole(x, None, None, np.empty((), x.dtype))
                return method(x, axis=axis, keepdims=keepdims)
            return getattr(x, name)(axis=axis, keepdims=keepdims)  # e.g. a numpy scalar
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
        reads_inputs=False,
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
        reads_inputs=False,
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
    exponent = vb.item() if vb.ndim == 0 else None
    if exponent == 2 and b is vb:  # a square (a loss): a^1 is a itself, to the last bit,
        return unbroadcast(g * b * a, a.shape)  # so one power less; (b recording: its graph)
    if not (exponent == 0 if exponent is not None else (vb == 0).any()):  # the usual case
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
    positive = ~(value(a) <= 0)  # a NaN base is kept: its NaN reaches the gradient
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
    return unbroadcast(g * _share((va > vb) + 0.5 * (va == vb), g, va, vb), a.shape)


def maximum_b(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((vb > va) + 0.5 * (va == vb), g, va, vb), b.shape)


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
    return unbroadcast(g * _share((va < vb) + 0.5 * (va == vb), g, va, vb), a.shape)


def minimum_b(g, out, a, b):
    va, vb = value(a), value(b)
    return unbroadcast(g * _share((vb < va) + 0.5 * (va == vb), g, va, vb), b.shape)


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
    if type(g) is _ndarray and type(b) is _ndarray and b.ndim == 2 and a.ndim == 2:
        # The usual case, written out: g @ b^T has a's shape already (nothing to undo).
        return np.matmul(_ascontiguous(g), b.T)
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
    if type(g) is _ndarray and type(a) is _ndarray and a.ndim == 2 and b.ndim == 2:
        return np.matmul(a.T, _ascontiguous(g))  # a^T @ g, b's shape already
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
        reads_inputs=False,
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
    if type(x) is _ndarray:  # (call's dispatch, skipped: an ndarray never records)
        return g * _sigmoid_forward(x)
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
    vx = value(x)
    return g * _share(vx > 0, g, vx)


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


def leaky_relu_x(g, out, x):
    vx = value(x)
    return g * _share(np.where(vx > 0, 1.0, LEAKY_SLOPE), g, vx)


_entry(
    Op(
        name="leaky_relu",
        forward=_leaky_relu_forward,
        rules=(leaky_relu_x,),
        formulas=("1 if {x} > 0 else 0.01",),
        expr="leaky_relu({x})",
        elementwise=True,
        method=True,
        formula_names=("leaky_relu",),
        activation=True,
        doc="Leaky ReLU passes the gradient where its input is positive, and 0.01 of it "
        "elsewhere: a unit whose input is negative at every point still gets a slope.",
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
    return g * _share(inside, g, vx)


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
    if axis is None and type(g) is _ndarray:  # the sum of everything (a loss): g everywhere
        full = np.empty(x.shape, g.dtype)  # (as broadcast_to's forward, without the call)
        full[...] = g
        return full
    return _expand(g, x.shape, axis, keepdims)


_entry(
    Op(
        name="sum",
        reads_inputs=False,
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
        reads_inputs=False,
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
    # A slice whose extremum is NaN (a NaN entry) has no hit: 0/0 makes each of its
    # entries' gradient NaN, the NaN rule of docs/engine.md.
    with np.errstate(invalid="ignore"):
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


# -- more elementwise functions ----------------------------------------------------------
# Each is a one-input function with its derivative written in terms of table ops, so the
# rule differentiates again (second derivatives, Hessians) like every other.


def _unary(name, forward, rule, formula, doc, numpy=None, expr=None, **extra):
    """Enter a one-input elementwise op ``name``, a function, a method and numpy's name."""
    return _entry(
        Op(
            name=name,
            forward=forward,
            rules=(rule,),
            formulas=(formula,),
            expr=expr or f"{name}({{x}})",
            elementwise=True,
            method=True,
            numpy=(name,) if numpy is None else numpy,
            doc=doc,
            **extra,
        )
    )


def _quiet(fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``fn`` without numpy's warnings: outside the domain it returns NaN or inf, as numpy
    does, without a warning (log(0) is -inf)."""

    def forward(x: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(x)

    forward.__name__ = f"{fn.__name__}_forward"
    return forward


def sin_x(g, out, x):
    return g * call("cos", x)


def cos_x(g, out, x):
    return -g * call("sin", x)


def tan_x(g, out, x):
    return g * (1 + out * out)


def arcsin_x(g, out, x):
    return g / call("sqrt", 1 - x * x)


def arccos_x(g, out, x):
    return -g / call("sqrt", 1 - x * x)


def arctan_x(g, out, x):
    return g / (1 + x * x)


def sinh_x(g, out, x):
    return g * call("cosh", x)


def cosh_x(g, out, x):
    return g * call("sinh", x)


def arcsinh_x(g, out, x):
    return g / call("sqrt", x * x + 1)


def arccosh_x(g, out, x):
    return g / call("sqrt", x * x - 1)


def arctanh_x(g, out, x):
    return g / (1 - x * x)


def log2_x(g, out, x):
    return g / (x * np.log(2.0))


def log10_x(g, out, x):
    return g / (x * np.log(10.0))


def log1p_x(g, out, x):
    return g / (1 + x)


def expm1_x(g, out, x):
    return g * (out + 1)


def exp2_x(g, out, x):
    return g * out * np.log(2.0)


def square_x(g, out, x):
    return g * 2 * x


def reciprocal_x(g, out, x):
    return -g * out * out


def zero_x(g, out, x, **attrs):
    # A step function: its slope is 0 wherever it is defined (as in PyTorch). The zeros
    # are g * 0, not a fresh array, so a NaN gradient stays NaN, and a NaN input gives
    # NaN (see "NaN in gradients" in docs/engine.md).
    return g * _share(np.zeros(np.shape(value(x)), dtype=bool), g, x)


_unary("sin", np.sin, sin_x, "cos({x})", "d sin(x)/dx = cos(x).")
_unary("cos", np.cos, cos_x, "-sin({x})", "d cos(x)/dx = -sin(x).")
_unary("tan", np.tan, tan_x, "1 + tan({x})^2", "d tan(x)/dx = 1 + tan(x)^2.")
_unary(
    "arcsin",
    _quiet(np.arcsin),
    arcsin_x,
    "1 / sqrt(1 - {x}^2)",
    "d arcsin(x)/dx = 1 / sqrt(1 - x^2), for -1 < x < 1.",
)
_unary(
    "arccos",
    _quiet(np.arccos),
    arccos_x,
    "-1 / sqrt(1 - {x}^2)",
    "d arccos(x)/dx = -1 / sqrt(1 - x^2), for -1 < x < 1.",
)
_unary("arctan", np.arctan, arctan_x, "1 / (1 + {x}^2)", "d arctan(x)/dx = 1 / (1 + x^2).")
_unary("sinh", np.sinh, sinh_x, "cosh({x})", "d sinh(x)/dx = cosh(x).")
_unary("cosh", np.cosh, cosh_x, "sinh({x})", "d cosh(x)/dx = sinh(x).")
_unary(
    "arcsinh", np.arcsinh, arcsinh_x, "1 / sqrt({x}^2 + 1)", "d arcsinh(x)/dx = 1 / sqrt(x^2 + 1)."
)
_unary(
    "arccosh",
    _quiet(np.arccosh),
    arccosh_x,
    "1 / sqrt({x}^2 - 1)",
    "d arccosh(x)/dx = 1 / sqrt(x^2 - 1), for x > 1.",
)
_unary(
    "arctanh",
    _quiet(np.arctanh),
    arctanh_x,
    "1 / (1 - {x}^2)",
    "d arctanh(x)/dx = 1 / (1 - x^2), for -1 < x < 1.",
)
_unary("log2", _quiet(np.log2), log2_x, "1 / ({x} ln 2)", "d log2(x)/dx = 1 / (x ln 2).")
_unary("log10", _quiet(np.log10), log10_x, "1 / ({x} ln 10)", "d log10(x)/dx = 1 / (x ln 10).")
_unary(
    "log1p",
    _quiet(np.log1p),
    log1p_x,
    "1 / (1 + {x})",
    "d ln(1 + x)/dx = 1 / (1 + x), exact for tiny x.",
)
_unary("expm1", np.expm1, expm1_x, "e^{x}", "d (e^x - 1)/dx = e^x, exact for tiny x.")
_unary("exp2", np.exp2, exp2_x, "2^{x} ln 2", "d 2^x/dx = 2^x ln 2.", expr="2^{x}")
_unary("square", np.square, square_x, "2 {x}", "d x^2/dx = 2 x.", expr="{x}^2")
_unary(
    "reciprocal",
    _quiet(np.reciprocal),
    reciprocal_x,
    "-1 / {x}^2",
    "d (1/x)/dx = -1 / x^2.",
    expr="1 / {x}",
)
_unary("sign", np.sign, zero_x, "0", "A step: its gradient is 0 (at 0 as well, as PyTorch).")
_unary("floor", np.floor, zero_x, "0", "A step: its gradient is 0 (as PyTorch).")
_unary("ceil", np.ceil, zero_x, "0", "A step: its gradient is 0 (as PyTorch).")
_unary("trunc", np.trunc, zero_x, "0", "A step: its gradient is 0 (as PyTorch).")


def _round_forward(x: Array, decimals: int = 0) -> Array:
    return np.round(x, decimals)


_unary(
    "round",
    _round_forward,
    zero_x,
    "0",
    "A step: its gradient is 0 (as PyTorch); decimals as numpy's.",
    numpy=("round", "around", "rint"),
)


# -- more binary elementwise functions ---------------------------------------------------


def _binary(name, forward, rules, formulas, doc, expr=None, numpy=None, **extra):
    return _entry(
        Op(
            name=name,
            forward=_broadcasting(name, forward),
            rules=rules,
            formulas=formulas,
            expr=expr or f"{name}({{a}}, {{b}})",
            arity=2,
            elementwise=True,
            method=True,
            numpy=(name,) if numpy is None else numpy,
            doc=doc,
            **extra,
        )
    )


def arctan2_a(g, out, a, b):
    return unbroadcast(g * b / (a * a + b * b), a.shape)


def arctan2_b(g, out, a, b):
    return unbroadcast(-g * a / (a * a + b * b), b.shape)


def logaddexp_a(g, out, a, b):
    return unbroadcast(g * call("exp", a - out), a.shape)


def logaddexp_b(g, out, a, b):
    return unbroadcast(g * call("exp", b - out), b.shape)


def hypot_a(g, out, a, b):
    return unbroadcast(g * a / out, a.shape)


def hypot_b(g, out, a, b):
    return unbroadcast(g * b / out, b.shape)


def fmod_b(g, out, a, b):
    return unbroadcast(-g * np.trunc(value(a) / value(b)), b.shape)


def remainder_b(g, out, a, b):
    return unbroadcast(-g * np.floor(value(a) / value(b)), b.shape)


_binary(
    "arctan2",
    np.arctan2,
    (arctan2_a, arctan2_b),
    ("{b} / ({a}^2 + {b}^2)", "-{a} / ({a}^2 + {b}^2)"),
    "The angle of the point (b, a): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2).",
)
_binary(
    "logaddexp",
    np.logaddexp,
    (logaddexp_a, logaddexp_b),
    ("e^({a} - {out})", "e^({b} - {out})"),
    "ln(e^a + e^b), stable; each input gets its softmax weight e^(input - out).",
)
_binary(
    "hypot",
    np.hypot,
    (hypot_a, hypot_b),
    ("{a} / {out}", "{b} / {out}"),
    "sqrt(a^2 + b^2); each input gets input / out.",
)
_binary(
    "fmod",
    np.fmod,
    (add_a, fmod_b),
    ("1", "-trunc({a} / {b})"),
    "a - b trunc(a/b) (C's sign): d/da = 1, d/db = -trunc(a/b).",
)
_binary(
    "remainder",
    np.remainder,
    (add_a, remainder_b),
    ("1", "-floor({a} / {b})"),
    "a - b floor(a/b), Python's % : d/da = 1, d/db = -floor(a/b).",
    expr="{a} % {b}",
    numpy=("remainder", "mod"),
    aliases=("mod",),
)


# -- reductions and scans ----------------------------------------------------------------


def _reduce_entry(
    name, forward, rule, formula, doc, numpy=None, signature=_reduce_signature, **extra
):
    return _entry(
        Op(
            name=name,
            forward=forward,
            rules=(rule,),
            formulas=(formula,),
            expr=f"{name}({{x}})",
            method=True,
            numpy=(name,) if numpy is None else numpy,
            signature=signature,
            doc=doc,
            **extra,
        )
    )


def _others_product(x: Any, axis: Any) -> Any:
    """The product of all the OTHER entries along the reduced axes, at each entry.

    Written with table ops, without dividing (exact where x has zeros): the reduced axes
    are moved last and flattened to n, each entry's row is copied n times with a 1 in its
    own place, and each copy is multiplied out.
    """
    axes = _axes(axis, x.ndim)
    rest = tuple(a for a in range(x.ndim) if a not in axes)
    moved = call("transpose", x, axes=rest + axes) if rest + axes != tuple(range(x.ndim)) else x
    lead = moved.shape[: len(rest)]
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = call("reshape", moved, shape=lead + (1, n))
    rows = call("where", 1.0, flat, cond=np.eye(n, dtype=bool))  # (..., n, n)
    others = call("reshape", call("prod", rows, axis=-1, keepdims=False), shape=moved.shape)
    if moved is x:
        return others
    inverse = tuple(int(i) for i in np.argsort(rest + axes))
    return call("transpose", others, axes=inverse)


def prod_x(g, out, x, axis=None, keepdims=False):
    vx = value(x)
    if vx.size and (np.abs(vx) < 1e-100).any():  # zeros, or x^2 would underflow to 0
        return _expand(g, x.shape, axis, keepdims) * _others_product(x, axis)
    return _expand(g * out, x.shape, axis, keepdims) / x


_reduce_entry(
    "prod",
    _reduction("prod"),
    prod_x,
    "{out} / {x}",
    "Each factor gets the product of the others (exact at zeros too).",
)


def _moment(name: str) -> Callable[..., Array]:
    """The forward ``x.<name>(axis, keepdims, ddof)`` (var, std); a bad axis names the op."""

    def forward(x: Array, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Array:
        try:
            return getattr(x, name)(axis=axis, keepdims=keepdims, ddof=ddof)
        except (ValueError, TypeError) as exc:
            raise ShapeError(f"{name}: {exc} (shape {np.shape(x)}, axis {axis})") from None

    forward.__name__ = f"{name}_forward"
    return forward


def _centered(x: Any, axis: Any) -> Any:
    return x - call("mean", x, axis=axis, keepdims=True)


def _count(x: Any, out: Any, ddof: int) -> float:
    return x.size / max(out.size, 1) - ddof


def var_x(g, out, x, axis=None, keepdims=False, ddof=0):
    return _expand(g, x.shape, axis, keepdims) * _centered(x, axis) * (2 / _count(x, out, ddof))


def std_x(g, out, x, axis=None, keepdims=False, ddof=0):
    share = _expand(g / out, x.shape, axis, keepdims) / _count(x, out, ddof)
    return share * _centered(x, axis)


def _moment_signature(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0):
    return (x,), {"axis": plain_axis(axis), "keepdims": keepdims, "ddof": ddof}


_reduce_entry(
    "var",
    _moment("var"),
    var_x,
    "2 ({x} - mean({x})) / (n - ddof)",
    "The variance (ddof as numpy's): each entry gets 2 (x - mean) / (n - ddof).",
    signature=_moment_signature,
)
_reduce_entry(
    "std",
    _moment("std"),
    std_x,
    "({x} - mean({x})) / ((n - ddof) {out})",
    "The standard deviation: each entry gets (x - mean) / ((n - ddof) std).",
    signature=_moment_signature,
)


def _logsumexp_forward(x: Array, axis: Any = None, keepdims: bool = False) -> Array:
    if x.size == 0:
        raise ShapeError(f"logsumexp: needs at least one entry (shape {x.shape})")
    shift = _reduction("max")(x, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    total = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    if not keepdims:
        total = total.reshape(np.sum(x, axis=axis).shape) if axis is not None else total.reshape(())
    return total


def logsumexp_x(g, out, x, axis=None, keepdims=False):
    weights = call("exp", x - _expand(out, x.shape, axis, keepdims))
    return _expand(g, x.shape, axis, keepdims) * weights


_reduce_entry(
    "logsumexp",
    _logsumexp_forward,
    logsumexp_x,
    "e^({x} - {out})",
    "ln sum e^x, stable; each entry gets its softmax weight e^(x - out).",
    numpy=(),
)


def _norm_forward(x: Array, axis: Any = None, keepdims: bool = False) -> Array:
    return np.sqrt(_reduction("sum")(x * x, axis=axis, keepdims=keepdims))


def norm_x(g, out, x, axis=None, keepdims=False):
    # At a zero vector the norm has no slope; 0 is taken, as PyTorch does.
    vout = value(out)
    if (vout == 0).any():
        safe = call("where", out, 1.0, cond=vout != 0)
        return _expand(g * (vout != 0) / safe, x.shape, axis, keepdims) * x
    return _expand(g / out, x.shape, axis, keepdims) * x


_reduce_entry(
    "norm",
    _norm_forward,
    norm_x,
    "{x} / {out}",
    "The Euclidean (Frobenius) norm sqrt(sum x^2): each entry gets x / norm (0 at a zero vector).",
    numpy=("linalg.norm",),
)


def _scan_axis(x: Array, axis: int | None, name: str) -> None:
    if axis is not None and not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise ShapeError(f"{name}: axis {axis} is out of bounds for shape {x.shape}")


def _cumsum_forward(x: Array, axis: int | None = None) -> Array:
    _scan_axis(x, axis, "cumsum")
    return np.cumsum(x, axis=axis)


def _flip_cumsum(g: Any, axis: int) -> Any:
    """The sums from the end: the adjoint of a running sum."""
    return call("flip", call("cumsum", call("flip", g, axis=axis), axis=axis), axis=axis)


def cumsum_x(g, out, x, axis=None):
    if axis is None:  # numpy runs along the flattened input
        return call("reshape", _flip_cumsum(g, 0), shape=x.shape)
    return _flip_cumsum(g, axis)


_entry(
    Op(
        name="cumsum",
        forward=_cumsum_forward,
        rules=(cumsum_x,),
        formulas=("1",),
        expr="cumsum({x})",
        method=True,
        numpy=("cumsum",),
        doc="Each entry is in every later running sum: it gets the sum of their "
        "gradients (a running sum from the end).",
    )
)


def _cumprod_forward(x: Array, axis: int | None = None) -> Array:
    _scan_axis(x, axis, "cumprod")
    return np.cumprod(x, axis=axis)


def cumprod_x(g, out, x, axis=None):
    if axis is None:
        flat = call("reshape", x, shape=(-1,))
        return call("reshape", cumprod_x(g, out, flat, axis=0), shape=x.shape)
    if not (np.abs(value(x)) < 1e-100).any():  # no zeros, and out cannot underflow to 0
        return _flip_cumsum(g * out, axis) / x
    # With zeros: d out_j / d x_i = product of x_k, k <= j, k != i. Each row i is x with
    # a 1 in place i, multiplied out along the axis; then summed against g over j >= i.
    moved = call("moveaxis", x, source=axis, destination=-1)
    n = moved.shape[-1]
    rows = call("where", 1.0, call("expand_dims", moved, axis=-2), cond=np.eye(n, dtype=bool))
    partial = call("cumprod", rows, axis=-1) * np.triu(np.ones((n, n)))  # j >= i
    gm = call("expand_dims", call("moveaxis", g, source=axis, destination=-1), axis=-2)
    summed = call("sum", partial * gm, axis=-1, keepdims=False)
    return call("moveaxis", summed, source=-1, destination=axis)


_entry(
    Op(
        name="cumprod",
        forward=_cumprod_forward,
        rules=(cumprod_x,),
        formulas=("{out} / {x}",),
        expr="cumprod({x})",
        method=True,
        numpy=("cumprod",),
        doc="Each entry gets, from every later running product, the product of the "
        "others (exact at zeros too).",
    )
)


def _arg_forward(name: str) -> Callable[..., Array]:
    def forward(x: Array, axis: int | None = None, keepdims: bool = False) -> Array:
        try:
            return np.asarray(getattr(np, name)(x, axis=axis, keepdims=keepdims))
        except ValueError as exc:
            raise ShapeError(f"{name}: {exc} (shape {np.shape(x)}, axis {axis})") from None

    forward.__name__ = f"{name}_forward"
    return forward


for _name, _word in (("argmax", "largest"), ("argmin", "smallest")):
    _entry(
        Op(
            name=_name,
            forward=_arg_forward(_name),
            rules=(),
            formulas=("none",),
            expr=f"{_name}({{x}})",
            differentiable=False,
            method=True,
            numpy=(_name,),
            doc=f"The position of the {_word} entry: whole numbers, no gradient (a "
            f"plain array of indices).",
        )
    )


# -- contractions ------------------------------------------------------------------------


def _parse_einsum(subscripts: str, ndims: list[int]) -> tuple[list[str], str]:
    """The letters of each operand and of the output; refuses what the rules cannot undo."""
    text = subscripts.replace(" ", "")
    if "." in text:
        raise ShapeError("einsum: '...' is not supported; write every axis as a letter")
    inputs, arrow, output = text.partition("->")
    letters = inputs.split(",")
    if len(letters) != len(ndims):
        raise ShapeError(
            f"einsum: {len(letters)} operand subscript(s) in {subscripts!r} for "
            f"{len(ndims)} operand(s)"
        )
    for sub, ndim in zip(letters, ndims, strict=True):
        if not sub.isalpha() and sub:
            raise ShapeError(f"einsum: subscripts must be letters, got {sub!r}")
        if len(sub) != ndim:
            raise ShapeError(f"einsum: {sub!r} names {len(sub)} axes of an operand of {ndim}")
        if len(set(sub)) != len(sub):
            raise ShapeError(
                f"einsum: a letter repeated in one operand ({sub!r}, a diagonal) is not "
                "supported; use diagonal() or trace()"
            )
    if not arrow:  # numpy's implicit output: the letters used once, in order
        counts = "".join(letters)
        output = "".join(sorted(c for c in set(counts) if counts.count(c) == 1))
    return letters, output


def _einsum_forward(*xs: Array, subscripts: str) -> Array:
    letters, output = _parse_einsum(subscripts, [x.ndim for x in xs])
    try:
        return np.einsum(",".join(letters) + "->" + output, *xs)
    except ValueError as exc:
        raise ShapeError(f"einsum: {exc} (shapes {_shape_text(*xs)})") from None


def einsum_i(g, out, *xs, i, subscripts):
    letters, output = _parse_einsum(subscripts, [x.ndim for x in xs])
    mine = letters[i]
    others = [letters[j] for j in range(len(xs)) if j != i]
    known = set(output).union(*others) if others else set(output)
    kept = "".join(c for c in mine if c in known)
    spec = ",".join([output, *others]) + "->" + kept
    grad = call("einsum", g, *[xs[j] for j in range(len(xs)) if j != i], subscripts=spec)
    if kept != mine:  # letters only this operand has were summed: their copies get g
        shape = tuple(xs[i].shape[k] if c in known else 1 for k, c in enumerate(mine))
        grad = call("broadcast_to", call("reshape", grad, shape=shape), shape=xs[i].shape)
    return grad


def _einsum_signature(subscripts: str, *operands: Any):
    if not isinstance(subscripts, str):
        raise ShapeError(f"einsum: the first argument is the subscripts text, got {subscripts!r}")
    return operands, {"subscripts": subscripts}


_entry(
    Op(
        name="einsum",
        forward=_einsum_forward,
        rules=(einsum_i,),
        formulas=("the other operands, contracted with the gradient",),
        expr="einsum({a}, ...)",
        arity=None,
        numpy=("einsum",),
        signature=_einsum_signature,
        doc="Each operand's gradient is the einsum of the gradient with the other operands "
        "(the letters only it has are broadcast back).",
    )
)


def _contraction(name: str, subscripts: Callable[[int, int], str], doc: str, **extra):
    """An op that is one einsum of two operands (its subscripts read from the shapes)."""

    def forward(a: Array, b: Array, **attrs: Any) -> Array:
        return _einsum_forward(a, b, subscripts=subscripts(a.ndim, b.ndim, **attrs))

    def rule_a(g, out, a, b, **attrs):
        return einsum_i(g, out, a, b, i=0, subscripts=subscripts(a.ndim, b.ndim, **attrs))

    def rule_b(g, out, a, b, **attrs):
        return einsum_i(g, out, a, b, i=1, subscripts=subscripts(a.ndim, b.ndim, **attrs))

    forward.__name__ = f"{name}_forward"
    return _entry(
        Op(
            name=name,
            forward=forward,
            rules=(rule_a, rule_b),
            formulas=("{b}^T", "{a}^T"),
            expr=f"{name}({{a}}, {{b}})",
            arity=2,
            numpy=(name,),
            doc=doc,
            **extra,
        )
    )


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _dot_subscripts(na: int, nb: int) -> str:
    # numpy's dot: the last axis of a with the second-to-last of b (the only one if 1-D).
    if na == 0 or nb == 0:
        return f"{_LETTERS[:na]},{_LETTERS[na : na + nb]}"
    a = _LETTERS[:na]
    b = list(_LETTERS[na : na + nb])
    b[-2 if nb >= 2 else 0] = a[-1]
    b = "".join(b)
    return f"{a},{b}->{a[:-1]}{b.replace(a[-1], '')}"


def _inner_subscripts(na: int, nb: int) -> str:
    if na == 0 or nb == 0:
        return f"{_LETTERS[:na]},{_LETTERS[na : na + nb]}"
    a = _LETTERS[:na]
    b = _LETTERS[na : na + nb - 1] + a[-1]
    return f"{a},{b}->{a[:-1]}{b[:-1]}"


def _tensordot_subscripts(na: int, nb: int, axes: Any = 2) -> str:
    if isinstance(axes, int):
        if not 0 <= axes <= min(na, nb):
            raise ShapeError(f"tensordot: axes={axes} for operands of {na} and {nb} axes")
        pairs = list(zip(range(na - axes, na), range(axes), strict=True))
    else:
        first, second = axes
        first = [first] if isinstance(first, int) else list(first)
        second = [second] if isinstance(second, int) else list(second)
        pairs = list(zip([f % na for f in first], [s % nb for s in second], strict=True))
    a = list(_LETTERS[:na])
    b = list(_LETTERS[na : na + nb])
    for i, j in pairs:
        b[j] = a[i]
    summed = {a[i] for i, _ in pairs}
    out = [c for c in a if c not in summed] + [c for c in b if c not in summed]
    return f"{''.join(a)},{''.join(b)}->{''.join(out)}"


def _outer_forward(a: Array, b: Array) -> Array:
    return np.multiply.outer(a.reshape(-1), b.reshape(-1))


def outer_a(g, out, a, b):
    return call("reshape", call("matmul", g, call("reshape", b, shape=(-1,))), shape=a.shape)


def outer_b(g, out, a, b):
    flat = call("reshape", a, shape=(-1,))
    return call("reshape", call("matmul", flat, g), shape=b.shape)


_contraction(
    "dot",
    _dot_subscripts,
    "numpy's dot: a sum over the last axis of a and the second-to-last of b.",
)
_contraction("inner", _inner_subscripts, "A sum over the last axes of a and b.")
_contraction(
    "tensordot",
    lambda na, nb, axes=2: _tensordot_subscripts(na, nb, axes),
    "A sum over the given axes of a and b (numpy's axes: an int or two lists).",
)
_entry(
    Op(
        name="outer",
        forward=_outer_forward,
        rules=(outer_a, outer_b),
        formulas=("{b}", "{a}"),
        expr="outer({a}, {b})",
        arity=2,
        numpy=("outer",),
        doc="out[i, j] = a[i] b[j] (flattened): each entry gets the gradient's row or "
        "column summed against the other vector.",
    )
)


def _diagonal_index(shape: tuple[int, ...], offset: int) -> tuple[Array, Array]:
    """Rows and columns of the diagonal ``offset`` of the last two axes of ``shape``."""
    n, m = shape[-2], shape[-1]
    k = max(0, min(n - max(-offset, 0), m - max(offset, 0)))
    i = np.arange(k) + max(-offset, 0)
    return i, i + offset


def _diagonal_forward(x: Array, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Array:
    try:
        return np.diagonal(x, offset, axis1, axis2).copy()
    except ValueError as exc:
        raise ShapeError(f"diagonal: {exc} (shape {np.shape(x)})") from None


def diagonal_x(g, out, x, offset=0, axis1=0, axis2=1):
    moved = np.moveaxis(np.empty(x.shape, dtype=bool), (axis1, axis2), (-2, -1)).shape
    rows, cols = _diagonal_index(moved, offset)
    placed = call("scatter", g, index=(Ellipsis, rows, cols), shape=moved)
    return call("moveaxis", placed, source=(-2, -1), destination=(axis1, axis2))


_entry(
    Op(
        name="diagonal",
        forward=_diagonal_forward,
        rules=(diagonal_x,),
        formulas=("1",),
        expr="diagonal({x})",
        method=True,
        numpy=("diagonal",),
        doc="The diagonal entries get the gradient; the others get zero.",
    )
)


def _trace_forward(x: Array, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Array:
    return np.sum(_diagonal_forward(x, offset, axis1, axis2), axis=-1)


def trace_x(g, out, x, offset=0, axis1=0, axis2=1):
    diag = _diagonal_forward(value(x), offset, axis1, axis2)
    spread = call("broadcast_to", call("expand_dims", g, axis=-1), shape=diag.shape)
    return diagonal_x(spread, None, x, offset, axis1, axis2)


_entry(
    Op(
        name="trace",
        forward=_trace_forward,
        rules=(trace_x,),
        formulas=("1",),
        expr="trace({x})",
        method=True,
        numpy=("trace",),
        doc="The sum of the diagonal: each diagonal entry gets the gradient.",
    )
)


def _diag_forward(x: Array, k: int = 0) -> Array:
    if x.ndim not in (1, 2):
        raise ShapeError(f"diag: needs a 1-D or 2-D array, got shape {x.shape}")
    return np.diag(x, k).copy()


def diag_x(g, out, x, k=0):
    if x.ndim == 1:  # a vector was put on a diagonal: read the diagonal back
        return call("diagonal", g, offset=k, axis1=0, axis2=1)
    return diagonal_x(g, out, x, offset=k)


_entry(
    Op(
        name="diag",
        forward=_diag_forward,
        rules=(diag_x,),
        formulas=("1",),
        expr="diag({x})",
        numpy=("diag",),
        doc="A vector onto a diagonal, or a matrix's diagonal out: the gradient goes the "
        "other way.",
    )
)


def _tri(name: str, keep: Callable[..., Array]):
    def forward(x: Array, k: int = 0) -> Array:
        if x.ndim < 2:
            raise ShapeError(f"{name}: needs at least 2 dimensions, got shape {x.shape}")
        return keep(x, k)

    def rule(g, out, x, k=0):
        return call(name, g, k=k)

    forward.__name__ = f"{name}_forward"
    rule.__name__ = f"{name}_x"
    where = "on and below" if name == "tril" else "on and above"
    _entry(
        Op(
            name=name,
            forward=forward,
            rules=(rule,),
            formulas=("1",),
            expr=f"{name}({{x}})",
            numpy=(name,),
            doc=f"The entries {where} diagonal k get the gradient; the others zero.",
        )
    )


_tri("tril", np.tril)
_tri("triu", np.triu)


# -- shapes ------------------------------------------------------------------------------


def _shape_op(name, forward, rule, doc, numpy=None, method=True, **extra):
    return _entry(
        Op(
            name=name,
            forward=forward,
            rules=(rule,),
            formulas=("1",),
            expr="{x}",
            method=method,
            numpy=(name,) if numpy is None else numpy,
            doc=doc,
            **extra,
        )
    )


def back_to_shape(g, out, x, **attrs):
    return call("reshape", g, shape=x.shape)


def _numpy_shape_call(name: str, fn: Callable[..., Array]) -> Callable[..., Array]:
    """A shape function of numpy whose refusals (bad axis, bad size) name the op."""

    def forward(x: Array, **attrs: Any) -> Array:
        try:
            return fn(x, **attrs)
        except (ValueError, TypeError) as exc:
            raise ShapeError(f"{name}: {exc} (shape {np.shape(x)})") from None

    forward.__name__ = f"{name}_forward"
    return forward


def _squeeze_forward(x: Array, axis: Any = None) -> Array:
    return _numpy_shape_call("squeeze", np.squeeze)(x, axis=plain_axis(axis))


def _expand_dims_forward(x: Array, axis: Any) -> Array:
    return _numpy_shape_call("expand_dims", np.expand_dims)(x, axis=plain_axis(axis))


def _ravel_forward(x: Array) -> Array:
    return x.reshape(-1)


_shape_op(
    "squeeze",
    _squeeze_forward,
    back_to_shape,
    "Dropping axes of length 1; the gradient is reshaped back.",
)
_shape_op(
    "expand_dims",
    _expand_dims_forward,
    back_to_shape,
    "Adding axes of length 1; the gradient is reshaped back.",
)
_shape_op(
    "ravel",
    _ravel_forward,
    back_to_shape,
    "Flattening to one axis; the gradient is reshaped back.",
    aliases=("flatten",),
)


def _moveaxis_forward(x: Array, source: Any, destination: Any) -> Array:
    return _numpy_shape_call("moveaxis", np.moveaxis)(
        x, source=plain_axis(source), destination=plain_axis(destination)
    )


def moveaxis_x(g, out, x, source, destination):
    return call("moveaxis", g, source=destination, destination=source)


_shape_op(
    "moveaxis", _moveaxis_forward, moveaxis_x, "Moving axes; the gradient's axes are moved back."
)


def _flip_forward(x: Array, axis: Any = None) -> Array:
    return _numpy_shape_call("flip", np.flip)(x, axis=plain_axis(axis))


def flip_x(g, out, x, axis=None):
    return call("flip", g, axis=axis)


_shape_op("flip", _flip_forward, flip_x, "Reversing an axis; the gradient is reversed back.")


def _roll_forward(x: Array, shift: Any, axis: Any = None) -> Array:
    return _numpy_shape_call("roll", np.roll)(x, shift=plain_axis(shift), axis=plain_axis(axis))


def roll_x(g, out, x, shift, axis=None):
    back = tuple(-s for s in shift) if isinstance(shift, tuple) else -shift
    return call("roll", g, shift=back, axis=axis)


_shape_op("roll", _roll_forward, roll_x, "Rolling entries along an axis; the gradient rolls back.")


def _repeat_index(x: Any, repeats: Any, axis: int | None) -> tuple[Any, ...]:
    n = x.size if axis is None else x.shape[axis]
    positions = np.repeat(np.arange(n), repeats)
    if axis is None:
        return (positions,)
    return (slice(None),) * (axis % x.ndim) + (positions,)


def _repeat_forward(x: Array, repeats: Any, axis: int | None = None) -> Array:
    return _numpy_shape_call("repeat", np.repeat)(x, repeats=repeats, axis=axis)


def repeat_x(g, out, x, repeats, axis=None):
    index = _repeat_index(x, repeats, axis)
    shape = (x.size,) if axis is None else x.shape
    back = call("scatter", g, index=index, shape=shape)  # the copies' gradients are summed
    return call("reshape", back, shape=x.shape) if axis is None else back


_shape_op(
    "repeat",
    _repeat_forward,
    repeat_x,
    "Each entry repeated: the gradients of its copies are summed.",
)


def _tile_forward(x: Array, reps: Any) -> Array:
    return _numpy_shape_call("tile", np.tile)(x, reps=plain_axis(reps))


def tile_x(g, out, x, reps):
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    d = max(len(reps), x.ndim)
    reps = (1,) * (d - len(reps)) + reps
    shape = (1,) * (d - x.ndim) + x.shape
    split = tuple(n for pair in zip(reps, shape, strict=True) for n in pair)
    summed = call(
        "sum", call("reshape", g, shape=split), axis=tuple(range(0, 2 * d, 2)), keepdims=False
    )
    return call("reshape", summed, shape=x.shape)


_shape_op(
    "tile",
    _tile_forward,
    tile_x,
    "The array repeated as tiles: the gradients of the copies are summed.",
)


def _pad_widths(x: Any, pad_width: Any) -> tuple[tuple[int, int], ...]:
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    return tuple((int(a), int(b)) for a, b in widths)


def _pad_forward(x: Array, pad_width: Any, mode: str = "constant", constant_values: float = 0):
    if mode != "constant":
        raise ShapeError(f"pad: only mode='constant' is differentiated, got mode={mode!r}")
    try:
        widths = _pad_widths(x, pad_width)
    except ValueError:
        raise ShapeError(f"pad: pad_width {pad_width!r} does not fit shape {x.shape}") from None
    return np.pad(x, widths, mode="constant", constant_values=constant_values)


def pad_x(g, out, x, pad_width, mode="constant", constant_values=0):
    index = tuple(
        slice(a, a + n) for (a, _), n in zip(_pad_widths(x, pad_width), x.shape, strict=True)
    )
    return call("getitem", g, index=index)


_shape_op(
    "pad",
    _pad_forward,
    pad_x,
    "Padding with a constant: the inside gets its gradient back; the padding is constant.",
    method=False,
)


def _sort_forward(x: Array, axis: int | None = -1) -> Array:
    return _numpy_shape_call("sort", np.sort)(x, axis=axis)


def sort_x(g, out, x, axis=-1):
    if axis is None:  # numpy sorts the flattened input
        flat = call("reshape", x, shape=(-1,))
        return call("reshape", sort_x(g, out, flat, axis=0), shape=x.shape)
    order = np.argsort(value(x), axis=axis, kind="stable")
    inverse = np.argsort(order, axis=axis, kind="stable")  # where each entry went
    index = list(np.indices(x.shape, sparse=True))
    index[axis % x.ndim] = inverse
    return call("getitem", g, index=tuple(index))


_shape_op(
    "sort",
    _sort_forward,
    sort_x,
    "Sorting moves entries: each entry gets the gradient of the place it moved to.",
)


def _astype_forward(x: Array, dtype: Any) -> Array:
    wanted = np.dtype(dtype)
    if wanted not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ShapeError(f"astype: a Tensor holds float64 or float32, not {wanted}")
    return x.astype(wanted)


def astype_x(g, out, x, dtype):
    return call("astype", g, dtype=x.dtype)


_shape_op(
    "astype",
    _astype_forward,
    astype_x,
    "A change of float precision; the gradient is changed back.",
    numpy=(),
)


#: name -> Op. The single source of every operation's forward, rules and formulas.
OPS: dict[str, Op] = {op.name: op for op in _ENTRIES}
#: name -> the op's numpy forward, for :func:`call` on plain arrays (one lookup, not two).
_FORWARDS: dict[str, Callable[..., Any]] = {op.name: op.forward for op in _ENTRIES}


def reference_markdown() -> str:
    """The op list of ``docs/engine.md``, written from the table (a test keeps it current).

    >>> reference_markdown().splitlines()[0]
    '| op | d out / d input | what the rule does |'
    """
    rows = ["| op | d out / d input | what the rule does |", "| --- | --- | --- |"]
    for op in _ENTRIES:
        names = ", ".join(f"`{n}`" for n in (op.name, *op.aliases))
        formulas = "; ".join(f"`{f}`" for f in op.formulas) if op.differentiable else "none"
        rows.append(f"| {names} | {formulas} | {op.doc.replace('|', '/')} |")
    return "\n".join(rows) + "\n"
