"""The engine: a Tensor that records operations and backpropagates through them.

Every Tensor made by an operation remembers the op (an entry of :data:`chainrule.ops.OPS`),
its inputs and the op's parameters. :meth:`Tensor.backward` walks that graph in reverse
topological order and applies each op's backward rule: the chain rule, one node at a
time. Gradients ACCUMULATE into the leaves' ``.grad`` (as in PyTorch) until
:meth:`Tensor.zero_grad` clears them.

>>> import chainrule as cr
>>> b3 = cr.tensor(0.0, requires_grad=True, name="b3")
>>> ssr = ((cr.tensor([0.0, 1.0, 0.0]) - (cr.tensor([-2.6, -1.6, -2.6]) + b3)) ** 2).sum()
>>> ssr.backward()
>>> print(f"{float(b3.grad):.2f}")
-15.60

References: karpathy/micrograd (forward and backward side by side, a readable topological
sort) and tinygrad's gradient.py (the rule table kept apart from the walk).
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import inspect
import itertools
import os
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from chainrule import ops
from chainrule.errors import AnomalyError, ChainruleError, GraphError, ShapeError
from chainrule.ops import OPS, Op, is_whole_number, plain_axis, whole_numbers
from chainrule.text import closest

# The table's entries, bound once: an operator then costs no dictionary lookup.
_ADD = OPS["add"]
_SUB = OPS["sub"]
_MUL = OPS["mul"]
_DIV = OPS["div"]
_POW = OPS["pow"]
_MATMUL = OPS["matmul"]
_NEG = OPS["neg"]
_ABS = OPS["abs"]
_SUM = OPS["sum"]
_SUM_ALL = _SUM.forward  # (called with its defaults: the sum of everything)
_MEAN = OPS["mean"]
_MAX = OPS["max"]
_MIN = OPS["min"]
_RESHAPE = OPS["reshape"]
_TRANSPOSE = OPS["transpose"]
_SWAPAXES = OPS["swapaxes"]
_GETITEM = OPS["getitem"]

#: Whether operations record the graph. A context variable, not a global: each thread (and
#: each asyncio task) has its own, so one web request's ``no_grad`` cannot stop another's
#: recording. A new thread starts with recording on.
_GRAD_MODE: contextvars.ContextVar[int] = contextvars.ContextVar(
    "chainrule_grad_enabled", default=True
)
_grad_enabled = _GRAD_MODE.get  # bound once: ``apply`` reads it for every operation


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run operations without recording a graph (for updates and evaluation).

    It holds for the current thread (or asyncio task) only; other threads keep recording.

    >>> with no_grad():
    ...     y = tensor(2.0, requires_grad=True) * 3
    >>> y.requires_grad
    False
    """
    token = _GRAD_MODE.set(False)
    try:
        yield
    finally:
        _GRAD_MODE.reset(token)


def is_grad_enabled() -> bool:
    """Whether operations record the graph now in this thread (False inside :func:`no_grad`)."""
    return bool(_grad_enabled())


# ---------------------------------------------------------------------------------------
# In-place changes and anomaly mode
# ---------------------------------------------------------------------------------------

#: The version clock: every in-place change of a tensor's data moves it on and gives the
#: tensor the new value as its ``_version``. A recorded node keeps the clock's value at the
#: moment it was made, so "an input changed after this node read it" is one comparison.
_CLOCK = 0

#: The order in which tensors are made (``Tensor._seq``). An op's inputs exist before its
#: result, so a larger number is never an input of a smaller one: the backward sweep takes
#: the nodes from the largest number down, a topological order without a separate sort.
_next_seq = itertools.count().__next__
_new = object.__new__
_heappop, _heappush = heapq.heappop, heapq.heappush


def inplace(t: Tensor) -> np.ndarray:
    """The array of ``t``, ready to be changed in place (as an optimizer step does).

    An operation that needs a gradient saves its inputs for the backward pass and makes
    their arrays read-only, so that changing them by accident cannot silently change a
    gradient. ``inplace`` is the deliberate way: it makes the array writable again and
    moves ``t``'s version on, so a backward pass through a graph recorded BEFORE the change
    refuses to run (its numbers would mix old and new values) and names the op.

    >>> x = tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> inplace(x)[...] = 10.0
    >>> y.backward()
    Traceback (most recent call last):
    ...
    chainrule.errors.GraphError: backward: an input of 'mul' (shape (2,)) was changed in \
place after the forward pass recorded it; run the forward pass again after changing it
    """
    mark_changed(t)
    data = t.data
    if not data.flags.writeable:
        try:
            data.setflags(write=True)
        except ValueError:  # a view of read-only memory: give t an array of its own
            data = t.data = data.copy()
    t._guarded = None
    return data


def writable_view(t: Tensor) -> np.ndarray:
    """A writable array on ``t``'s memory, while ``t``'s own array stays read-only.

    For code that changes the same tensor at every step (an optimizer): it keeps the view
    and writes through it, calling :func:`mark_changed` at each change, instead of making
    ``t``'s array writable and read-only again around every step (:func:`inplace`). The
    view serves as long as ``t.data`` is the same array object; a graph recorded before
    this call is stale, as after :func:`inplace`.

    >>> x = tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> view = writable_view(x)
    >>> view -= 1.0
    >>> _ = mark_changed(x)
    >>> x.data, x.data.flags.writeable
    (array([0., 1.]), False)
    """
    data = inplace(t)
    view = data.view()
    _guard(t)  # read-only again (``t._guarded`` was cleared: no version moves on)
    return view


def mark_changed(*tensors: Tensor) -> int:
    """Record that the values of ``tensors`` changed in place, through a
    :func:`writable_view` (one tick of the version clock for all of them); return the
    version they now have, for :func:`unchanged_since`.

    A graph recorded before now refuses to run backward through any of them.

    >>> x = tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> _ = mark_changed(x)
    >>> y.backward()
    Traceback (most recent call last):
    ...
    chainrule.errors.GraphError: backward: an input of 'mul' (shape (2,)) was changed in \
place after the forward pass recorded it; run the forward pass again after changing it
    """
    global _CLOCK
    _CLOCK += 1
    for t in tensors:
        t._version = _CLOCK
    return _CLOCK


def unchanged_since(tensors: Sequence[Tensor], arrays: Sequence[np.ndarray], version: int) -> bool:
    """Whether each of ``tensors`` still holds its array of ``arrays``, unchanged since
    :func:`mark_changed` gave them ``version``: no array put in its place, no change made
    through :func:`inplace` or marked since. (For code that keeps copies of the values.)

    >>> x = tensor(1.0, requires_grad=True)
    >>> version = mark_changed(x)
    >>> unchanged_since([x], [x.data], version)
    True
    >>> inplace(x)[...] = 2.0
    >>> unchanged_since([x], [x.data], version)
    False
    """
    if len(tensors) != len(arrays):
        return False
    for t, array in zip(tensors, arrays, strict=True):
        if t.data is not array or t._version != version:
            return False
    return True


