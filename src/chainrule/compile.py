"""Compiled steps: trace one forward and backward pass, then replay it as plain numpy calls.

:func:`compile` runs a function once on Tensors, as usual, while every op applied is
written down in order: which entry of the op table, on which arrays, with which
parameters. That list, and the backward rules of the same entries in reverse order, form a
flat *program*. Calling the compiled function replays the program: one numpy call per op
into arrays allocated once (ufuncs write with ``out=``), with no Tensor objects made and no
graph walked. The arithmetic is the op table's own (its forwards and its rules), so the
numbers are the eager engine's, to the last bit or nearly (sums may add in another order).
One pattern is replayed whole: the mean softmax cross-entropy of
:func:`chainrule.losses.cross_entropy` (``log_softmax``, the product with the target,
``sum``, ``mean``, ``neg``) is one forward and one rule, in the op table's arithmetic.

What a trace cannot see, it bakes in, as ``jax.jit`` does:

- **Python control flow** that depends on the data (``if loss.item() > 1:``) is traced as
  the branch taken on the first call; later calls take that branch whatever the data.
- **numpy work outside the graph** (on ``t.data`` or ``t.numpy()``) is done once, at the
  trace: its result is a constant of the program.
- **Arrays captured by the function** are read at each call (not copied), and so are the
  current values of Parameters and other tensors that require a gradient.

In :func:`chainrule.train` (``compile=True``) two more things happen. With plain
gradient descent the parameters live in one flat vector and the program writes the slopes
into another, so the optimizer's step is two numpy calls over all of them. And a program
of a few numbers (the seed's network: 3 rows, 7 weights), where numpy's cost per call is
the whole cost, is replayed by one numba call (:class:`SmallProgram`) when numba is
installed (``pip install chainrule[fast]``). In larger programs, with numba, the steps
of the common layers that numpy makes in two to five calls run as one fused loop each
(:mod:`chainrule.kernels`): a bias added then ReLU, ReLU's rule with the bias's slope,
the softmax cross-entropy and its rule, the descent step (``compile(fn)`` uses them too;
``Program.trace(..., fused=False)`` does not). Without numba, the numpy replay runs.

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

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import kernels as _kernels
from chainrule import tensor as _tensor
from chainrule.errors import ChainruleError, GraphError
from chainrule.nn.module import Parameter
from chainrule.ops import Op
from chainrule.tensor import Tensor, is_grad_enabled, no_grad

__all__ = ["CompileError", "Compiled", "Program", "SmallProgram", "compile"]


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
    if not np.may_share_memory(leaf, base):  # (their bounds alone, quickly)
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
        self._forward: list[Callable[[list[Any]], None]] = []
        self._backward: list[Callable[[list[Any], list[Any]], None]] = []
        self.outputs: list[int] = []
        self.targets: list[tuple[int, np.dtype, tuple[int, ...]]] = []
        self.root = -1
        self.ops = 0  # forward ops, for repr
        self.grads_into: Sequence[np.ndarray] | None = None
        # Set by a trainer whose targets live in one flat vector and whose gradients go
        # into another (views of which are ``grads_into``): a small program then reads
        # and writes each in one copy.
        self.values_flat: np.ndarray | None = None
        self.grads_flat: np.ndarray | None = None
        self._template: list[Any] | None = None
        self._traced: dict[int, np.ndarray] = {}
        self._sweep: list[tuple[Op, tuple[int, ...], dict[str, Any], int, int, int]] = []
        self._gets: list[int] = []
        self._zero: list[tuple[int, np.ndarray]] = []
        self._ones = np.ones(())
        self._steps: list[tuple[str, tuple[int, ...], dict[str, Any], int]] = []
        # Cross-entropy chains replayed as one forward and one rule (by the loss's slot),
        # and the slots of their inner steps, which are not replayed one by one.
        self._chains: dict[int, _CrossEntropy] = {}
        self._fused_away: set[int] = set()
        #: The numba replay of this program (see :class:`SmallProgram`), when made.
        self.small: SmallProgram | None = None
        #: The numba replay of a program of matrix layers (see :class:`LayerProgram`).
        self.layers: LayerProgram | None = None
        #: The fused loops of :mod:`chainrule.kernels` that the replay may call (None:
        #: numpy calls only).
        self.kernels: Any = None
        # A bias added then ReLU, replayed as one loop: the ReLU's slot -> (the add's
        # slot, the matrix's, the bias's).
        self._bias_relus: dict[int, tuple[int, int, int]] = {}
        # The ops that write their result over their first input (see _fused_into).
        self._into: dict[int, int] = {}
        # The traced steps, from which the numpy replay's are made on first use.
        self._plan: list[tuple[Op, tuple[int, ...], dict[str, Any], int, np.ndarray]] = []
        self._emitted = False
        # The ReLUs whose rule also sums the slope of the bias added before them: the
        # ReLU's slot -> (the add's slot, the bias's).
        self._relu_sums: dict[int, tuple[int, int]] = {}

    # -- tracing -----------------------------------------------------------------------

    @classmethod
    def trace(
        cls,
        fn: Callable[..., Any],
        args: Sequence[Any],
        inputs: Sequence[np.ndarray],
        targets: Sequence[Tensor] | None,
        where: str = "compile",
        fused: bool = True,
        grads_into: Sequence[np.ndarray] | None = None,
    ) -> tuple[Program, Any]:
        """Run ``fn(*args)`` once, recording every op, and build its program.

        ``inputs`` are the arrays that change from call to call (a leaf whose array is one
        of them, or a view into one, is read from the call's arrays); ``targets`` the
        tensors to differentiate the first output with respect to (None: no backward).
        ``fused``: replay the common layers' float steps with the fused loops of
        :mod:`chainrule.kernels` when numba is installed (False: numpy calls only).
        ``grads_into``: as :meth:`write_gradients_into`, from the start.
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
        program.kernels = _kernels.get() if fused else None
        program._build(calls, outs, inputs, targets, where, grads_into)
        return program, result

    def _build(
        self,
        calls: list[tuple[Op, tuple[Tensor, ...], dict[str, Any], Tensor]],
        outs: tuple[Tensor, ...],
        inputs: Sequence[np.ndarray],
        targets: Sequence[Tensor] | None,
        where: str,
        grads_into: Sequence[np.ndarray] | None = None,
    ) -> None:
        slot_of: dict[int, int] = {}
        keep: list[Tensor] = []  # holds every traced tensor alive while ids are compared
        wanted = {id(t) for t in targets} if targets is not None else set()
        needs: list[bool] = []

        traced: dict[int, np.ndarray] = {}  # each slot's array at the trace

        def leaf(t: Tensor) -> int:
            slot = slot_of[id(t)] = len(needs)
            traced[slot] = t.data
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
        made = {o: op.name for op, _, _, o, _ in steps}
        traced.update((o, data) for _, _, _, o, data in steps)
        readers = [0] * self.size  # how many ops read each slot
        for _, slots, _, _, _ in steps:
            for s in set(slots):
                readers[s] += 1
        into = self._into = _fused_into(steps, made, readers, set(self.outputs), traced)
        kernels = self.kernels
        chains = _cross_entropy_chains(steps, readers, set(self.outputs), needs, traced, kernels)
        self._chains = {chain.loss: chain for chain in chains}
        self._fused_away = {o for chain in chains for o in chain.inner}
        biased = _biased_relus(steps, traced) if kernels is not None else {}
        # One loop forward where the add and the ReLU both write over the matrix (see
        # :func:`_fused_into`, which also makes sure that only the ReLU reads the add).
        self._bias_relus = {
            o: (add, z, b)
            for o, (add, z, b) in biased.items()
            if into.get(o) == add and into.get(add) == z
        }
        self._plan = steps
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
        sweep: list[tuple[Op, tuple[int, ...], dict[str, Any], int, int, int]] = []
        gets = [0] * self.size  # how many rules add to each slot's gradient
        for op, slots, attrs, o, _ in reversed(steps):
            if not reaches[o] or not needs[o]:
                continue
            for i, s in enumerate(slots):
                if not needs[s]:
                    continue
                reaches[s] = True
                sweep.append((op, slots, attrs, o, i, s))
                gets[s] += 1
        self._sweep, self._gets, self._traced = sweep, gets, traced
        self._steps = [(op.name, slots, attrs, o) for op, slots, attrs, o, _ in steps]
        # One loop backward where the add's result reaches the loss through the ReLU only,
        # and the bias through this add only (numpy sums a single column pairwise, several
        # row after row, as the loop does: one column stays on numpy).
        self._relu_sums = {
            o: (add, b)
            for o, (add, z, b) in biased.items()
            if gets[add] == 1 and traced[add].shape[-1] > 1 and needs[b] and gets[b] == 1
        }
        if grads_into is not None:
            self.write_gradients_into(grads_into)

    def _emit(self) -> None:
        """Make the numpy replay's steps. (On its first use: a program replayed on numba,
        by :class:`SmallProgram` or :class:`LayerProgram`, never needs them.)"""
        kernels, into, steps = self.kernels, self._into, self._plan
        added_in_relu = {add for add, _, _ in self._bias_relus.values()}
        self._forward = [
            self._chains[o].forward
            if o in self._chains
            else _bias_relu_step(kernels.bias_relu, o, *self._bias_relus[o])
            if o in self._bias_relus
            else _forward_step(op, s, a, o, data, into.get(o))
            for op, s, a, o, data in steps
            if o not in self._fused_away and o not in added_in_relu
        ]
        if self.targets:
            self._emit_backward(self.grads_into)
        self._emitted = True

    def _emit_backward(self, grads_into: Sequence[np.ndarray] | None) -> None:
        """The backward steps; with ``grads_into`` (one array per target, of its shape),
        each target's gradient is written there rather than into a buffer of its own."""
        dest: dict[int, np.ndarray] = {}
        if grads_into is not None:
            dest = {slot: a for (slot, _, _), a in zip(self.targets, grads_into, strict=True)}
        self.grads_into = grads_into
        targets = {slot for slot, _, _ in self.targets}
        traced, gets = self._traced, self._gets
        written = [False] * self.size
        self._backward = []
        lp_chains = {chain.lp: chain for chain in self._chains.values()}
        summed = {bias for _, bias in self._relu_sums.values()}
        for op, slots, attrs, o, i, s in self._sweep:
            if o in self._chains or (o in self._fused_away and o not in lp_chains):
                continue  # a rule inside a cross-entropy chain: done by the chain's rule
            if s in summed and op.name == "add":
                continue  # a bias's slope: summed by the rule of the ReLU after it
            if s not in dest and (gets[s] > 1 or s in targets):
                # Added to more than once, or handed out: a buffer of its own.
                dest[s] = np.empty(traced[s].shape, dtype=traced[s].dtype)
            if o in lp_chains:
                step = _kernel_step(lp_chains[o].rule, s, traced[s], dest.get(s), written[s])
            elif o in self._relu_sums:
                bias = self._relu_sums[o][1]
                total = dest.get(bias)
                if total is None:
                    total = np.empty(traced[bias].shape, dtype=traced[bias].dtype)
                step = _relu_sum_step(self.kernels.relu_rule_sum, o, s, bias, traced[s], total)
                written[bias] = True
            else:
                step = _backward_step(
                    op, slots, attrs, o, i, s, traced, dest.get(s), written[s], self.kernels
                )
            self._backward.append(step)
            written[s] = True
        # A target the loss does not reach has gradient 0, written once.
        self._zero = []
        for slot, dtype, shape in self.targets:
            if not written[slot]:
                zero = dest.get(slot)
                if zero is None:
                    zero = np.empty(shape, dtype=dtype)
                zero[...] = 0
                self._zero.append((slot, zero))

    def write_gradients_into(self, arrays: Sequence[np.ndarray]) -> None:
        """From now on, write the gradient of each target into ``arrays`` (one array of
        the target's shape and dtype per target, in order): e.g. views into one flat
        vector of slopes, which an optimizer's step then reads with one numpy call.

        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> program, _ = Program.trace(lambda w: (w * w).sum(), [w], [], [w])
        >>> slopes = np.zeros(3)
        >>> program.write_gradients_into([slopes[1:]])
        >>> _ = program.run([])
        >>> slopes
        array([0., 2., 4.])
        """
        for (_, dtype, shape), a in zip(self.targets, arrays, strict=True):
            if a.shape != shape or a.dtype != dtype:
                raise CompileError(
                    f"write_gradients_into: a gradient of shape {shape} ({dtype}) cannot go "
                    f"into an array of shape {a.shape} ({a.dtype})"
                )
        self.grads_into = arrays
        self._emitted = False  # the backward steps are made again, for these arrays
        self.layers = None  # (it writes into the vector of the arrays it was made for)

    # -- replay ------------------------------------------------------------------------

    def run(
        self, arrays: Sequence[np.ndarray], backward: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Replay the program on ``arrays`` (the call's input arrays, in trace order).

        The arrays returned are the program's own buffers (or the arrays given to
        :meth:`write_gradients_into`): the next call overwrites them."""
        if self.layers is not None:
            return self.layers.run(arrays, backward)
        if self.small is not None and backward:
            return self.small.run(arrays)
        if not self._emitted:
            self._emit()
        template = self._template
        if template is None:  # the constants, placed once
            template = self._template = [None] * self.size
            for slot, data in self.constants:
                template[slot] = data
            root = self._traced[self.root] if self.targets else None
            if root is not None:
                self._ones = np.ones(root.shape, dtype=root.dtype)
        v = template.copy()
        for slot, k, view in self.binds:
            v[slot] = view(arrays[k])
        for slot, t in self.lives:
            v[slot] = t.data
        for step in self._forward:
            step(v)
        values = [v[s] for s in self.outputs]
        if not backward or not self.targets:
            return values, None
        g: list[Any] = [None] * self.size
        g[self.root] = self._ones
        for step in self._backward:
            step(v, g)
        for slot, zero in self._zero:
            g[slot] = zero
        return values, [g[slot] for slot, _, _ in self.targets]

    @property
    def forward(self) -> list[Callable[[list[Any]], None]]:
        """The numpy replay's forward steps (made on first use)."""
        if not self._emitted:
            self._emit()
        return self._forward

    @property
    def backward(self) -> list[Callable[[list[Any], list[Any]], None]]:
        """The numpy replay's backward steps (made on first use)."""
        if not self._emitted:
            self._emit()
        return self._backward

    def __repr__(self) -> str:
        return f"Program({self.ops} ops forward, {len(self.backward)} rules backward)"


def _is_parameter(t: Tensor) -> bool:
    return isinstance(t, Parameter)


#: The ops whose backward rules never read their own result (``out``): the op after one
#: of them may overwrite that result in place.
_RESULT_UNREAD = frozenset({"matmul", "add", "sub", "mul"})

#: Forwards that numpy can write into a given array, for ops that are not ufuncs: the
#: same numpy call as the op table's forward, with ``out=`` (matmul: of two matrices).
_INTO: dict[str, Callable[..., Any]] = {
    "relu": lambda x, out: np.maximum(x, 0.0, out=out),
    "matmul": lambda a, b, out: np.matmul(a, b, out=out),
}


def _fused_into(
    steps: list[tuple[Op, tuple[int, ...], dict[str, Any], int, np.ndarray]],
    made: dict[int, str],
    readers: list[int],
    outputs: set[int],
    traced: dict[int, np.ndarray],
) -> dict[int, int]:
    """The ops that can write their result over their first input (``z = x @ W`` then
    ``z + b`` then ``relu``: one buffer, written three times, where numpy alone would
    allocate three). Returns result slot -> input slot. Allowed when that input is the
    result of an op whose rules ignore it, nothing else reads it, it is not an output,
    it has the result's shape and dtype, and this op's rules read only its shape (``add``,
    ``sub``) or read it in a way the overwrite keeps (``relu``: ``relu(z) > 0`` exactly
    where ``z > 0``)."""
    into: dict[int, int] = {}
    for op, slots, attrs, o, data in steps:
        if attrs or op.name not in ("add", "sub", "relu"):
            continue
        a = slots[0]
        if op.name != "relu" and _ufunc_of(op, attrs) is None:
            continue
        if (
            made.get(a) in _RESULT_UNREAD
            and readers[a] == 1
            and slots.count(a) == 1
            and a not in outputs
            and traced[a].shape == data.shape
            and traced[a].dtype == data.dtype
        ):
            into[o] = a
    return into


#: The dtypes whose elementwise steps run on :mod:`chainrule.kernels`' loops (with the
#: same numbers: each loop's arithmetic is exact or rounds as numpy's does); the softmax
#: cross-entropy's loop is float64 only (its sums of exponentials add in float64).
_LOOPED = (np.dtype(np.float64), np.dtype(np.float32))


def _biased_relus(
    steps: list[tuple[Op, tuple[int, ...], dict[str, Any], int, np.ndarray]],
    traced: dict[int, np.ndarray],
) -> dict[int, tuple[int, int, int]]:
    """The ReLUs of a layer's bias added to a matrix (``relu(z + b)``, ``b`` a row of
    ``z``'s width, in a dtype the loops serve): ReLU's slot -> (the add's slot, ``z``'s,
    ``b``'s). Forward, the two may run as one loop (``kernels.bias_relu``); backward,
    ReLU's rule may sum the bias's slope in its loop (``kernels.relu_rule_sum``)."""
    adds = {
        o: slots
        for op, slots, attrs, o, _ in steps
        if op.name == "add" and not attrs and len(slots) == 2 and slots[0] != slots[1]
    }
    found = {}
    for op, slots, attrs, o, _ in steps:
        if op.name != "relu" or attrs or slots[0] not in adds:
            continue
        z, b = adds[slots[0]]
        zs, bs = traced[z], traced[b]
        if (
            zs.ndim == 2
            and bs.shape == zs.shape[1:]
            and bs.dtype == zs.dtype
            and zs.dtype in _LOOPED
        ):
            found[o] = (slots[0], z, b)
    return found


def _bias_relu_step(
    kernel: Callable[..., None], o: int, add: int, z: int, b: int
) -> Callable[[list[Any]], None]:
    """``v[o] = relu(v[z] + v[b])`` written over ``v[z]`` by one loop (the add's own
    result, which no rule reads, is that array too)."""

    def bias_relu(v: list[Any]) -> None:
        x = v[z]
        kernel(x, v[b])
        v[add] = v[o] = x

    return bias_relu


def _relu_sum_step(
    kernel: Callable[..., None], o: int, s: int, bias: int, x: np.ndarray, total: np.ndarray
) -> Callable[[list[Any], list[Any]], None]:
    """ReLU's rule into ``g[s]`` (a buffer of its own) and its column sums into the
    bias's slope ``total``, in one loop."""
    own = np.empty(x.shape, dtype=x.dtype)

    def relu_sum(v: list[Any], g: list[Any]) -> None:
        kernel(g[o], v[o], own, total)
        g[s] = own
        g[bias] = total

    return relu_sum


class _CrossEntropy:
    """``-mean(sum(log_softmax(z, axis=1) * t, axis=1))`` replayed as one forward and one
    rule (the mean softmax cross-entropy of :func:`chainrule.losses.cross_entropy`, with
    ``t`` one-hot rows or class probabilities that need no gradient).

    Op by op, this chain is about 20 numpy calls on small arrays, each writing a new
    array. Here the forward is seven calls and the rule for ``z`` five, into arrays made
    once, with the op table's arithmetic in the op table's order: the shift by each row's
    maximum, ``exp``, the row sums and ``log`` of ``log_softmax``; then the rules of
    ``neg``, ``mean``, ``sum`` and ``mul`` give ``g_lp = t * (-g / n)`` and
    ``log_softmax``'s rule ``g_lp - exp(log_softmax) * sum(g_lp, axis=1)``. So the
    gradient is the eager engine's to the bit; the loss, one dot product of ``lp`` and
    ``t`` over ``n``, may differ in its last bit (the tests compare both to 1e-12).
    With numba's loops (float64), the forward is two loops around numpy's ``exp``, and
    the rule one loop after it (row sums may then differ in their last bit).
    """

    def __init__(
        self,
        z: int,
        t: int,
        lp: int,
        inner: tuple[int, ...],
        loss: int,
        like: np.ndarray,
        kernels: Any = None,
    ):
        self.z, self.t, self.lp, self.inner, self.loss = z, t, lp, inner, loss
        rows, dtype = like.shape[0], like.dtype
        self.rows = rows
        self.looped = kernels is not None and dtype == np.float64
        if self.looped:  # one loop each way
            self.forward = self._forward_loop  # type: ignore[method-assign]
            self.rule = self._rule_loop  # type: ignore[method-assign]
            self._shift, self._loop = kernels.row_shift, kernels.cross_entropy
            self._rule = kernels.cross_entropy_rule
        self.peak = np.empty((rows, 1), dtype=dtype)
        self.peak_row = self.peak.reshape(rows)
        self.shifted = np.empty(like.shape, dtype=dtype)
        self.log_probs = np.empty(like.shape, dtype=dtype)
        self.value = np.empty((), dtype=dtype)
        self.g_lp = np.empty(like.shape, dtype=dtype)
        self.g_sum = np.empty((rows, 1), dtype=dtype)

    def forward(self, v: list[Any]) -> None:
        z, peak, shifted, lp = v[self.z], self.peak, self.shifted, self.log_probs
        sums = peak  # (the peak is not read again: its buffer takes the row sums)
        # Each row's maximum, taken down the columns of z.T: the same numbers, in half
        # the time of a reduction along rows of ten.
        np.maximum.reduce(z.T, axis=0, out=self.peak_row)
        np.subtract(z, peak, out=shifted)
        np.exp(shifted, out=lp)
        np.add.reduce(lp, axis=1, keepdims=True, out=sums)
        np.log(sums, out=sums)
        np.subtract(shifted, sums, out=lp)
        # The mean of the rows' sums of lp * t, as one dot product: the loss may differ
        # from the op-by-op sum in its last bit (a sum in another order); no gradient
        # reads it.
        self.value[...] = -(np.vdot(lp, v[self.t]) / self.rows)
        v[self.lp] = lp
        v[self.loss] = self.value

    def rule(self, v: list[Any], g: list[Any], out: np.ndarray) -> None:
        g_lp = np.multiply(v[self.t], np.negative(g[self.loss]) / self.rows, out=self.g_lp)
        np.add.reduce(g_lp, axis=1, keepdims=True, out=self.g_sum)
        np.exp(self.log_probs, out=out)
        np.multiply(out, self.g_sum, out=out)
        np.subtract(g_lp, out, out=out)

    def _forward_loop(self, v: list[Any]) -> None:  # the same, as two loops and np.exp
        shifted, lp = self.shifted, self.log_probs
        self._shift(v[self.z], shifted)
        np.exp(shifted, out=lp)
        self.value[...] = self._loop(shifted, lp, v[self.t])
        v[self.lp] = lp
        v[self.loss] = self.value

    def _rule_loop(self, v: list[Any], g: list[Any], out: np.ndarray) -> None:
        np.exp(self.log_probs, out=out)
        self._rule(out, v[self.t], -float(g[self.loss]) / self.rows, out)


def _cross_entropy_chains(
    steps: list[tuple[Op, tuple[int, ...], dict[str, Any], int, np.ndarray]],
    readers: list[int],
    outputs: set[int],
    needs: list[bool],
    traced: dict[int, np.ndarray],
    kernels: Any = None,
) -> list[_CrossEntropy]:
    """The chains ``neg(mean(sum(mul(log_softmax(z, axis=1), t), axis=1)))`` on 2-D float
    arrays whose inner results nothing else reads, with ``t`` (of ``z``'s shape) needing
    no gradient: each is replayed as one :class:`_CrossEntropy`."""
    by_result = {o: (op.name, slots, attrs) for op, slots, attrs, o, _ in steps}

    def inner(slot: int, name: str) -> tuple[tuple[int, ...], dict[str, Any]] | None:
        found = by_result.get(slot)
        if found is None or found[0] != name or readers[slot] != 1 or slot in outputs:
            return None
        if not set(found[2]) <= {"axis", "keepdims"}:
            return None  # a setting this chain does not know
        return found[1], found[2]

    chains = []
    for op, slots, attrs, o, data in steps:
        if op.name != "neg" or attrs:
            continue
        mean = inner(slots[0], "mean")
        if mean is None or mean[1].get("axis") is not None or mean[1].get("keepdims"):
            continue
        summed = inner(mean[0][0], "sum")
        if summed is None or summed[1].get("axis") not in (1, -1) or summed[1].get("keepdims"):
            continue
        product = inner(summed[0][0], "mul")
        if product is None or len(product[0]) != 2 or product[1]:
            continue
        for lp, t in (product[0], product[0][::-1]):
            log_softmax = inner(lp, "log_softmax")
            if log_softmax is None or log_softmax[1].get("axis", -1) not in (1, -1):
                continue
            z = log_softmax[0][0]
            like = traced[z]
            if (
                like.ndim != 2
                or like.dtype.kind != "f"
                or needs[t]
                or t == z
                or traced[t].shape != like.shape
                or traced[t].dtype != like.dtype
                or data.dtype != like.dtype
            ):
                continue
            slots_inside = (lp, summed[0][0], mean[0][0], slots[0])
            chains.append(_CrossEntropy(z, t, lp, slots_inside, o, like, kernels))
            break
    return chains


def _forward_step(
    op: Op,
    slots: tuple[int, ...],
    attrs: dict[str, Any],
    o: int,
    traced: np.ndarray,
    over: int | None = None,
) -> Callable[[list[Any]], None]:
    """One op of the forward replay: ``v[o] = op(v[slots], **attrs)``; with ``over``, the
    result is written over the array of that input slot (see :func:`_fused_into`)."""
    ufunc = _ufunc_of(op, attrs)
    into = _INTO.get(op.name) if not attrs else None
    if op.name == "matmul" and traced.ndim != 2:
        into = None
    if over is not None:
        if into is not None:

            def unary_over(v: list[Any]) -> None:
                x = v[over]
                into(x, x)
                v[o] = x

            return unary_over
        assert ufunc is not None and len(slots) == 2
        b = slots[1]

        def binary_over(v: list[Any]) -> None:
            x = v[over]
            ufunc(x, v[b], out=x)
            v[o] = x

        return binary_over
    if into is not None:
        buffer = np.empty(traced.shape, dtype=traced.dtype)
        if len(slots) == 1:
            (a,) = slots

            def unary_into(v: list[Any]) -> None:
                v[o] = into(v[a], buffer)

            return unary_into
        a, b = slots

        def binary_into(v: list[Any]) -> None:
            v[o] = into(v[a], v[b], buffer)

        return binary_into
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


def _summed_axes(g: tuple[int, ...], x: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes to sum a gradient of shape ``g`` over to get shape ``x`` when broadcasting
    only added leading axes (``()``: none, the shapes are equal); None for other cases
    (axes stretched from length 1), which the op table's ``unbroadcast`` handles."""
    lead = len(g) - len(x)
    if lead < 0 or g[lead:] != x:
        return None
    return tuple(range(lead))


Kernel = Callable[[list[Any], list[Any], np.ndarray], None]


def _kernel(
    op: Op,
    i: int,
    slots: tuple[int, ...],
    o: int,
    traced: dict[int, np.ndarray],
    kernels: Any = None,
) -> Kernel | None:
    """The rule of input ``i`` of ``op`` as numpy calls that write into a given array
    (``kernel(v, g, out)``), for the rules of the common layers: the same arithmetic as
    the op table's rule, in the same order, without its temporaries. None: use the rule.

    Covered: ``add``, ``sub``, ``mul`` (with the broadcast undone by a sum over leading
    axes), ``matmul`` of two matrices and ``relu``. (That each equals its rule is checked
    by the tests that compare compiled training with eager training.)
    """
    result, x = traced[o], traced[slots[i]]
    if any(traced[s].dtype != result.dtype for s in slots):
        return None
    name = op.name
    if name in ("add", "sub", "mul") and len(slots) == 2:
        axes = _summed_axes(result.shape, x.shape)
        if axes is None:
            return None
        summed = axes or None  # () means: no sum
        negate = name == "sub" and i == 1
        if name == "mul":
            other = slots[1 - i]
            if summed is None:

                def mul_same(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                    np.multiply(g[o], v[other], out=out)

                return mul_same
            product = np.empty(result.shape, dtype=result.dtype)
            axis = None if not x.shape else summed

            def mul_summed(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                np.add.reduce(np.multiply(g[o], v[other], out=product), axis=axis, out=out)

            return mul_summed
        if summed is None:
            if negate:

                def neg_same(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                    np.negative(g[o], out=out)

                return neg_same

            def same(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                np.copyto(out, g[o])

            return same
        axis = None if not x.shape else summed
        if (
            kernels is not None
            and axis == (0,)
            and result.ndim == 2
            and result.shape[1] > 1  # numpy sums one column pairwise: keep its numbers
            and x.dtype in _LOOPED
        ):
            column_sum = kernels.column_sum

            def column_sum_kernel(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                column_sum(g[o], out)
                if negate:
                    np.negative(out, out=out)

            return column_sum_kernel

        def summed_kernel(v: list[Any], g: list[Any], out: np.ndarray) -> None:
            np.add.reduce(g[o], axis=axis, out=out)
            if negate:
                np.negative(out, out=out)

        return summed_kernel
    if name == "matmul" and len(slots) == 2:
        a, b = slots
        if traced[a].ndim != 2 or traced[b].ndim != 2:
            return None

        if i == 0:

            def matmul_a(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                go = g[o]
                if not (go.flags.c_contiguous or go.flags.f_contiguous):  # BLAS: unit strides
                    go = np.ascontiguousarray(go)
                np.matmul(go, v[b].T, out=out)

            return matmul_a

        def matmul_b(v: list[Any], g: list[Any], out: np.ndarray) -> None:
            go = g[o]
            if not (go.flags.c_contiguous or go.flags.f_contiguous):
                go = np.ascontiguousarray(go)
            np.matmul(v[a].T, go, out=out)

        return matmul_b
    if name == "relu" and len(slots) == 1:
        if kernels is not None and x.ndim == 2 and x.dtype in _LOOPED:
            relu_rule = kernels.relu_rule

            def relu_loop(v: list[Any], g: list[Any], out: np.ndarray) -> None:
                relu_rule(g[o], v[o], out)  # the same weights, in one loop

            return relu_loop
        weights = np.empty(x.shape, dtype=x.dtype)

        def relu(v: list[Any], g: list[Any], out: np.ndarray) -> None:
            # The rule's weights, read from relu's result r = max(x, 0): sign(r) is 1
            # where x > 0, 0 where not, and NaN where x is NaN (the NaN rule).
            np.multiply(g[o], np.sign(v[o], out=weights), out=out)

        return relu
    return None


def _kernel_step(
    kernel: Kernel, s: int, x: np.ndarray, dest: np.ndarray | None, accumulate: bool
) -> Callable[[list[Any], list[Any]], None]:
    """A backward step that writes ``kernel``'s gradient for slot ``s`` (traced as ``x``)
    into a buffer of its own, into ``dest``, or adds it to ``dest`` (``accumulate``)."""
    if dest is None:
        own = np.empty(x.shape, dtype=x.dtype)

        def into_own(v: list[Any], g: list[Any]) -> None:
            kernel(v, g, own)
            g[s] = own

        return into_own
    if not accumulate:

        def into_dest(v: list[Any], g: list[Any]) -> None:
            kernel(v, g, dest)
            g[s] = dest

        return into_dest
    scratch = np.empty(x.shape, dtype=x.dtype)

    def add_into_dest(v: list[Any], g: list[Any]) -> None:
        kernel(v, g, scratch)
        np.add(dest, scratch, out=dest)

    return add_into_dest


def _backward_step(
    op: Op,
    slots: tuple[int, ...],
    attrs: dict[str, Any],
    o: int,
    i: int,
    s: int,
    traced: dict[int, np.ndarray],
    dest: np.ndarray | None,
    accumulate: bool,
    kernels: Any = None,
) -> Callable[[list[Any], list[Any]], None]:
    """The rule of input ``i`` of one op: ``g[s] (+)= rule(g[o], v[o], *v[slots])``.

    ``dest``: the array that holds ``g[s]`` (a slot added to more than once, or a target);
    None: ``g[s]`` may be any array, even ``g[o]`` itself (an ``add`` passes its gradient
    on unchanged, so no copy is made).
    """
    kernel = _kernel(op, i, slots, o, traced, kernels) if not attrs else None
    x = traced[s]
    if kernel is not None:
        passes_on = op.name == "add" or (op.name == "sub" and i == 0)
        if passes_on and x.shape == traced[o].shape and dest is None:

            def passed_on(v: list[Any], g: list[Any]) -> None:
                g[s] = g[o]

            return passed_on
        return _kernel_step(kernel, s, x, dest, accumulate)

    rule = op.rules[0] if op.arity is None else op.rules[i]
    extra = {"i": i, **attrs} if op.arity is None else attrs
    if dest is None:
        if not extra and len(slots) == 1:
            (a,) = slots

            def first_unary(v: list[Any], g: list[Any]) -> None:
                g[s] = rule(g[o], v[o], v[a])

            return first_unary
        if not extra and len(slots) == 2:
            a, b = slots

            def first_binary(v: list[Any], g: list[Any]) -> None:
                g[s] = rule(g[o], v[o], v[a], v[b])

            return first_binary

        def first(v: list[Any], g: list[Any]) -> None:
            g[s] = rule(g[o], v[o], *[v[k] for k in slots], **extra)

        return first
    if not accumulate:

        def copied(v: list[Any], g: list[Any]) -> None:
            np.copyto(dest, rule(g[o], v[o], *[v[k] for k in slots], **extra))
            g[s] = dest

        return copied

    def added(v: list[Any], g: list[Any]) -> None:
        np.add(dest, rule(g[o], v[o], *[v[k] for k in slots], **extra), out=dest)

    return added


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


# ---------------------------------------------------------------------------------------
# The numba replay of small programs
# ---------------------------------------------------------------------------------------

#: A program replays on numba (when it is installed) if no array in it holds more numbers.
SMALL_MAX_SIZE = 64

# The instructions of the numba replay: forward ops, then the backward rules, each of
# which adds its term into a gradient (``+=``).
_ADD, _SUB, _MUL, _NEG, _SOFTPLUS, _POW, _SUM = range(7)
_ACC, _ACC_SOFTPLUS, _ACC_POW = range(10, 13)
_FORWARD_CODES = {"add": _ADD, "sub": _SUB, "mul": _MUL, "neg": _NEG, "softplus": _SOFTPLUS}

_small_replay: Any = None  # the jitted interpreter, made on first use


def _make_small_replay() -> Any:
    """The numba function that runs a small program: one loop over its instructions, one
    inner loop over the numbers (a number where an array of one broadcasts). The
    arithmetic is the op table's, written per number: softplus is ``logaddexp(0, x)``,
    its rule ``g * exp(-logaddexp(0, -x))``, pow's rule ``g * b * a ** (b - 1)``."""
    global _small_replay
    if _small_replay is not None:
        return _small_replay
    import numba

    @numba.njit(cache=True, nogil=True)
    def replay(code: Any, mem: Any, g: Any, backward_from: int, root: int) -> None:
        for k in range(code.shape[0]):
            op, o, on, a, an = code[k, 0], code[k, 1], code[k, 2], code[k, 3], code[k, 4]
            b, bn, sign, c = code[k, 5], code[k, 6], code[k, 7], code[k, 8]
            if k == backward_from:
                g[:] = 0.0
                g[root] = 1.0
            if op == 6:  # _SUM
                total = 0.0
                for i in range(an):
                    total += mem[a + i]
                mem[o] = total
                continue
            n = max(on, an, bn)
            for i in range(n):
                io = o + i if on > 1 else o
                ia = a + i if an > 1 else a
                ib = b + i if bn > 1 else b
                if op == 0:
                    mem[io] = mem[ia] + mem[ib]
                elif op == 1:
                    mem[io] = mem[ia] - mem[ib]
                elif op == 2:
                    mem[io] = mem[ia] * mem[ib]
                elif op == 3:
                    mem[io] = -mem[ia]
                elif op == 4:
                    mem[io] = np.logaddexp(0.0, mem[ia])
                elif op == 5:
                    mem[io] = mem[ia] ** mem[ib]
                elif op == 10:  # g[o] += sign * g[a] (* mem[b])
                    term = g[ia] * sign
                    if bn > 0:
                        term = term * mem[ib]
                    g[io] += term
                elif op == 11:
                    g[io] += g[ia] * np.exp(-np.logaddexp(0.0, -mem[ib]))
                elif op == 12:
                    e = mem[c]
                    g[io] += g[ia] * e * mem[ib] ** (e - 1.0)

    _small_replay = replay
    return replay


class SmallProgram:
    """A :class:`Program` of few numbers replayed by one numba call.

    numpy spends about a microsecond per call whatever the size, so a program on arrays
    of a few numbers (the seed's network: 3 rows, 7 weights) is all call overhead. Here
    every slot is a run of numbers in one vector (float64, or float32 for a float32
    program: each result is rounded to it, as numpy's are; a few functions, softplus and
    pow, are worked out in float64 before that), and the program's forward ops and
    backward rules are rows of an integer table that one jitted loop runs. Made by
    :meth:`of` for float programs of the ops it knows (``add``, ``sub``, ``mul``,
    ``neg``, ``softplus``, ``pow`` by a constant, ``sum``) whose arrays broadcast only a
    single number against a vector; None otherwise (the numpy replay is used).
    """

    def __init__(self) -> None:
        self.offsets: dict[int, tuple[int, int]] = {}
        self.code = np.zeros((0, 9), dtype=np.int64)
        self.mem = np.zeros(0)
        self.g = np.zeros(0)
        self.backward_from = 0
        self.program: Program | None = None
        self.root = 0
        self.n_targets = 0
        # What is copied in at each call: single numbers and arrays of the tensors read
        # at each call, and the inputs (with the view that picks each out of its array).
        self.scalars: list[tuple[int, Tensor]] = []
        self.vectors: list[tuple[np.ndarray, Tensor]] = []
        self.inputs: list[tuple[np.ndarray, int, Callable[[np.ndarray], np.ndarray], Any]] = []
        self.values: list[np.ndarray] = []

    @classmethod
    def of(cls, program: Program) -> SmallProgram | None:
        """The numba replay of ``program``, or None when it cannot be made."""
        if not program.targets or program.grads_into is None:
            return None
        try:
            _make_small_replay()
        except ImportError:  # no numba: the numpy replay
            return None
        traced = program._traced
        dtypes = {array.dtype for array in traced.values()}
        if len(dtypes) != 1 or next(iter(dtypes)) not in _LOOPED:
            return None  # one float dtype throughout: the numbers are kept in it
        (dtype,) = dtypes
        for array in traced.values():
            if array.size > SMALL_MAX_SIZE:
                return None
            if array.ndim > 1 and array.size != max(array.shape):
                return None  # a matrix: the numpy replay
        self = cls()
        self.program = program
        order = [slot for slot, _, _ in program.targets] + sorted(traced)
        at = 0
        for slot in order:
            if slot not in self.offsets:
                self.offsets[slot] = (at, traced[slot].size)
                at += traced[slot].size
        rows = []
        constants = dict(program.constants)
        for name, slots, attrs, o in program._steps:
            code = _FORWARD_CODES.get(name)
            if name == "sum" and not attrs.get("keepdims") and attrs.get("axis") in (None, 0):
                code = _SUM
            if name == "pow":
                exponent = constants.get(slots[1])
                if exponent is None or exponent.size != 1 or float(exponent) == 0:
                    return None  # a power that is not a fixed number, or 0: numpy
                code = _POW
            if code is None or (attrs and code != _SUM) or not self._broadcasts(slots, o):
                return None
            rows.append(self._row(code, o, slots[0], slots[-1] if len(slots) > 1 else -1))
        self.backward_from = len(rows)
        for op, slots, _, o, i, s in program._sweep:
            name = op.name
            other = slots[1 - i] if len(slots) == 2 else -1
            if name == "add" or (name == "sub" and i == 0):
                rows.append(self._row(_ACC, s, o, -1, sign=1))
            elif name == "sub":
                rows.append(self._row(_ACC, s, o, -1, sign=-1))
            elif name == "neg":
                rows.append(self._row(_ACC, s, o, -1, sign=-1))
            elif name == "mul":
                rows.append(self._row(_ACC, s, o, other, sign=1))
            elif name == "sum":
                rows.append(self._row(_ACC, s, o, -1, sign=1))
            elif name == "softplus":
                rows.append(self._row(_ACC_SOFTPLUS, s, o, slots[0]))
            elif name == "pow" and i == 0:
                rows.append(self._row(_ACC_POW, s, o, slots[0], c=slots[1]))
            else:
                return None
        if self.backward_from == len(rows):
            return None
        self.code = np.array(rows, dtype=np.int64)
        self.mem = np.zeros(at, dtype=dtype)
        self.g = np.zeros(at, dtype=dtype)
        self.root = self.offsets[program.root][0]
        for slot, data in program.constants:
            start, size = self.offsets[slot]
            self.mem[start : start + size] = np.reshape(data, -1)
        flat = program.values_flat
        n_targets = sum(size for _, _, shape in program.targets for size in [math.prod(shape)])
        targets = {slot for slot, _, _ in program.targets}
        for slot, t in program.lives:
            if flat is not None and slot in targets:
                continue  # read with the other targets, from the flat vector, in one copy
            start, size = self.offsets[slot]
            if size == 1:
                self.scalars.append((start, t))
            else:
                self.vectors.append((self.mem[start : start + size], t))
        for slot, k, view in program.binds:
            start, size = self.offsets[slot]
            self.inputs.append((self.mem[start : start + size], k, view, traced[slot].shape))
        self.values = [
            self.mem[start : start + size].reshape(traced[slot].shape)
            for slot in program.outputs
            for start, size in [self.offsets[slot]]
        ]
        self.n_targets = n_targets
        return self

    def _broadcasts(self, slots: tuple[int, ...], o: int) -> bool:
        sizes = {self.offsets[s][1] for s in (*slots, o)} - {1}
        return len(sizes) <= 1

    def _row(self, code: int, o: int, a: int, b: int, sign: int = 1, c: int = -1) -> list[int]:
        o_at, o_n = self.offsets[o]
        a_at, a_n = self.offsets[a]
        b_at, b_n = self.offsets[b] if b >= 0 else (0, 0)
        c_at = self.offsets[c][0] if c >= 0 else 0
        return [code, o_at, o_n, a_at, a_n, b_at, b_n, sign, c_at]

    def run(self, arrays: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The program's outputs and gradients, as :meth:`Program.run` returns them."""
        program, mem, g = self.program, self.mem, self.g
        assert program is not None and program.grads_into is not None
        for into, k, view, _ in self.inputs:
            into[...] = view(arrays[k]).reshape(into.shape)
        if program.values_flat is not None:
            mem[: self.n_targets] = program.values_flat
        for start, t in self.scalars:
            mem[start] = t.data
        for into, t in self.vectors:
            into[...] = t.data.reshape(into.shape)
        _small_replay(self.code, mem, g, self.backward_from, self.root)
        if program.grads_flat is not None:
            program.grads_flat[...] = g[: self.n_targets]
        else:
            for (slot, _, shape), into in zip(program.targets, program.grads_into, strict=True):
                start, size = self.offsets[slot]
                into[...] = g[start : start + size].reshape(shape)
        return self.values, program.grads_into


# ---------------------------------------------------------------------------------------
# The numba replay of programs of matrix layers
# ---------------------------------------------------------------------------------------

#: OpenBLAS multiplies a small matrix by the transpose of a C-ordered one about a quarter
#: slower than when the first matrix is in Fortran order. Below this many multiply-adds
#: (a batch of 64 through 64 x 128 weights), a slope that is multiplied so (``g @ W.T``,
#: the rule of ``x @ W`` for ``x``) is copied into Fortran order first: the copy costs
#: less than it saves. (Bigger products run at full speed either way.)
TRANSPOSED_MAX_WORK = 1 << 20

# The pseudo-instruction of LayerProgram's table that numpy runs between two numba calls:
# ``out = exp(a)`` (numpy's exp, as the op table's, for the same numbers).
_EXP = -1


class LayerProgram:
    """A :class:`Program` of matrix layers replayed by a few numba calls.

    The layers of an MLP (``relu(x @ W + b)``, then the softmax cross-entropy) are a
    dozen BLAS products and a few loops per step; called from Python, each numpy call
    costs about a microsecond on top of its work, and so does each loop's call. Here
    the whole step is the rows of an integer table that one numba function runs (see
    :func:`chainrule.kernels.layers`): the products are the same BLAS calls, the loops
    :mod:`chainrule.kernels`' own, with numpy's ``exp`` called between two stretches of
    the table. Every array is a run of numbers in one of five flat vectors: the trained
    values and their slopes (the trainer's vectors, so nothing is copied in or out), the
    program's scratch, and the two inputs (the batch and its targets).

    Made by :meth:`of` for a float64 program made of those steps only (matrix products,
    a bias added with or without ReLU, and the softmax cross-entropy as the loss, whose
    loop is float64 only); None otherwise (the numpy replay is used).
    """

    def __init__(self, program: Program, replay: Any) -> None:
        self.program = program
        self.replay = replay
        self.dtype = np.dtype(np.float64)
        self.desc: list[tuple[int, int, int, int]] = [(2, 0, 1, 1)]  # 0: a number, unused
        self.scratch_size = 1
        self.rows: list[list[int]] = []
        self.stored_as: dict[int, int] = {}  # slot -> descriptor of its value
        self.slope_of: dict[int, int] = {}  # slot -> descriptor of its gradient
        self.transposed: dict[int, int] = {}  # descriptor -> its copy stored transposed
        self.made_by_rule: set[int] = set()  # descriptors a ReLU rule writes
        self.offsets: dict[int, int] = {}  # target slot -> its offset in the flat vectors
        self.inputs: list[tuple[int, np.dtype]] = []  # (which input, its dtype)
        self.forward_end = 0
        self.code = np.zeros((0, 6), dtype=np.int64)
        self.table = np.zeros((0, 4), dtype=np.int64)
        self.scratch = np.zeros(1)
        self.forward_segments: list[tuple[int, int, Any]] = []
        self.segments: list[tuple[int, int, Any]] = []
        self.values: list[np.ndarray] = []
        self._constants: list[tuple[int, np.ndarray]] = []  # (descriptor, value)
        # compile(fn)'s vectors of values and slopes (None: the trainer's), the inputs
        # copied into the first (which input, where, how many numbers), and the
        # gradients handed out (views into the second).
        self.own: tuple[np.ndarray, np.ndarray] | None = None
        self.copied: list[tuple[int, int, int]] = []
        self.gradients: list[np.ndarray] = []
        self._empty = np.zeros(0)

    # -- building ----------------------------------------------------------------------

    @classmethod
    def of(cls, program: Program, inputs: Sequence[np.ndarray]) -> LayerProgram | None:
        """The numba replay of ``program`` (traced on ``inputs``), or None.

        The targets' values and slopes are the trainer's flat vectors when it set them
        (``program.values_flat``, ``grads_flat`` and ``grads_into`` views into the
        latter); else targets passed as inputs (:func:`compile`'s arguments) are copied
        into a vector of the program's own at each call, and their gradients are views
        into another."""
        trainer = program.values_flat is not None
        if (
            not program.targets
            or (trainer and (program.grads_flat is None or program.grads_into is None))
            or (not trainer and program.grads_into is not None)
        ):
            return None
        replay = _kernels.layers()
        if replay is None:
            return None
        self = cls(program, replay)
        try:
            self._lay_out(inputs)
            self._forward()
            self._backward()
            self._finish()
        except _Unsupported:
            return None
        return self

    def _lay_out(self, inputs: Sequence[np.ndarray]) -> None:
        """Place the leaves: the targets in the flat vectors, the inputs, the constants."""
        program, traced = self.program, self.program._traced
        dtypes = {traced[slot].dtype for slot in traced}
        if len(dtypes) != 1:
            raise _Unsupported
        (self.dtype,) = dtypes
        if self.dtype not in _LOOPED:
            raise _Unsupported
        at = 0
        for slot, _, shape in program.targets:
            self.offsets[slot] = at
            self.stored_as[slot] = self._describe(0, at, shape)
            at += math.prod(shape)
        if program.values_flat is None:  # compile(fn): vectors of its own
            self.own = (np.empty(at, dtype=self.dtype), np.zeros(at, dtype=self.dtype))
            if program.lives:
                raise _Unsupported  # a tensor captured by the function, read at each call
        elif at != program.values_flat.size or program.values_flat.dtype != self.dtype:
            raise _Unsupported
        elif any(slot not in self.offsets for slot, _ in program.lives):
            raise _Unsupported  # a tensor read at each call that is not trained
        for slot, k, view in program.binds:
            base = inputs[k]
            if view(base) is not base or any(k == seen for seen, _ in self.inputs):
                raise _Unsupported  # an input used whole, once
            if slot in self.offsets:  # a target passed in: copied into the values
                if self.own is None:
                    raise _Unsupported
                self.copied.append((k, self.offsets[slot], base.size))
                continue
            if len(self.inputs) == 2:
                raise _Unsupported  # (two input vectors)
            self.stored_as[slot] = self._describe(3 + len(self.inputs), 0, base.shape)
            self.inputs.append((k, base.dtype))
        if self.own is not None and len(self.copied) != len(program.targets):
            raise _Unsupported
        for slot, data in program.constants:
            d = self.stored_as[slot] = self._new(data.shape)
            self._constants.append((d, data))

    def _describe(self, vector: int, at: int, shape: tuple[int, ...]) -> int:
        """A new descriptor: ``shape`` (at most two axes) at ``at`` in ``vector``."""
        if len(shape) > 2:
            raise _Unsupported
        rows, cols = (1, 1) if not shape else (1, shape[0]) if len(shape) == 1 else shape
        self.desc.append((vector, at, rows, cols))
        return len(self.desc) - 1

    def _new(self, shape: tuple[int, ...], transposed: bool = False) -> int:
        """A new array of ``shape`` in the scratch vector (stored as its transpose)."""
        if transposed:
            shape = shape[::-1]
        d = self._describe(2, self.scratch_size, shape)
        self.scratch_size += math.prod(shape)
        return d

    def _emit(self, op: int, out: int, a: int = 0, b: int = 0, c: int = 0, flags: int = 0) -> None:
        self.rows.append([op, out, a, b, c, flags])

    def _value(self, slot: int) -> int:
        d = self.stored_as.get(slot)
        if d is None:
            raise _Unsupported
        return d

    def _forward(self) -> None:
        program, traced = self.program, self.program._traced
        K = _kernels
        added_in_relu = {add for add, _, _ in program._bias_relus.values()}
        for name, slots, attrs, o in program._steps:
            if o in program._chains:
                chain = program._chains[o]
                if not chain.looped or o != program.root:
                    raise _Unsupported
                z, t = self._value(chain.z), self._value(chain.t)
                shape = traced[chain.z].shape
                shifted, e = self._new(shape), self._new(shape)
                self._emit(K.ROW_SHIFT, shifted, z)
                self._emit(_EXP, e, shifted)
                value = self.stored_as[o] = self._new(())
                self._emit(K.CROSS_ENTROPY, value, shifted, e, t)
                self.stored_as[chain.lp] = e  # log p, written over exp(shifted)
                continue
            if o in program._fused_away or o in added_in_relu:
                continue
            if o in program._bias_relus:
                add, z, b = program._bias_relus[o]
                zd = self._value(z)
                self._emit(K.BIAS_RELU, zd, self._value(b))
                self.stored_as[add] = self.stored_as[o] = zd
                continue
            if attrs:
                raise _Unsupported
            if name == "matmul" and all(traced[s].ndim == 2 for s in (*slots, o)):
                a, b = slots
                out = self.stored_as[o] = self._new(traced[o].shape)
                self._emit(K.DOT, out, self._value(a), self._value(b))
            elif (
                name == "add"
                and program._into.get(o) == slots[0]
                and traced[o].ndim == 2
                and traced[slots[1]].shape == traced[o].shape[1:]
            ):
                zd = self._value(slots[0])
                self._emit(K.BIAS_ADD, zd, self._value(slots[1]))
                self.stored_as[o] = zd
            else:
                raise _Unsupported
        self.forward_end = len(self.rows)

    def _slope(self, slot: int) -> int:
        """The descriptor that receives the gradient of ``slot``: its run of the slopes
        vector for a target, else a new array."""
        if slot in self.offsets:
            d = self._describe(1, self.offsets[slot], self.program._traced[slot].shape)
        else:
            d = self._new(self.program._traced[slot].shape)
        self.slope_of[slot] = d
        return d

    def _backward(self) -> None:
        program, traced, K = self.program, self.program._traced, _kernels
        lp_chains = {chain.lp: chain for chain in program._chains.values()}
        summed = {bias for _, bias in program._relu_sums.values()}
        for op, slots, attrs, o, i, s in program._sweep:
            if o in program._chains or (o in program._fused_away and o not in lp_chains):
                continue
            if s in summed and op.name == "add":
                continue
            if program._gets[s] > 1:
                raise _Unsupported  # a slope added to from two places
            name = op.name if not attrs else ""  # (the ops below take no settings)
            if o in lp_chains:
                chain = lp_chains[o]
                out = self._slope(s)
                self._emit(_EXP, out, self._value(chain.lp))
                self._emit(K.CROSS_ENTROPY_RULE, out, self._value(chain.t))
            elif o in program._relu_sums:
                _, bias = program._relu_sums[o]
                out, total = self._slope(s), self._slope(bias)
                self._emit(K.RELU_RULE_SUM, out, self._grad(o), self._value(o), total)
                self.made_by_rule.add(out)
            elif name == "relu":
                out = self._slope(s)
                self._emit(K.RELU_RULE, out, self._grad(o), self._value(o))
                self.made_by_rule.add(out)
            elif name == "add":
                if traced[s].shape == traced[o].shape and s not in self.offsets:
                    self.slope_of[s] = self._grad(o)  # passed on as it is
                elif i == 1 and traced[o].ndim == 2 and traced[s].shape == traced[o].shape[1:]:
                    if traced[o].shape[1] < 2:
                        raise _Unsupported  # numpy adds one column pairwise
                    self._emit(K.COLUMN_SUM, self._slope(s), self._grad(o))
                else:
                    raise _Unsupported
            elif name == "matmul":
                a, b = slots
                g = self._grad(o)
                if i == 0:
                    m, n = traced[o].shape
                    g, flipped = self._maybe_transposed(g, m * n * traced[s].shape[1])
                    out = self._slope(s)  # g @ b.T
                    self._emit(K.DOT, out, g, self._value(b), flags=(1 if flipped else 0) | 2)
                else:
                    g, flipped = self.transposed.get(g, g), g in self.transposed
                    out = self._slope(s)  # a.T @ g
                    self._emit(K.DOT, out, self._value(a), g, flags=1 | (2 if flipped else 0))
            else:
                raise _Unsupported
        if len(self.rows) == self.forward_end:
            raise _Unsupported

    def _grad(self, slot: int) -> int:
        d = self.slope_of.get(slot)
        if d is None:
            raise _Unsupported
        return d

    def _maybe_transposed(self, g: int, work: int) -> tuple[int, bool]:
        """``g``, or its copy stored transposed (see :data:`TRANSPOSED_MAX_WORK`) for a
        product of ``work`` multiply-adds; and whether it is the copy."""
        if g in self.transposed:
            return self.transposed[g], True
        if g not in self.made_by_rule or work > TRANSPOSED_MAX_WORK:
            return g, False
        _, _, rows, cols = self.desc[g]
        copy = self.transposed[g] = self._new((rows, cols), transposed=True)
        self._emit(_kernels.TRANSPOSE, copy, g)
        return copy, True

    def _finish(self) -> None:
        """The tables, the scratch vector, and the stretches of the table between numpy's
        calls of exp."""
        grads = self.program.grads_flat if self.own is None else self.own[1]
        for slot, _, shape in self.program.targets:
            if slot not in self.slope_of:  # a target the loss does not reach: slope 0
                at = self.offsets[slot]
                grads[at : at + math.prod(shape)] = 0
        self._pack()
        self.code = np.array(self.rows, dtype=np.int64)
        self.table = np.array(self.desc, dtype=np.int64)
        self.scratch = np.zeros(self.scratch_size, dtype=self.dtype)
        self._empty = np.zeros(0, dtype=self.dtype)
        for d, data in self._constants:
            self._view(d)[...] = np.reshape(data, self._view(d).shape)
        segments: list[tuple[int, int, Any]] = []
        start = 0
        for row, (op, out, a, *_) in enumerate(self.rows):
            if op == _EXP:
                segments.append((start, row, (self._view(a), self._view(out))))
                start = row + 1
        segments.append((start, len(self.rows), None))
        self.segments = segments
        self.forward_segments = [seg for seg in segments if seg[0] < self.forward_end]
        last = self.forward_segments[-1]
        self.forward_segments[-1] = (last[0], min(last[1], self.forward_end), None)
        traced = self.program._traced
        self.values = [
            self._view(self.stored_as[slot]).reshape(traced[slot].shape)
            for slot in self.program.outputs
        ]
        if self.own is not None:
            self.gradients = [
                grads[at : at + math.prod(shape)].reshape(shape)
                for slot, _, shape in self.program.targets
                for at in [self.offsets[slot]]
            ]

    def _pack(self) -> None:
        """Lay the scratch arrays out again so that an array no row reads any more lends
        its room to one written later (the step's arrays then take about half the
        memory, and stay in the processor's cache). The constants and the outputs keep
        theirs throughout."""
        end = len(self.rows)
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for d, _ in self._constants:
            first[d], last[d] = -1, end
        for row, (_, *operands, _) in enumerate(self.rows):
            for d in operands:
                if d and self.desc[d][0] == 2:
                    first.setdefault(d, row)
                    last[d] = max(last.get(d, row), row)
        for slot in self.program.outputs:
            d = self.stored_as.get(slot, 0)
            if d in last:
                last[d] = end
        live: list[tuple[int, int, int]] = []  # (offset, size, last row), by offset
        size = 1  # (0: the unused number)
        for d in sorted(first, key=first.__getitem__):
            live = [block for block in live if block[2] >= first[d]]
            _, _, rows, cols = self.desc[d]
            need, at = rows * cols, 1
            for offset, taken, _ in live:  # the first gap that fits
                if offset - at >= need:
                    break
                at = max(at, offset + taken)
            live.append((at, need, last[d]))
            live.sort()
            self.desc[d] = (2, at, rows, cols)
            size = max(size, at + need)
        self.scratch_size = size

    def _view(self, d: int) -> np.ndarray:
        """The scratch array that descriptor ``d`` names."""
        vector, at, rows, cols = self.desc[d]
        if vector != 2:
            raise _Unsupported  # an output that is not the program's own array
        return self.scratch[at : at + rows * cols].reshape(rows, cols)

    # -- replay ------------------------------------------------------------------------

    def run(
        self, arrays: Sequence[np.ndarray], backward: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """As :meth:`Program.run`."""
        program = self.program
        flat = []
        for k, dtype in self.inputs:
            x = arrays[k]
            if x.dtype != dtype or not (x.flags.c_contiguous and x.flags.writeable):
                x = np.array(x, dtype=dtype)  # (numba's loops take one kind of array)
            flat.append(x.reshape(-1))
        while len(flat) < 2:
            flat.append(self._empty)
        in0, in1 = flat
        if self.own is None:
            values, slopes, grads = program.values_flat, program.grads_flat, program.grads_into
        else:
            (values, slopes), grads = self.own, self.gradients
            for k, at, size in self.copied:
                values[at : at + size] = arrays[k].reshape(-1)
        code, table, scratch, replay = self.code, self.table, self.scratch, self.replay
        for start, stop, exp in self.segments if backward else self.forward_segments:
            replay(code, table, start, stop, values, slopes, scratch, in0, in1)
            if exp is not None:
                np.exp(exp[0], out=exp[1])
        return self.values, grads if backward else None


class _Unsupported(Exception):
    """A step that :class:`LayerProgram` does not replay (the numpy replay is used)."""


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
        key = (tuple([(a.shape, a.dtype) for a in arrays]), wrt, grad_mode)
        found = self._programs.get(key)
        if found is not None and all(t.requires_grad for t in found[1]):
            program = found[0]
        else:
            program = self._trace(args, arrays, wrt, grad_mode, key, name)
        values, grads = program.run(arrays, backward=grad_mode)
        loss = float(values[0].reshape(()))
        if grads is None:
            return loss, None
        return loss, tuple([g.copy() for g in grads])  # arrays of their own, as .grad is

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
        if grad_mode:  # a function of matrix layers: a few numba calls (or None)
            program.layers = LayerProgram.of(program, arrays)
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
        #: Arrays (one per parameter) that every program writes the slopes into; None:
        #: the slopes are returned in arrays of the program's own.
        self.grads_into: list[np.ndarray] | None = None
        #: The flat vectors of the parameters' values and of their slopes, when the
        #: parameters' arrays and ``grads_into`` are views into them, in order.
        self.flat: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        #: Whether a small program may replay on numba (see :class:`SmallProgram`).
        self.small = True
        self._programs: dict[tuple[Any, ...], Program] = {}

    def _fn(self, X: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        out = self.model(X)
        return self.loss(out, y), out

    def __call__(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, list[Any]]:
        key = (X.shape, X.dtype, y.shape, y.dtype)  # (dtypes hash by value)
        program = self._programs.get(key)
        if program is None:
            program = self._trace(X, y, key)
        (loss, out), grads = program.run((X, y))
        assert grads is not None
        return out, float(loss.reshape(())), grads

    def values_moved(self, values: np.ndarray) -> None:
        """The parameters' values now live in the flat vector ``values`` (and their
        arrays are views into it): programs that read the values in one copy read it."""
        self.flat = (values, self.flat[1])
        for program in self._programs.values():
            if program.values_flat is not None:
                program.values_flat = values

    def final_pass(
        self, X: np.ndarray, y: np.ndarray, chunk: int | None, reduction: str | None
    ) -> tuple[np.ndarray, float] | None:
        """The outputs for every row of ``X`` and the loss over them, replayed forward
        only in chunks of ``chunk`` rows (None: all at once) by the programs of training:
        the chunks have the batches' shapes. The chunks' losses are added up (``reduction``
        ``"sum"``) or weighted by their rows (``"mean"``); None (a loss of the user's
        own, which may not add up): returns None, for the eager pass.

        >>> from chainrule import losses, nn
        >>> model = nn.MLP([2, 3, 2], activation="relu", seed=0)
        >>> step = TrainingStep(model, losses.cross_entropy, model.parameters())
        >>> X, labels = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([0, 1, 1])
        >>> onehot = encoded_target("cross_entropy", labels, 2)
        >>> outputs, loss = step.final_pass(X, onehot, 2, "mean")
        >>> outputs.shape, step.traces  # chunks of 2 rows and of 1 row: two programs
        ((3, 2), 2)
        >>> abs(loss - losses.cross_entropy(model(X), labels).item()) < 1e-12
        True
        """
        n = len(X)
        if reduction not in ("sum", "mean") or not n:
            return None
        chunk = n if chunk is None or chunk >= n else chunk
        outputs: np.ndarray | None = None
        total = 0.0
        for start in range(0, n, chunk):
            xb, yb = X[start : start + chunk], y[start : start + chunk]
            key = (xb.shape, xb.dtype, yb.shape, yb.dtype)
            program = self._programs.get(key)
            if program is None:
                program = self._trace(xb, yb, key)
            (loss, part), _ = program.run((xb, yb), backward=False)
            if outputs is None:
                outputs = np.empty((n, *part.shape[1:]), dtype=part.dtype)
            outputs[start : start + len(part)] = part
            value = float(loss.reshape(()))
            total += value if reduction == "sum" else value * len(part)
        assert outputs is not None
        return outputs, total if reduction == "sum" else total / n

    def _trace(self, X: np.ndarray, y: np.ndarray, key: tuple[Any, ...]) -> Program:
        where = "train(compile=True)"
        program, result = Program.trace(
            self._fn, (X, y), (X, y), self.params, where, grads_into=self.grads_into
        )
        if self.check_batches:
            rows = len(X)
            for _, data in program.constants:
                if data.ndim and data.shape[0] == rows and data.flags.writeable and rows > 1:
                    raise CompileError(
                        f"{where}: the model or the loss computes an array of shape "
                        f"{data.shape} from the batch outside the graph (with numpy), so a "
                        "replay could not follow the batch; train without compile=True"
                    )
        if self.grads_into is not None:
            program.values_flat, program.grads_flat = self.flat
            if self.small:
                program.small = SmallProgram.of(program)
                if program.small is None:
                    program.layers = LayerProgram.of(program, (X, y))
        self._programs[key] = program
        self.traces += 1
        return program


def encoded_target(
    loss_name: str, y: np.ndarray, outputs: int, dtype: np.dtype | type = np.float64
) -> np.ndarray:
    """The target as the compiled step feeds it to the loss: class labels become one-hot
    rows for ``cross_entropy`` (the same numbers the loss makes from them, made once
    rather than outside the graph at every step), in the outputs' ``dtype``; any other
    target is ``y`` itself.

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
    onehot = np.zeros((len(y), outputs), dtype=dtype)
    onehot[np.arange(len(y)), labels.astype(np.intp)] = 1.0
    return onehot
