"""Compiled steps: trace one forward and backward pass, then replay it as plain numpy calls.

:func:`compile` runs a function once on Tensors, as usual, while every op applied is
written down in order: which entry of the op table, on which arrays, with which
parameters. That list, and the backward rules of the same entries in reverse order, form a
flat *program*. Calling the compiled function replays the program: one numpy call per op
into arrays allocated once (ufuncs write with ``out=``), with no Tensor objects made and no
graph walked. The arithmetic is the op table's own (its forwards and its rules), so the
numbers are the eager engine's, to the last bit or nearly (sums may add in another order).

What a trace cannot see, it bakes in, as ``jax.jit`` does:

- **Python control flow** that depends on the data (``if loss.item() > 1:``) is traced as
  the branch taken on the first call; later calls take that branch whatever the data.
- **numpy work outside the graph** (on ``t.data`` or ``t.numpy()``) is done once, at the
  trace: its result is a constant of the program.
- **Arrays captured by the function** are read at each call (not copied), and so are the
  current values of Parameters and other tensors that require a gradient.

A new trace is made when an argument's shape or dtype changes, when a captured tensor is
frozen or unfrozen (``requires_grad`` changes), and when the grad mode changes: inside
:func:`~chainrule.no_grad` the compiled function computes the loss only.

>>> import chainrule as cr
>>> def ssr(b3, dosage, observed):  # StatQuest's network, b3 to be found
...     y1 = cr.softplus(3.34 * dosage - 1.43)
...     y2 = cr.softplus(-3.53 * dosage + 0.57)
...     return ((observed - (-1.22 * y1 - 2.30 * y2 + b3)) ** 2).sum()
>>> step = cr.compile(ssr)
>>> b3 = cr.tensor(0.0, requires_grad=True)
>>> loss, (slope,) = step(b3, cr.tensor([0.0, 0.5, 1.0]), cr.tensor([0.0, 1.0, 0.0]))
>>> round(loss, 2), round(float(slope), 2), step.traces
(20.42, -15.66, 1)

References: JAX's ``jax.jit`` (tracing, and what a trace bakes in) and PyTorch's
``torch.compile`` (re-tracing when what the trace assumed no longer holds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import tensor as _tensor
from chainrule.errors import ChainruleError, GraphError
from chainrule.nn.module import Parameter
from chainrule.ops import Op
from chainrule.tensor import Tensor, is_grad_enabled, no_grad

__all__ = ["CompileError", "Compiled", "Program", "compile"]


class CompileError(ChainruleError):
    """A function that cannot be compiled: what it returns or takes cannot be traced."""


#: One trace at a time: the tracer hook is a module global of the engine.
_TRACE_LOCK = threading.Lock()

_ndarray = np.ndarray


def _ufunc_of(op: Op, attrs: dict[str, Any]) -> np.ufunc | None:
    """The numpy ufunc that computes ``op`` when it can be called with ``out=``."""
    if attrs:
        return None
    f = op.forward
    if isinstance(f, np.ufunc):
        return f
    inner = getattr(f, "ufunc", None)
    return inner if isinstance(inner, np.ufunc) else None


def _view_maker(base: np.ndarray, leaf: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
    """How to make ``leaf`` (a view into ``base``) from another array of ``base``'s shape,
    or None when ``leaf`` is not a view into ``base``."""
    if leaf is base:
        return lambda new: new
    if leaf.dtype != base.dtype or not base.flags.c_contiguous or not leaf.size:
        return None
    start = base.__array_interface__["data"][0]
    offset = leaf.__array_interface__["data"][0] - start
    if not 0 <= offset < base.nbytes or not np.shares_memory(leaf, base):
        return None
    shape, strides = leaf.shape, leaf.strides

    def view(new: np.ndarray) -> np.ndarray:
        return np.ndarray(shape, new.dtype, buffer=new, offset=offset, strides=strides)

    return view


class Program:
    """One traced forward (and backward) pass: a flat list of numpy calls.

    ``run(inputs)`` takes the input arrays (in the order given to :meth:`trace`) and
    returns ``(values, gradients)``: the arrays of the traced outputs and, when the trace
    was made with targets, the gradient of the first output (the loss) with respect to each
    target (None when traced for the loss only). Built by :meth:`trace`.
    """

    def __init__(self) -> None:
        self.size = 0  # slots
        self.binds: list[tuple[int, int, Callable[[np.ndarray], np.ndarray]]] = []
        self.lives: list[tuple[int, Tensor]] = []  # slots read from a tensor at each call
        self.constants: list[tuple[int, np.ndarray]] = []
        self.forward: list[Callable[[list[Any]], None]] = []
        self.backward: list[Callable[[list[Any], list[Any]], None]] = []
        self.outputs: list[int] = []
        self.targets: list[tuple[int, np.dtype, tuple[int, ...]]] = []
        self.root = -1
        self.ops = 0  # forward ops, for repr
        self._template: list[Any] | None = None

    # -- tracing -----------------------------------------------------------------------

    @classmethod
    def trace(
        cls,
        fn: Callable[..., Any],
        args: Sequence[Any],
        inputs: Sequence[np.ndarray],
        targets: Sequence[Tensor] | None,
        where: str = "compile",
    ) -> tuple[Program, Any]:
        """Run ``fn(*args)`` once, recording every op, and build its program.

        ``inputs`` are the arrays that change from call to call (a leaf whose array is one
        of them, or a view into one, is read from the call's arrays); ``targets`` the
        tensors to differentiate the first output with respect to (None: no backward).
        Returns the program and what ``fn`` returned.
        """
        calls: list[tuple[Op, tuple[Tensor, ...], dict[str, Any], Tensor]] = []

        def record(op: Op, ins: tuple[Tensor, ...], attrs: dict[str, Any], out: Tensor) -> None:
            calls.append((op, ins, attrs, out))

        with _TRACE_LOCK:
            _tensor._TRACER = record
            try:
                with no_grad():  # record nothing, guard nothing: the tracer sees every op
                    result = fn(*args)
            finally:
                _tensor._TRACER = None
        outs = result if isinstance(result, tuple) else (result,)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise CompileError(
                    f"{where}: the function must return Tensors made by chainrule ops (a loss, "
                    f"then any other outputs), got {type(o).__name__} as output {i + 1}"
                )
        if outs[0].data.size != 1:
            raise CompileError(
                f"{where}: the function must return a one-element loss first, got shape "
                f"{outs[0].shape}"
            )
        program = cls()
        program._build(calls, outs, inputs, targets, where)
        return program, result

    def _build(
        self,
        calls: list[tuple[Op, tuple[Tensor, ...], dict[str, Any], Tensor]],
        outs: tuple[Tensor, ...],
        inputs: Sequence[np.ndarray],
        targets: Sequence[Tensor] | None,
        where: str,
    ) -> None:
        slot_of: dict[int, int] = {}
        keep: list[Tensor] = []  # holds every traced tensor alive while ids are compared
        wanted = {id(t) for t in targets} if targets is not None else set()
        needs: list[bool] = []

        def leaf(t: Tensor) -> int:
            slot = slot_of[id(t)] = len(needs)
            keep.append(t)
            needs.append(id(t) in wanted)
            for k, base in enumerate(inputs):
                view = _view_maker(base, t.data)
                if view is not None:
                    self.binds.append((slot, k, view))
                    return slot
            if t.requires_grad or id(t) in wanted or _is_parameter(t):
                self.lives.append((slot, t))  # read at each call: an optimizer changes it
            else:
                self.constants.append((slot, t.data))
            return slot

        steps: list[tuple[Op, tuple[int, ...], dict[str, Any], int, np.ndarray]] = []
        for op, ins, attrs, out in calls:
            slots = tuple(slot_of[id(t)] if id(t) in slot_of else leaf(t) for t in ins)
            o = slot_of[id(out)] = len(needs)
            keep.append(out)
            needs.append(any(needs[s] for s in slots))
            steps.append((op, slots, attrs, o, out.data))
        self.size = len(needs)
        for t in outs:
            if id(t) not in slot_of:  # an output that no op made: an input returned as is
                leaf(t)
        self.size = len(needs)
        self.outputs = [slot_of[id(t)] for t in outs]
        self.root = self.outputs[0]
        self.ops = len(steps)
        self.forward = [_forward_step(op, s, a, o, data) for op, s, a, o, data in steps]
        if targets is None:
            return
        if not needs[self.root]:
            raise GraphError(
                f"{where}: the loss does not depend on anything to differentiate (the "
                "tensors that require a gradient)"
            )
        for t in targets:
            if id(t) not in slot_of:
                leaf(t)
        self.size = len(needs)
        self.targets = [(slot_of[id(t)], t.data.dtype, t.data.shape) for t in targets]
        # The backward sweep: the rules of the ops that lead to the loss, in reverse.
        reaches = [False] * self.size
        reaches[self.root] = True
        has_grad = [False] * self.size
        for op, slots, attrs, o, _ in reversed(steps):
            if not reaches[o] or not needs[o]:
                continue
            for i, s in enumerate(slots):
                if not needs[s]:
                    continue
                reaches[s] = True
                rule = op.rules[0] if op.arity is None else op.rules[i]
                extra = {"i": i, **attrs} if op.arity is None else attrs
                self.backward.append(_backward_step(rule, slots, extra, o, s, has_grad[s]))
                has_grad[s] = True

    # -- replay ------------------------------------------------------------------------

    def run(
        self, arrays: Sequence[np.ndarray], backward: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Replay the program on ``arrays`` (the call's input arrays, in trace order)."""
        template = self._template
        if template is None:  # the constants, placed once
            template = self._template = [None] * self.size
            for slot, data in self.constants:
                template[slot] = data
        v = template.copy()
        for slot, k, view in self.binds:
            v[slot] = view(arrays[k])
        for slot, t in self.lives:
            v[slot] = t.data
        for step in self.forward:
            step(v)
        values = [v[s] for s in self.outputs]
        if not backward or not self.targets:
            return values, None
        root = v[self.root]
        g: list[Any] = [None] * self.size
        g[self.root] = np.ones(root.shape, dtype=root.dtype)
        for step in self.backward:
            step(v, g)
        grads = []
        for slot, dtype, shape in self.targets:
            found = g[slot]
            if found is None:
                grads.append(np.zeros(shape, dtype=dtype))
            else:
                grads.append(np.array(found, dtype=dtype))  # a copy of its own, as .grad is
        return values, grads

    def __repr__(self) -> str:
        return f"Program({self.ops} ops forward, {len(self.backward)} rules backward)"


def _is_parameter(t: Tensor) -> bool:
    return isinstance(t, Parameter)


def _forward_step(
    op: Op, slots: tuple[int, ...], attrs: dict[str, Any], o: int, traced: np.ndarray
) -> Callable[[list[Any]], None]:
    """One op of the forward replay: ``v[o] = op(v[slots], **attrs)``."""
    ufunc = _ufunc_of(op, attrs)
    if ufunc is not None and not (ufunc is np.matmul and traced.ndim < 2):
        buffer = np.empty(traced.shape, dtype=traced.dtype)
        if len(slots) == 1:
            (a,) = slots

            def unary(v: list[Any]) -> None:
                v[o] = ufunc(v[a], out=buffer)

            return unary
        if len(slots) == 2:
            a, b = slots

            def binary(v: list[Any]) -> None:
                v[o] = ufunc(v[a], v[b], out=buffer)

            return binary
    f, dtype = op.forward, traced.dtype

    def general(v: list[Any]) -> None:
        r = f(*[v[s] for s in slots], **attrs)
        if type(r) is not _ndarray:  # numpy returns scalars for 0-d results
            r = np.asarray(r)
        if r.dtype != dtype:  # e.g. integers: the trace took the first operand's dtype
            r = r.astype(dtype)
        v[o] = r

    return general


def _backward_step(
    rule: Callable[..., Any],
    slots: tuple[int, ...],
    attrs: dict[str, Any],
    o: int,
    target: int,
    accumulate: bool,
) -> Callable[[list[Any], list[Any]], None]:
    """One backward rule: ``g[target] (+)= rule(g[o], v[o], *v[slots], **attrs)``."""
    if not attrs and len(slots) <= 2:  # the common shapes, without building argument lists
        a, b = slots[0], slots[-1]
        if len(slots) == 1 and not accumulate:

            def first_unary(v: list[Any], g: list[Any]) -> None:
                g[target] = rule(g[o], v[o], v[a])

            return first_unary
        if len(slots) == 2 and not accumulate:

            def first_binary(v: list[Any], g: list[Any]) -> None:
                g[target] = rule(g[o], v[o], v[a], v[b])

            return first_binary
    if accumulate:

        def add(v: list[Any], g: list[Any]) -> None:
            g[target] = g[target] + rule(g[o], v[o], *[v[s] for s in slots], **attrs)

        return add

    def first(v: list[Any], g: list[Any]) -> None:
        g[target] = rule(g[o], v[o], *[v[s] for s in slots], **attrs)

    return first


def _array_of(x: Any, where: str, i: int) -> np.ndarray:
    data = x.data if isinstance(x, Tensor) else x
    if type(data) is not np.ndarray:
        try:
            data = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise CompileError(
                f"{where}: argument {i + 1} must be a Tensor or an array of numbers, got "
                f"{type(x).__name__}"
            ) from None
    if data.dtype.kind not in "biuf":
        raise CompileError(
            f"{where}: argument {i + 1} must hold real numbers, got dtype {data.dtype}"
        )
    return data if data.flags.c_contiguous else np.ascontiguousarray(data)


class Compiled:
    """A compiled function (see :func:`compile`): call it as you would call ``fn``.

    It returns ``(loss, gradients)``: the loss as a float and one gradient array per
    argument that requires a gradient, in argument order (an empty tuple when none does,
    and None inside :func:`~chainrule.no_grad`). ``traces`` counts the traces made.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise CompileError(f"compile: needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.traces = 0
        self._programs: dict[tuple[Any, ...], tuple[Program, list[Tensor]]] = {}
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = getattr(fn, "__name__", "compiled")

    def __call__(self, *args: Any) -> tuple[float, tuple[np.ndarray, ...] | None]:
        name = f"compile({self.__name__})"
        arrays = [_array_of(a, name, i) for i, a in enumerate(args)]
        grad_mode = is_grad_enabled()
        wrt = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        key = (tuple((a.shape, a.dtype.str) for a in arrays), wrt, grad_mode)
        found = self._programs.get(key)
        if found is not None and all(t.requires_grad for t in found[1]):
            program = found[0]
        else:
            program = self._trace(args, arrays, wrt, grad_mode, key, name)
        values, grads = program.run(arrays, backward=grad_mode)
        loss = float(values[0].reshape(()))
        return loss, (None if grads is None else tuple(grads))

    def _trace(
        self,
        args: tuple[Any, ...],
        arrays: list[np.ndarray],
        wrt: tuple[bool, ...],
        grad_mode: bool,
        key: tuple[Any, ...],
        name: str,
    ) -> Program:
        leaves = [Tensor._node(a, None, (), {}, w) for a, w in zip(arrays, wrt, strict=True)]
        targets = [t for t, w in zip(leaves, wrt, strict=True) if w] if grad_mode else None
        program, _ = Program.trace(self.fn, leaves, arrays, targets, name)
        # The tensors that required a gradient at the trace: freezing one re-traces.
        live = [t for _, t in program.lives if t.requires_grad]
        self._programs[key] = (program, live)
        self.traces += 1
        return program

    def __repr__(self) -> str:
        return f"Compiled({self.__name__}, {self.traces} trace(s))"


def compile(fn: Callable[..., Any]) -> Compiled:  # noqa: A001 (the name jax and torch use)
    """Compile ``fn`` (Tensors -> a one-element loss) into a replay of its forward and
    backward pass; the result returns ``(loss, gradients)``.

    The gradients are taken with respect to the arguments that require a gradient, in
    order. See the module's documentation for what a trace bakes in (data-dependent Python
    control flow is traced as the branch taken) and when it traces again.

    >>> import chainrule as cr
    >>> f = cr.compile(lambda w, x: ((w * x) ** 2).sum())
    >>> f(cr.tensor([1.0, 2.0], requires_grad=True), cr.tensor([3.0, 4.0]))
    (73.0, (array([18., 64.]),))
    """
    return Compiled(fn)


class TrainingStep:
    """The compiled step of :class:`chainrule.Trainer` (``compile=True``): the model's
    forward pass and the loss on a batch, and the slopes of the trained parameters.

    ``step(X, y)`` returns ``(outputs, loss, slopes)``; ``outputs`` is a buffer that the
    next call overwrites. It traces again when the batch's shape changes (the last,
    smaller batch of an epoch has a program of its own) or a parameter is frozen.
    """

    def __init__(
        self, model: Any, loss: Callable[[Any, Any], Tensor], params: list[Tensor]
    ) -> None:
        self.model, self.loss, self.params = model, loss, params
        self.traces = 0
        self.check_batches = False  # set when every step sees other rows
        self._programs: dict[tuple[Any, ...], Program] = {}

    def _fn(self, X: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        out = self.model(X)
        return self.loss(out, y), out

    def __call__(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, list[Any]]:
        key = (X.shape, X.dtype.str, y.shape, y.dtype.str)
        program = self._programs.get(key)
        if program is None:
            program = self._trace(X, y, key)
        (loss, out), grads = program.run((X, y))
        assert grads is not None
        return out, float(loss.reshape(())), grads

    def _trace(self, X: np.ndarray, y: np.ndarray, key: tuple[Any, ...]) -> Program:
        where = "train(compile=True)"
        program, result = Program.trace(self._fn, (X, y), (X, y), self.params, where)
        if self.check_batches:
            rows = len(X)
            for _, data in program.constants:
                if data.ndim and data.shape[0] == rows and data.flags.writeable and rows > 1:
                    raise CompileError(
                        f"{where}: the model or the loss computes an array of shape "
                        f"{data.shape} from the batch outside the graph (with numpy), so a "
                        "replay could not follow the batch; train without compile=True"
                    )
        self._programs[key] = program
        self.traces += 1
        return program


def encoded_target(loss_name: str, y: np.ndarray, outputs: int) -> np.ndarray:
    """The target as the compiled step feeds it to the loss: class labels become one-hot
    rows for ``cross_entropy`` (the same numbers the loss makes from them, made once
    rather than outside the graph at every step); any other target is ``y`` itself.

    >>> encoded_target("cross_entropy", np.array([1, 0]), 2)
    array([[0., 1.],
           [1., 0.]])
    """
    if loss_name != "cross_entropy" or (y.ndim == 2 and y.shape[1] == outputs):
        return y
    labels = y.reshape(len(y))
    if not np.array_equal(labels, np.round(labels)) or labels.min(initial=0) < 0:
        return y  # the loss names the bad label
    if labels.size and labels.max() >= outputs:
        return y
    onehot = np.zeros((len(y), outputs))
    onehot[np.arange(len(y)), labels.astype(np.intp)] = 1.0
    return onehot