#: The grad mode's value while recording in anomaly mode (true, and not ``True``).
_CHECKING = 2

#: Whether anomaly mode is on (per thread, like the grad mode).
_ANOMALY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "chainrule_detect_anomaly", default=False
)
_anomaly_enabled = _ANOMALY.get
#: What the code that is running says about where an op comes from (e.g. a formula's line).
_ANOMALY_CONTEXT: contextvars.ContextVar[str] = contextvars.ContextVar(
    "chainrule_anomaly_context", default=""
)
#: Where each node recorded in anomaly mode was made, by ``id`` (a Tensor's ``==`` is
#: elementwise, so it cannot be a dictionary key of a WeakKeyDictionary); an entry goes
#: when its node does.
_ORIGINS: dict[int, tuple[str, weakref.ref[Tensor]]] = {}


def _remember_origin(node: Tensor, origin: str) -> None:
    key = id(node)
    _ORIGINS[key] = (origin, weakref.ref(node, lambda _: _ORIGINS.pop(key, None)))


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose forward or backward pass makes a NaN or an infinity.

    The error (:class:`~chainrule.errors.AnomalyError`) names the op, the formula line it
    comes from (for formula models) and the line of Python code that made it, as
    PyTorch's anomaly mode and JAX's ``debug_nans`` do. It checks every operation that
    records a graph, which costs time: use it to find a problem, not to train.

    >>> x = tensor([1.0, -1.0], requires_grad=True)
    >>> with detect_anomaly():
    ...     y = sqrt(x)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chainrule.errors.AnomalyError: anomaly: the forward pass of 'sqrt' made nan ...
    """
    token = _ANOMALY.set(True)
    # The grad mode carries the flag too, so ``apply`` reads one context variable.
    mode = _GRAD_MODE.set(_CHECKING if _grad_enabled() else False)
    try:
        yield
    finally:
        _GRAD_MODE.reset(mode)
        _ANOMALY.reset(token)


def is_anomaly_enabled() -> bool:
    """Whether :func:`detect_anomaly` is on in this thread.

    >>> with detect_anomaly():
    ...     is_anomaly_enabled()
    True
    """
    return _anomaly_enabled()


@contextlib.contextmanager
def anomaly_context(where: str) -> Iterator[None]:
    """Say where the ops made inside come from (e.g. ``"formula line 3: y1 = ..."``), for
    :func:`detect_anomaly`'s messages. Costs nothing outside anomaly mode.

    >>> with detect_anomaly(), anomaly_context("formula line 2: y = log(x)"):
    ...     y = log(tensor([-1.0], requires_grad=True))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chainrule.errors.AnomalyError: anomaly: ... (formula line 2: y = log(x); made at ...
    """
    if not _anomaly_enabled():
        yield
        return
    token = _ANOMALY_CONTEXT.set(where)
    try:
        yield
    finally:
        _ANOMALY_CONTEXT.reset(token)


#: chainrule's own folder: frames in it are not where the user made an op.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + "chainrule"


def _origin() -> str:
    """Where the op being applied comes from: the anomaly context and the user's line."""
    frames = [f for f in traceback.extract_stack() if not f.filename.startswith(_PACKAGE)]
    place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "inside chainrule"
    context = _ANOMALY_CONTEXT.get()
    return f"{context}; made at {place}" if context else f"made at {place}"


def _bad_values(array: Any) -> str:
    """``"nan"`` or ``"inf"`` for an array holding one, else ``""``."""
    data = array.data if isinstance(array, Tensor) else np.asarray(array)
    if data.dtype.kind != "f" or np.isfinite(data).all():
        return ""
    return "nan" if np.isnan(data).any() else "inf"


def _forward_anomaly(op: Op, inputs: tuple[Tensor, ...], data: np.ndarray) -> str:
    """Check an op's result in anomaly mode; return where the node comes from."""
    origin = _origin()
    bad = _bad_values(data)
    if bad and not any(_bad_values(t.data) for t in inputs):
        raise AnomalyError(
            f"anomaly: the forward pass of {op.name!r} made {bad} from finite inputs "
            f"(shapes {', '.join(str(t.shape) for t in inputs)}) ({origin})"
        )
    return origin


def _as_array(data: Any, dtype: Any = None, where: str = "Tensor") -> np.ndarray:
    """``data`` as a float64 (or float32) array; ``where`` names the caller in errors.

    Only real numbers are accepted: None, complex numbers, strings and other objects, and
    ragged nested lists raise a ChainruleError (numpy would give NaN, drop the imaginary
    part or fail with an error of its own).
    """
    if isinstance(data, Tensor):
        data = data.data
    try:
        array = np.asarray(data)
    except ValueError as exc:
        if "inhomogeneous" in str(exc):
            raise ChainruleError(
                f"{where}: expected a rectangular array, got ragged {type(data).__name__} "
                f"data (rows of different lengths): {_preview(data)}"
            ) from None
        raise ChainruleError(
            f"{where}: cannot make an array of {type(data).__name__} data ({exc})"
        ) from None
    if array.dtype.kind not in "biuf":  # bool, int, unsigned, float
        raise ChainruleError(
            f"{where}: expected real numbers (float, int or bool), got "
            f"{_unsupported(array)}: {_preview(data)}"
        )
    if dtype is None:
        if array.dtype != np.float32:
            array = array.astype(np.float64, copy=False)
        return array
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ChainruleError(f"{where}: dtype must be float64 or float32, not {dtype}")
    return array.astype(dtype, copy=False)


def _unsupported(array: np.ndarray) -> str:
    """The type of the entries that stop ``array`` from being real numbers, in words."""
    kind = array.dtype.kind
    if kind == "O":  # the first entry that is not a real number names the type
        for v in array.flat:
            if not isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
                return "None" if v is None else type(v).__name__
        return "object"
    return {"c": "complex", "U": "str", "S": "bytes", "M": "datetime", "m": "timedelta"}.get(
        kind, str(array.dtype)
    )


def _preview(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


class Tensor:
    """An n-dimensional array that records how it was computed.

    ``Tensor(data, requires_grad=False, name=None, dtype=None)``: float64 by default,
    float32 when ``dtype="float32"`` (or when the data already is float32). ``name`` labels
    the node in graphs and derivations (``x1``, ``y1``, ``predicted``).

    >>> w = Tensor([[1.0, 2.0]], requires_grad=True, name="w")
    >>> (w @ Tensor([[3.0], [4.0]])).sum().backward()
    >>> w.grad
    array([[3., 4.]])
    """

    __slots__ = (
        "data",
        "grad",
        "requires_grad",
        "name",
        "op",
        "inputs",
        "attrs",
        "_retain",
        "_freed",
        "_version",
        "_guarded",
        "_seq",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy defers to our reflected operators
    # ``==`` and ``!=`` are elementwise, as in numpy (see below), but a Tensor still HASHES
    # by identity: the backward walk keeps Tensors in sets and dicts, which test identity
    # before equality. Lists are another matter: ``t in [a, b]`` and ``.index(t)`` call
    # ``==``, so code that looks Tensors up in a list compares ``is`` (or ``id``) instead.

    data: np.ndarray
    grad: Any
    requires_grad: bool
    name: str | None
    op: Op | None
    inputs: tuple[Tensor, ...]
    attrs: dict[str, Any]

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op = None
        self.inputs = ()
        self.attrs = {}
        self._retain = False
        self._freed = False
        self._version = 0  # moved on by each in-place change (see :func:`inplace`)
        self._guarded: np.ndarray | None = None  # the array made read-only for a graph
        self._seq = _next_seq()  # the order of making: inputs are always made first

    @staticmethod
    def record_op(op: Op, *args: Any, **attrs: Any) -> Tensor:
        """Apply ``op`` and record it: the :class:`chainrule.ops.Recorder` protocol.

        The op table's backward rules call ops through :func:`chainrule.ops.call`, which
        hands them here when an argument is a Tensor (``create_graph=True``).
        """
        return apply(op, *args, **attrs)

    @classmethod
    def _node(
        cls,
        data: np.ndarray,
        op: Op | None,
        inputs: tuple[Tensor, ...],
        attrs: dict[str, Any],
        requires_grad: bool,
    ) -> Tensor:
        """Make a Tensor without converting ``data`` (the fast path for op results)."""
        t = _new(cls)
        t.data = data
        t.grad = t.name = t._guarded = None
        t.requires_grad = requires_grad
        t.op = op
        t.inputs = inputs
        t.attrs = attrs
        t._retain = t._freed = False
        t._version = 0
        t._seq = _next_seq()
        return t

    def __setstate__(self, state: Any) -> None:
        """Copies (``copy``, ``deepcopy``) are new tensors: they take a place of their own
        in the order of making, after the copies of their inputs."""
        extra, slots = state if isinstance(state, tuple) else (state, None)
        if extra:
            self.__dict__.update(extra)
        for key, value in (slots or {}).items():
            setattr(self, key, value)
        self._seq = _next_seq()

    # -- array facts -------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an operation."""
        return self.op is None

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        data = self.data
        if data.size != 1:
            raise ShapeError(f"item: needs a tensor of one element, got shape {self.shape}")
        return float(data.item())  # (numpy's item: no 0-d view made first)

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared, not copied)."""
        return self.data

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._node(self.data, None, (), {}, False)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(tensor)`` gives the data (outside the graph)."""
        if dtype is None and not copy:
            return self.data
        return np.array(self.data, dtype=dtype, copy=True)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """numpy's ufuncs on Tensors: ``np.sin(t)`` records the table's ``sin``.

        Comparisons and tests (``np.less``, ``np.isnan``) answer on the data, as the
        operators do; a ufunc without a table op, a method such as ``np.add.reduce`` or an
        ``out=`` argument is refused with the nearest chainrule function.
        """
        name = ufunc.__name__
        if method == "__call__" and not kwargs:
            if name in _VALUE_UFUNCS:
                return ufunc(*[ops.value(i) for i in inputs])
            if name in NUMPY_NAMES:
                return FUNCTIONS[NUMPY_NAMES[name]](*inputs)
        called = name if method == "__call__" else f"{name}.{method}"
        extra = f" with {', '.join(kwargs)}" if kwargs and name in NUMPY_NAMES else ""
        raise ChainruleError(_no_numpy_op(f"numpy.{called}{extra}", name))

    def __array_function__(
        self, func: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """numpy's functions on Tensors: ``np.sum(t)`` records the table's ``sum``.

        Questions about the data (``np.shape``, ``np.allclose``) answer on the data; a
        function without a table op is refused with the nearest chainrule function.
        """
        module = getattr(func, "__module__", "") or ""
        name = func.__name__
        full = f"linalg.{name}" if module.endswith("linalg") else name
        if full in _VALUE_FUNCTIONS:
            return func(*_values(args), **_values(kwargs))
        chainrule_name = NUMPY_NAMES.get(full) or (full if full in COMPOSITES else None)
        if chainrule_name is None:
            raise ChainruleError(_no_numpy_op(f"numpy.{full}", name))
        function = FUNCTIONS.get(chainrule_name) or COMPOSITES[chainrule_name]
        try:
            return function(*args, **kwargs)
        except TypeError as exc:
            raise ChainruleError(
                f"numpy.{full} on a Tensor runs chainrule's {chainrule_name}, which cannot take "
                f"these arguments ({exc})"
            ) from None

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The entries along the first axis, each a Tensor in the graph (as numpy iterates)."""
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        """The truth of a one-element tensor; larger ones are ambiguous, as in numpy."""
        return bool(self.data)

    def __float__(self) -> float:
        return self.item()

    def __repr__(self) -> str:
        parts = [np.array2string(self.data, precision=6, separator=", ")]
        if self.name:
            parts.append(f"name={self.name!r}")
        if self.op is not None:
            parts.append(f"op={self.op.name!r}")
        elif self.requires_grad:
            parts.append("requires_grad=True")
        return f"Tensor({', '.join(parts)})"

    # -- gradients ---------------------------------------------------------------------

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    def retain_grad(self) -> Tensor:
        """Keep this intermediate tensor's gradient in ``.grad`` during backward."""
        self._retain = True
        return self

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool = False,
        create_graph: bool = False,
    ) -> None:
        """Backpropagate from this tensor, accumulating gradients into the leaves.

        ``gradient`` is d(something)/d(self); it may be omitted for a one-element tensor
        (it is 1 then). Leaves that require grad get ``.grad += gradient`` (they
        accumulate until :meth:`zero_grad`); intermediate tensors only when
        :meth:`retain_grad` was called. The graph is freed afterwards unless
        ``retain_graph``; with ``create_graph`` the gradients are Tensors in a new graph,
        so they can be differentiated again.
        """
        _backpropagate(self, gradient, None, retain_graph or create_graph, create_graph)

    # -- operators ---------------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        return _binary(_ADD, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _binary(_ADD, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _binary(_SUB, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(_SUB, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _binary(_MUL, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(_MUL, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _binary(_DIV, self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _binary(_DIV, other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _binary(_POW, self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _binary(_POW, other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _binary(_MATMUL, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _binary(_MATMUL, other, self)

    def __neg__(self) -> Tensor:
        return apply(_NEG, self)

    def __abs__(self) -> Tensor:
        return apply(_ABS, self)

    def __getitem__(self, index: Any) -> Tensor:
        return apply(_GETITEM, self, index=_plain_index(index))

    # Comparisons give plain boolean arrays, elementwise and broadcasting like numpy's (so
    # ``where(x == 1.0, x, 0.0)`` works); they are not differentiable.
    def __eq__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.data == ops.value(other)

    def __ne__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.data != ops.value(other)

    __hash__ = object.__hash__  # identity, so Tensors stay usable as dict and set keys

    def __lt__(self, other: Any) -> np.ndarray:
        return self.data < ops.value(other)

    def __le__(self, other: Any) -> np.ndarray:
        return self.data <= ops.value(other)

    def __gt__(self, other: Any) -> np.ndarray:
        return self.data > ops.value(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return self.data >= ops.value(other)

    # -- methods, each a one-liner over the op table -----------------------------------
    # The methods of the other ops marked ``method`` in the table are generated below the
    # class (``FUNCTIONS``); these are written out for their signatures or their speed.

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        if axis is None and not keepdims:  # a loss sums everything: apply's one case, as is
            return _result(_SUM, (self,), {"axis": None, "keepdims": False}, _SUM_ALL(self.data))
        if axis is not None:
            axis = plain_axis(axis)
        return apply(_SUM, self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        if axis is not None:
            axis = plain_axis(axis)
        return apply(_MEAN, self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply(_MAX, self, axis=plain_axis(axis), keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply(_MIN, self, axis=plain_axis(axis), keepdims=keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        """``reshape(2, 3)`` or ``reshape((2, 3))``, numpy's rules (-1 allowed)."""
        return apply(_RESHAPE, self, shape=whole_numbers("reshape", "the shape", shape))

    def transpose(self, *axes: Any) -> Tensor:
        """``transpose()`` reverses the axes; ``transpose(1, 0, 2)`` or ``((1, 0, 2))``."""
        if len(axes) == 1 and axes[0] is None:
            axes = ()
        return apply(_TRANSPOSE, self, axes=whole_numbers("transpose", "the axes", axes) or None)

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Interchange two axes, as numpy's ``swapaxes`` (``(-2, -1)``: a batched transpose).

        >>> Tensor(np.zeros((2, 3, 4))).swapaxes(0, 2).shape
        (4, 3, 2)
        """
        return apply(_SWAPAXES, self, axis1=axis1, axis2=axis2)


def _plain_index(index: Any) -> Any:
    """Indices may hold Tensors (e.g. labels): use their whole-number data as integers."""
    if isinstance(index, Tensor):
        return _positions(index.data)
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _positions(data: np.ndarray) -> np.ndarray:
    """A Tensor's data as integer positions for indexing, refusing what is not one.

    A Tensor holds floats, so both a fraction (``0.9`` is not a position) and a tensor of
    only 0s and 1s (positions 0 and 1, or a mask?) are refused instead of guessed at:
    masks are boolean arrays, such as the result of ``x > 0``.
    """
    whole = np.isfinite(data) & (data == np.floor(data))
    if not whole.all():
        bad = data[~whole].flat[0]
        raise ShapeError(
            f"getitem: a Tensor used as an index must hold whole numbers (positions), "
            f"found {bad:g}; for a mask use a boolean array, e.g. x > 0"
        )
    if data.ndim and data.size and ((data == 0) | (data == 1)).all():
        raise ShapeError(
            "getitem: a Tensor of only 0s and 1s as an index is ambiguous (positions 0 and 1, "
            "or a mask?); pass a boolean array for a mask (e.g. t.numpy() > 0.5) or "
            "integers for positions (e.g. t.numpy().astype(int))"
        )
    return data.astype(np.intp)


_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_F64, _F32 = _FLOAT_DTYPES  # numpy's own dtype objects: ``is`` settles the usual case
_ndarray = np.ndarray


#: Constant leaves for the Python numbers written in expressions (``w1 * dosage + 1.5``),
#: made once and shared: a training loop writes the same numbers at every step. Their data
#: is read-only, so sharing is safe. Bounded, so odd programs cannot grow it for ever.
_NUMBER_CONSTANTS: dict[tuple[float, np.dtype], Tensor] = {}
_NUMBER_CONSTANTS_MAX = 4096


def _constant(value: Any, like: np.dtype, where: str) -> Tensor:
    """Wrap a non-Tensor operand; Python numbers take the other operand's float dtype."""
    if (type(value) is float or type(value) is int) and value:  # (0.0 == -0.0: not cached)
        key = (value, like)
        constant = _NUMBER_CONSTANTS.get(key)
        if constant is None:
            data = np.asarray(value, dtype=like)
            data.flags.writeable = False
            constant = Tensor._node(data, None, (), {}, False)
            if len(_NUMBER_CONSTANTS) < _NUMBER_CONSTANTS_MAX:
                _NUMBER_CONSTANTS[key] = constant
        return constant
    if isinstance(value, np.ndarray) and value.dtype in _FLOAT_DTYPES:
        data = value
    elif isinstance(value, (int, float)):
        data = np.asarray(value, dtype=like)
    else:
        data = _as_array(value, where=where)
    return Tensor._node(data, None, (), {}, False)


def _with_constants(args: tuple[Any, ...], where: str) -> tuple[Tensor, ...]:
    """The operands as Tensors: numbers and arrays become constant leaves."""
    if len(args) == 2:  # the usual case, a number beside a Tensor (``w1 * dosage + 1.5``)
        a, b = args
        if isinstance(a, Tensor):
            return a, _constant(b, a.data.dtype, where)
        if isinstance(b, Tensor):
            return _constant(a, b.data.dtype, where), b
    like = _FLOAT_DTYPES[0]  # the dtype that Python numbers take: the first Tensor's
    for a in args:
        if isinstance(a, Tensor):
            like = a.data.dtype
            break
    return tuple([a if isinstance(a, Tensor) else _constant(a, like, where) for a in args])


def apply(op: Op, *args: Any, **attrs: Any) -> Tensor:
    """Run ``op`` forward on ``args`` and, when needed, record the node for backward."""
    # This runs for every operation: plain loops and branches rather than generator
    # expressions, the one- and two-input calls written out, each check done once.
    inputs = args
    for a in args:
        if not isinstance(a, Tensor):
            inputs = _with_constants(args, op.name)
            break
    n = len(inputs)
    if n == 2:
        data = op.forward(inputs[0].data, inputs[1].data, **attrs)
    elif n == 1:
        data = op.forward(inputs[0].data, **attrs)
    else:
        data = op.forward(*[t.data for t in inputs], **attrs)
    return _result(op, inputs, attrs, data)


def _unary(op: Op, x: Any) -> Tensor:
    """:func:`apply` for an op of one input and no parameters (``softplus(x)``), with a
    plain call of the forward (``f(x, **{})`` takes CPython's slower path for a call)."""
    if not isinstance(x, Tensor):
        return apply(op, x)
    return _result(op, (x,), {}, op.forward(x.data))


def _binary(op: Op, a: Any, b: Any) -> Tensor:
    """:func:`apply` for the operators (``a + b``, ``a @ b``): two operands, no parameters."""
    if not isinstance(a, Tensor):
        a = _constant(a, b.data.dtype, op.name)
    elif not isinstance(b, Tensor):
        b = _constant(b, a.data.dtype, op.name)
    direct = op.direct  # numpy's own function, without the frame that words its errors
    if direct is None:
        return _result(op, (a, b), {}, op.forward(a.data, b.data))
    try:
        data = direct(a.data, b.data)
    except ValueError:  # (e.g. shapes that do not broadcast)
        data = op.forward(a.data, b.data)  # raises the op's own error, naming the shapes
    return _result(op, (a, b), {}, data)


def _result(op: Op, inputs: tuple[Tensor, ...], attrs: dict[str, Any], data: Any) -> Tensor:
    """The Tensor of an op's result ``data``: a node of the graph when an input requires a
    gradient (and recording is on), else a new leaf."""
    if type(data) is not _ndarray:  # numpy returns scalars for 0-d results
        data = np.asarray(data)
    dtype = data.dtype
    if dtype is not _F64 and dtype is not _F32 and dtype not in _FLOAT_DTYPES:
        data = data.astype(inputs[0].data.dtype)  # e.g. integers: the first operand's dtype
    mode = _grad_enabled()
    if mode:
        record = False
        if op.reads_inputs:
            for s in inputs:
                if s.requires_grad:
                    record = True
                    if s._guarded is not s.data:  # saved for backward: read-only from now on
                        if s._guarded is None:  # (the usual case of _guard, inlined)
                            s.data.setflags(write=False)
                            s._guarded = s.data
                        else:
                            _guard(s)
        else:  # the rules read shapes only: nothing to keep as it is (add, sum, ...)
            for s in inputs:
                if s.requires_grad:
                    record = True
                    break
        if record:
            node = _new(Tensor)  # (Tensor._node, inlined)
            node.data = data
            node.grad = node.name = node._guarded = None
            node.requires_grad = True
            node.op = op
            node.inputs = inputs
            node.attrs = attrs
            node._retain = node._freed = False
            node._version = _CLOCK
            node._seq = _next_seq()
            if mode == _CHECKING:  # anomaly mode
                _remember_origin(node, _forward_anomaly(op, inputs, data))
            if _TRACER is not None:
                _TRACER(op, inputs, attrs, node)
            return node
    node = _new(Tensor)  # a result outside the graph: a new leaf (Tensor._node, inlined)
    node.data = data
    node.grad = node.name = node._guarded = node.op = None
    node.requires_grad = node._retain = node._freed = False
    node.inputs = ()
    node.attrs = {}
    node._version = 0
    node._seq = _next_seq()
    if _TRACER is not None:
        _TRACER(op, inputs, attrs, node)
    return node


#: While :mod:`chainrule.compile` traces a function: called as ``tracer(op, inputs, attrs,
#: result)`` for EVERY op applied, recorded or not (an op on data alone is part of the
#: program too). None otherwise; one module global, so the check costs one load per op.
_TRACER: Callable[[Op, tuple[Tensor, ...], dict[str, Any], Tensor], None] | None = None


def _guard(t: Tensor) -> None:
    """Make ``t``'s array read-only: a graph saved it. An array put in place of one that
    an earlier graph saved counts as an in-place change (that graph is out of date)."""
    global _CLOCK
    if t._guarded is not None:  # ``t.data = ...`` replaced the array a graph saved
        _CLOCK += 1
        t._version = _CLOCK
    t.data.setflags(write=False)
    t._guarded = t.data


# ---------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------


def topological_order(root: Tensor) -> list[Tensor]:
    """Nodes that lead to ``root`` and need a gradient, inputs before outputs.

    Iterative depth-first search: a chain of 100,000 ops must not hit the recursion limit.
    """
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:  # every input is already in ``order``
            order.append(node)
            continue
        if node in visited:  # reached earlier along another path
            continue
        visited.add(node)
        if node._freed:
            raise GraphError(
                "backward: this graph was freed by an earlier backward(); "
                "pass retain_graph=True to the first backward to go through it twice"
            )
        stack.append((node, True))
        for parent in node.inputs:
            if not parent.requires_grad or parent in visited:
                continue
            if parent.op is None:  # a leaf has no inputs: its place in the order is now
                visited.add(parent)
                order.append(parent)
            else:
                stack.append((parent, False))
    return order


_UNIT_SEEDS: dict[np.dtype, np.ndarray] = {}


def _seed(root: Tensor, gradient: Any, create_graph: bool) -> Any:
    if gradient is None:
        if root.data.size != 1:
            raise GraphError(
                f"backward: the tensor has shape {root.shape}; backward() without a gradient "
                "needs a single value (call .sum() first, or pass gradient=...)"
            )
        # d root / d root = 1: one read-only array per dtype, made once (the rules never
        # write into a gradient, and every .grad is a copy of its own)
        seed = _UNIT_SEEDS.get(root.data.dtype)
        if seed is None:
            seed = np.array(1.0, dtype=root.data.dtype)
            seed.setflags(write=False)
            _UNIT_SEEDS[root.data.dtype] = seed
        if root.data.ndim:
            seed = seed.reshape(root.data.shape)
    else:
        seed = gradient.data if isinstance(gradient, Tensor) and not create_graph else gradient
        if not isinstance(seed, Tensor):
            # Real numbers only: numpy would drop an imaginary part, make None a NaN and
            # fail on text with an error of its own.
            seed = _as_array(seed, where="backward: gradient").astype(root.dtype, copy=False)
        if seed.shape != root.shape:
            raise ShapeError(
                f"backward: gradient of shape {tuple(seed.shape)} for a tensor of shape "
                f"{root.shape}"
            )
    if create_graph and not isinstance(seed, Tensor):
        seed = Tensor._node(seed, None, (), {}, False)
    return seed


def _accumulate(node: Tensor, g: Any) -> None:
    """``node.grad += g``, as a new array: the stored gradient is the node's own, in its
    dtype, never a view shared with another tensor's ``.grad`` or with the caller."""
    if isinstance(g, Tensor) or isinstance(node.grad, Tensor):  # create_graph: keep the graph
        node.grad = g if node.grad is None else node.grad + g
    elif node.grad is None:
        node.grad = np.array(g, dtype=node.data.dtype)  # a copy
    else:
        total = node.grad + g
        node.grad = total if total.dtype == node.data.dtype else total.astype(node.data.dtype)


def _backpropagate(
    root: Tensor,
    gradient: Any,
    targets: Sequence[Tensor] | None,
    retain_graph: bool,
    create_graph: bool,
) -> list[Any] | None:
    """Reverse-mode sweep from ``root``.

    With ``targets`` None, gradients accumulate into the leaves' ``.grad``; otherwise the
    gradients of ``targets`` are returned and no ``.grad`` is touched.

    The nodes are taken from the most recently made down (``_seq``, a heap of the nodes
    reached so far): every node that uses a tensor was made after it, so a node's
    gradient is complete when its turn comes. That is a topological order found during
    the sweep itself, without a separate walk of the graph. Leaves have no rule to run:
    their gradients wait in ``grads`` until the end. The ``.grad`` of the leaves (and of
    retained nodes) is written only once the whole sweep went through, so a sweep that
    stops on an error changes no gradient.
    """
    if not root.requires_grad:
        raise GraphError(
            "backward: this tensor does not depend on anything that requires a gradient "
            "(create the inputs with requires_grad=True)"
        )
    data = root.data
    if gradient is None and not data.ndim and not create_graph and data.dtype in _UNIT_SEEDS:
        seed = _UNIT_SEEDS[data.dtype]  # the usual case of _seed: a loss, d loss / d loss = 1
    else:
        seed = _seed(root, gradient, create_graph)
    if root.op is None:  # a leaf's gradient with respect to itself
        if targets is not None:
            return [seed if t is root else None for t in targets]
        _accumulate(root, seed)
        return None
    grads: dict[Tensor, Any] = {root: seed}
    heap: list[tuple[int, Tensor]] = [(-root._seq, root)]
    wanted = None if targets is None else set(targets)
    collecting = wanted is not None
    found: dict[Tensor, Any] = {}
    finished: list[tuple[Tensor, Any]] = []  # (node, gradient) to store at the end
    anomaly = _anomaly_enabled()
    # The rules record a graph only to differentiate again; without create_graph they see
    # ndarrays alone, which never record, so the grad mode is left as it is.
    token = _GRAD_MODE.set(True) if create_graph else None
    try:
        while heap:
            node = _heappop(heap)[1]
            # Complete: every node that uses ``node`` was made later and came earlier here.
            g = grads.pop(node)
            if node._retain or collecting:
                if wanted is None:
                    finished.append((node, g))
                elif node in wanted:
                    found[node] = g
            parents = node.inputs
            if not parents and node._freed:  # (a node that an op made has inputs until freed)
                raise GraphError(
                    "backward: this graph was freed by an earlier backward(); "
                    "pass retain_graph=True to the first backward to go through it twice"
                )
            op, attrs = node.op, node.attrs
            rules = op.rules
            saved = op.reads_inputs  # else no input's values matter: none to check
            # How the rules are called: with the inputs one by one in the usual cases, as a
            # plain call (``f(*args)`` takes CPython's slower path, 70 ns a call).
            n = 0 if op.arity is None else len(parents)
            if create_graph:  # the rules record a graph of their own: give them Tensors
                args, out, n = parents, node, 0
            elif n == 2:
                x, y, out = parents[0].data, parents[1].data, node.data
            elif n == 1:
                x, out = parents[0].data, node.data
            else:
                args, out = [t.data for t in parents], node.data
            for i, parent in enumerate(parents):
                if not parent.requires_grad:
                    continue
                if saved and (
                    parent._version > node._version or parent._guarded is not parent.data
                ):
                    raise _changed_in_place(node, parent)
                if n == 2:
                    g_parent = rules[i](g, out, x, y, **attrs) if attrs else rules[i](g, out, x, y)
                elif n == 1:
                    g_parent = rules[0](g, out, x, **attrs) if attrs else rules[0](g, out, x)
                elif op.arity is None:  # concatenate, stack: one rule, told which input
                    g_parent = rules[0](g, out, *args, i=i, **attrs)
                else:
                    g_parent = rules[i](g, out, *args, **attrs)
                if anomaly:
                    _backward_anomaly(node, i, g, g_parent)
                if parent in grads:
                    grads[parent] = grads[parent] + g_parent
                else:
                    grads[parent] = g_parent
                    if parent.op is not None:  # leaves wait in ``grads`` until the end
                        if parent._seq >= node._seq:  # (an invariant: inputs come first)
                            raise GraphError(
                                f"backward: an input of {op.name!r} was made after it; "
                                "the graph's order is broken"
                            )
                        _heappush(heap, (-parent._seq, parent))
            if not retain_graph:  # free the graph as we go: its arrays can be released
                node.inputs = ()
                node._freed = True
    finally:
        if token is not None:
            _GRAD_MODE.reset(token)
    # What is left in ``grads`` are the leaves reached, each with its complete gradient.
    if targets is not None:
        for leaf, g in grads.items():
            if leaf in wanted:  # type: ignore[operator]
                found[leaf] = g
        return [found.get(t) for t in targets]
    for node, g in finished:  # retained intermediate nodes
        _accumulate(node, g)
    for leaf, g in grads.items():
        if leaf.grad is None and type(g) is _ndarray:  # the usual case: a copy of its own
            dtype = leaf.data.dtype
            leaf.grad = g.copy() if g.dtype is dtype else g.astype(dtype)  # (copy: 2x faster)
        else:
            _accumulate(leaf, g)
    return None


def _changed_in_place(node: Tensor, parent: Tensor) -> GraphError:
    """The error for a saved input changed after the forward pass recorded ``node``."""
    op = node.op
    assert op is not None
    what = f" {parent.name!r}" if parent.name else ""
    made = f" (the node {node.name!r})" if node.name else ""
    return GraphError(
        f"backward: an input{what} of {op.name!r}{made} (shape {parent.shape}) was changed "
        "in place after the forward pass recorded it; run the forward pass again after "
        "changing it"
    )


def _backward_anomaly(node: Tensor, i: int, g: Any, g_parent: Any) -> None:
    """In anomaly mode: refuse a NaN or infinity that an op's backward rule made."""
    bad = _bad_values(g_parent)
    if bad and not _bad_values(g):
        op = node.op
        assert op is not None
        origin, _ = _ORIGINS.get(id(node), ("made before anomaly mode was on", None))
        raise AnomalyError(
            f"anomaly: the backward pass of {op.name!r} made {bad} in the gradient of its "
            f"input {i + 1} from a finite incoming gradient ({origin})"
        )


def gradients(
    output: Tensor,
    inputs: Sequence[Tensor],
    gradient: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> list[Any]:
    """d output / d each of ``inputs``, without touching any ``.grad``.

    Inputs that ``output`` does not depend on get zeros. With ``create_graph`` the
    results are Tensors that can be differentiated again.

    >>> x = tensor(3.0, requires_grad=True)
    >>> gradients(x * x, [x])
    [array(6.)]
    """
    found = _backpropagate(output, gradient, inputs, retain_graph or create_graph, create_graph)
    assert found is not None
    result = []
    for t, g in zip(inputs, found, strict=True):
        if g is None:
            g = np.zeros_like(t.data)
            if create_graph:
                g = Tensor._node(g, None, (), {}, False)
        elif not isinstance(g, Tensor):  # the caller's own array, as for ``.grad``
            g = np.array(g, dtype=t.data.dtype)
        result.append(g)
    return result


# ---------------------------------------------------------------------------------------
# Public functions (``chainrule.<name>``)
# ---------------------------------------------------------------------------------------


def tensor(data: Any, requires_grad: bool = False, name: str | None = None, dtype: Any = None):
    """Make a Tensor (see :class:`Tensor`) holding a COPY of ``data``, as ``torch.tensor``
    does: changing the caller's array afterwards does not change the tensor.

    ``Tensor(array)`` is the zero-copy path (like ``torch.as_tensor``): a float64 or
    float32 array is shared, so the caller must not change it while a graph uses it.

    >>> tensor([1, 2]).dtype
    dtype('float64')
    >>> start = np.array([1.0, 2.0])
    >>> x = tensor(start); start[0] = 5.0; x.data
    array([1., 2.])
    """
    array = _as_array(data, dtype, where="tensor")
    if array is data or (isinstance(data, Tensor) and array is data.data):
        array = array.copy()
    elif isinstance(data, np.ndarray) and np.shares_memory(array, data):
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad, name=name)


def _public_function(op: Op) -> Callable[..., Any]:
    """The function ``chainrule.<name>`` of a table entry: it applies (records) the op.

    Its signature is the entry's ``signature`` when it has one (which turns the call's
    arguments into the op's inputs and parameters), else the forward's: the inputs first,
    then the parameters, by position or by keyword. An op without gradient (argmax) runs
    its forward on the data and returns a plain array.
    """
    adapt = op.signature
    if not op.differentiable:

        def function(*args: Any, **kwargs: Any) -> Any:
            inputs, attrs = _arguments(op, args, kwargs)
            return op.forward(*[ops.value(x) for x in inputs], **attrs)

    elif adapt is not None:

        def function(*args: Any, **kwargs: Any) -> Any:
            try:
                inputs, attrs = adapt(*args, **kwargs)
            except TypeError as exc:
                raise ChainruleError(f"{op.name}: {exc}") from None
            return apply(op, *inputs, **attrs)

    elif op.arity == 1 and len(_parameters(op)) == 0:

        def function(x: Any) -> Tensor:
            return _unary(op, x)

    elif op.arity == 2 and len(_parameters(op)) == 0:

        def function(a: Any, b: Any) -> Tensor:
            if isinstance(a, Tensor) or isinstance(b, Tensor):
                return _binary(op, a, b)
            return apply(op, a, b)  # two plain values: both become constants

    else:

        def function(*args: Any, **kwargs: Any) -> Any:
            inputs, attrs = _arguments(op, args, kwargs)
            return apply(op, *inputs, **attrs)

    function.__name__ = function.__qualname__ = op.name
    function.__module__ = __name__
    function.__signature__ = inspect.signature(adapt or op.forward)  # type: ignore[attr-defined]
    function.__doc__ = (
        f"{op.doc}\n\nRecords ``chainrule.ops.OPS[{op.name!r}]``: d out/d input = "
        + ("; ".join(op.formulas))
    )
    return function


#: Each op's parameter names, read from its forward's signature once (reading a signature
#: costs more than a small op's arithmetic, and functions such as cross_entropy's
#: log_softmax are called every step).
_PARAMETER_NAMES: dict[str, tuple[str, ...]] = {}


def _parameters(op: Op) -> tuple[str, ...]:
    """The names of an op's parameters: its forward's arguments after the inputs."""
    names = _PARAMETER_NAMES.get(op.name)
    if names is None:
        every = [
            p.name
            for p in inspect.signature(op.forward).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        names = _PARAMETER_NAMES[op.name] = tuple(every[op.arity or 0 :])
    return names


def _arguments(op: Op, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Split a call's arguments into the op's inputs and its parameters (by name)."""
    n = op.arity or 0
    names = _parameters(op)
    if len(args) < n or len(args) > n + len(names):
        raise ChainruleError(
            f"{op.name}: takes {n} input(s) and the parameters {', '.join(names) or '(none)'}, "
            f"got {len(args)} positional argument(s)"
        )
    for key in kwargs:
        if key not in names:
            raise ChainruleError(
                f"{op.name}: unknown parameter {key!r}; it takes {', '.join(names) or 'none'}"
            )
    attrs = dict(zip(names, args[n:], strict=False))
    attrs.update(kwargs)
    return args[:n], attrs


#: ``chainrule.<name>`` for every op of the table that has a function (and its aliases),
#: generated from the table: adding an op adds its function. Bound as module globals too.
FUNCTIONS: dict[str, Callable[..., Any]] = {}
for _op in OPS.values():
    if _op.function:
        _function = _public_function(_op)
        for _name in (_op.name, *_op.aliases):
            FUNCTIONS[_name] = _function
globals().update(FUNCTIONS)

#: numpy's function and ufunc names -> the table op that stands for them on Tensors.
NUMPY_NAMES: dict[str, str] = {n: op.name for op in OPS.values() for n in op.numpy}

#: ufuncs that answer on the data (comparisons and tests: plain boolean arrays).
_VALUE_UFUNCS = frozenset(
    "less less_equal greater greater_equal equal not_equal isnan isinf isfinite signbit "
    "logical_and logical_or logical_not logical_xor".split()
)
#: numpy functions that only ask about the data (no Tensor comes back).
_VALUE_FUNCTIONS = frozenset(
    "shape ndim size result_type allclose isclose array_equal array_equiv iscomplexobj "
    "isrealobj count_nonzero nonzero argsort array2string array_repr array_str".split()
)


def _values(x: Any) -> Any:
    """``x`` with every Tensor (also inside lists, tuples and dicts) replaced by its data."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_values(i) for i in x)
    if isinstance(x, dict):
        return {k: _values(v) for k, v in x.items()}
    return x


def _no_numpy_op(called: str, name: str) -> str:
    known = list(NUMPY_NAMES) + list(COMPOSITES) + list(FUNCTIONS)
    close = closest(name, known, cutoff=0.5)
    hint = f"; the nearest is chainrule.{NUMPY_NAMES.get(close, close)}" if close else ""
    return (
        f"{called} is not differentiated by chainrule (no op in its table){hint}; "
        "see docs/engine.md for the list"
    )


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Split into equal parts (or at the given indices), each part a slice in the graph.

    >>> [p.shape for p in split(tensor([1.0, 2.0, 3.0, 4.0]), 2)]
    [(2,), (2,)]
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    if is_whole_number(indices_or_sections) and x.shape[axis] % int(indices_or_sections):
        raise ShapeError(
            f"split: {x.shape[axis]} entries along axis {axis} do not divide into "
            f"{indices_or_sections} equal parts (array_split allows unequal ones)"
        )
    return array_split(x, indices_or_sections, axis)


def array_split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Split into parts of (nearly) equal size, or at the given indices (numpy's rules).

    >>> [p.shape for p in array_split(tensor([1.0, 2.0, 3.0]), 2)]
    [(2,), (1,)]
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    axis = axis % (x.ndim or 1)
    pieces = np.array_split(np.arange(x.shape[axis]), indices_or_sections)
    lead = (slice(None),) * axis
    return [
        x[lead + (slice(int(p[0]), int(p[-1]) + 1),)] if p.size else x[lead + (slice(0, 0),)]
        for p in pieces
    ]


def hstack(xs: Sequence[Any]) -> Tensor:
    """Join along the second axis (the first for 1-D inputs), as numpy's hstack.

    >>> hstack([tensor([1.0]), tensor([2.0, 3.0])]).shape
    (3,)
    """
    xs = [x if isinstance(x, Tensor) else Tensor(x) for x in xs]
    return FUNCTIONS["concatenate"](xs, axis=0 if all(x.ndim <= 1 for x in xs) else 1)


def vstack(xs: Sequence[Any]) -> Tensor:
    """Join along the first axis, 1-D inputs as rows, as numpy's vstack.

    >>> vstack([tensor([1.0, 2.0]), tensor([3.0, 4.0])]).shape
    (2, 2)
    """
    rows = [x if isinstance(x, Tensor) else Tensor(x) for x in xs]
    rows = [x.reshape(1, -1) if x.ndim <= 1 else x for x in rows]
    return FUNCTIONS["concatenate"](rows, axis=0)


#: Functions made of table ops (they record those ops), also answering numpy's names.
COMPOSITES: dict[str, Callable[..., Any]] = {
    "split": split,
    "array_split": array_split,
    "hstack": hstack,
    "vstack": vstack,
}

#: Tensor methods generated from the table, for ops marked ``method`` that the class does
#: not write out itself (the ones it writes out are the operators' fast one-liners).
for _op in OPS.values():
    if _op.method:
        for _name in (_op.name, *_op.aliases):
            if _name not in Tensor.__dict__:
                setattr(Tensor, _name, FUNCTIONS[_name])
del _op, _name, _function


# ---------------------------------------------------------------------------------------
# Functional helpers
# ---------------------------------------------------------------------------------------


def grad(f: Callable[..., Tensor], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """A function that returns the gradient of the scalar ``f`` with respect to its arguments.

    ``argnums`` picks the argument (or a tuple of them). Plain inputs give ndarray
    gradients; Tensor inputs that require grad give Tensors in a graph, so ``grad``
    nests for higher derivatives. Inside :func:`no_grad` it still differentiates ``f``,
    and returns ndarrays.

    >>> d = grad(lambda x: (x ** 3).sum())
    >>> d(2.0)
    array(12.)
    >>> grad(grad(lambda x: x ** 3))(tensor(2.0, requires_grad=True))
    Tensor(12., op='mul')
    """
    single = is_whole_number(argnums)
    if single:
        picks: tuple[int, ...] = (int(argnums),)  # type: ignore[arg-type]
    elif isinstance(argnums, (tuple, list)) and all(is_whole_number(i) for i in argnums):
        picks = tuple(int(i) for i in argnums)
    else:
        raise ChainruleError(f"grad: argnums must be an int or a tuple of ints, got {argnums!r}")

    def gradient_of_f(*args: Any) -> Any:
        for i in picks:
            if not -len(args) <= i < len(args):
                raise ChainruleError(
                    f"grad: argnums {argnums!r} asks for argument {i}, but f was called with "
                    f"{len(args)} argument(s)"
                )
        recording = _grad_enabled()  # read before f runs with recording forced on
        wrapped = list(args)
        for i in picks:
            if not (isinstance(args[i], Tensor) and args[i].requires_grad):
                wrapped[i] = Tensor(args[i], requires_grad=True)
        # f is recorded even inside no_grad (the caller asked for its gradient; only the
        # result stays out of the outer graph), as torch.func.grad does.
        token = _GRAD_MODE.set(True)
        try:
            out = f(*wrapped)
        finally:
            _GRAD_MODE.reset(token)
        if not isinstance(out, Tensor) or out.data.size != 1:
            shape = out.shape if isinstance(out, Tensor) else type(out).__name__
            raise ShapeError(f"grad: f must return a one-element Tensor, got {shape}")
        # The gradient is itself recorded (so an outer grad can differentiate it) whenever
        # recording is on and anything in f's graph needs a gradient besides the leaves
        # made here: an argument that already did, or an outer variable f captured.
        fresh = {id(wrapped[i]) for i in picks if wrapped[i] is not args[i]}
        nested = recording and out.requires_grad and _reaches_other_leaf(out, fresh)
        if not out.requires_grad:  # f does not depend on its arguments
            found = [np.zeros_like(wrapped[i].data) for i in picks]
            if nested:
                found = [Tensor._node(z, None, (), {}, False) for z in found]
        else:
            found = gradients(out, [wrapped[i] for i in picks], create_graph=nested)
        for i in picks:  # seen from outside, the leaves made here are constants
            if wrapped[i] is not args[i]:
                wrapped[i].requires_grad = False
        return found[0] if single else tuple(found)

    return gradient_of_f


def _reaches_other_leaf(out: Tensor, fresh: set[int]) -> bool:
    """Whether ``out``'s graph has a leaf needing a gradient other than those in ``fresh``."""
    for node in topological_order(out):
        if node.op is None and node.requires_grad and id(node) not in fresh:
            return True
    return False


class GradientCheckError(ChainruleError):
    """The engine's gradient and finite differences disagree."""


def check_grads(
    f: Callable[..., Tensor],
    *args: Any,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    seed: int = 0,
) -> None:
    """Compare the engine's gradient of ``f`` with central finite differences.

    For each argument, the directional derivative along a random direction ``v`` is
    computed twice: by the engine (``grad . v``) and by ``(f(x + eps v) - f(x - eps v)) /
    (2 eps)`` in float64. A disagreement raises :class:`GradientCheckError` with a readable
    report. Use it to check your own derivation or a new op.

    >>> check_grads(lambda x: (x.tanh() * x).sum(), [0.3, -1.2])
    """
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(ops.value(a), dtype=np.float64) for a in args]
    analytic = grad(f, argnums=tuple(range(len(arrays))))(*arrays)
    problems = []
    for i, (x, g) in enumerate(zip(arrays, analytic, strict=True)):
        v = rng.standard_normal(x.shape)
        plus = [a if j != i else x + eps * v for j, a in enumerate(arrays)]
        minus = [a if j != i else x - eps * v for j, a in enumerate(arrays)]
        with no_grad():
            f_plus = f(*[Tensor(a) for a in plus]).item()
            f_minus = f(*[Tensor(a) for a in minus]).item()
        numeric = (f_plus - f_minus) / (2 * eps)
        if np.shape(g) != x.shape:
            problems.append(
                f"  argument {i} (shape {x.shape}): the engine's gradient has shape {np.shape(g)}"
            )
            continue
        engine = float(np.sum(np.asarray(g) * v))
        if not np.abs(engine - numeric) <= atol + rtol * np.abs(numeric):
            problems.append(
                f"  argument {i} (shape {x.shape}): engine {engine:.10g}, "
                f"finite differences {numeric:.10g}, difference {engine - numeric:.3g}"
            )
    if problems:
        raise GradientCheckError(
            "check_grads: the gradient disagrees with central finite differences "
            f"(eps={eps:g}, along a random direction):\n" + "\n".join(problems)
        )
