"""Running a model on a data set for the explainer: the forward pass and the loss node."""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.losses import Loss, get_loss
from chainrule.nn.module import Module
from chainrule.tensor import Tensor, broadcast_to, no_grad


def forward(model: Module, data: Dataset, record_inputs: bool = False) -> Tensor:
    """The model's output for every row of ``data``.

    A formula reads its inputs by name, so the graph's input leaves carry the data's
    names; a layer model gets the (n, d) matrix as one leaf, named after the single input
    (``dosage``) or ``x`` when there are several.

    The engine records an operation only when an input needs a gradient, so in a plain
    pass ``dosage ** 2`` is a nameless array. With ``record_inputs`` a formula's inputs
    are leaves that need a gradient, so every operation on them is in the graph too and
    the chain rule can write ``dosage^2`` (see :func:`recorded_formula`).
    """
    if not isinstance(data, Dataset):
        raise ChainruleError(f"the explainer needs a Dataset, not {type(data).__name__}")
    if "inputs" in dir(type(model)):  # a Formula: its inputs by name
        out = model(dict(data.inputs))
        if record_inputs:
            recorded = recorded_formula(model, data)
            if recorded.shape == out.shape and np.array_equal(
                recorded.data, out.data, equal_nan=True
            ):
                return recorded
        return out
    names = data.input_names
    return model(Tensor(data.X, name=names[0] if len(names) == 1 else "x"))


def recorded_formula(model: Any, data: Dataset) -> Tensor:
    """A formula's output computed from input leaves that need a gradient, so that every
    operation, those on the inputs alone too, is recorded with the learner's names.

    A Formula copies the values of the Tensors it is given into fresh constant leaves, so
    the formula's lines are built here from the parsed form it keeps
    (:attr:`~chainrule.formula.Formula.assignments`), with the engine's own operators and
    the model's own parameters, as :meth:`~chainrule.formula.Formula.trace` builds them.
    :func:`forward` uses the result only when it equals the model's own output.

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> out = recorded_formula(Formula("p = w * dosage ** 2", inputs=["dosage"]), dosage())
    >>> out.op.name, [t.name or t.op.name for t in out.inputs], out.inputs[1].inputs[0].name
    ('mul', ['w', 'pow'], 'dosage')
    """
    leaves = {
        name: Tensor(np.asarray(data.inputs[name]), requires_grad=True, name=name)
        for name in model.inputs
    }
    out = model(leaves)
    if any(id(leaf) in graph_nodes(out) for leaf in leaves.values()):
        return out  # the formula kept the leaves it was given: every operation is recorded
    from chainrule.formula import Name

    n = data.n
    nodes: dict[str, Any] = {**leaves, **dict(model.named_parameters())}
    for line in model.assignments:
        value = _build(line.tree, nodes)
        if not isinstance(value, Tensor):
            value = Tensor(value)  # a line of numbers only
        if line.name == model.output_name and value.shape != (n,):
            value = broadcast_to(value, (n,))
        elif isinstance(line.tree, Name):
            value = value.reshape(value.shape)  # ``y = x1``: y gets its own node
        value.name = line.name
        nodes[line.name] = value
    return nodes[model.output_name]


def _build(expr: Any, nodes: dict[str, Any]) -> Any:
    """One right-hand side of a formula, with the engine's operators and functions."""
    from chainrule.formula import FUNCTIONS, Binary, Call, Name, Negate, Number

    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Name):
        return nodes[expr.name]
    if isinstance(expr, Negate):
        return -_build(expr.operand, nodes)
    if isinstance(expr, Binary):
        left, right = _build(expr.left, nodes), _build(expr.right, nodes)
        if not isinstance(left, Tensor) and not isinstance(right, Tensor):
            left = Tensor(left)  # two numbers: still one engine op
        return _OPERATORS[expr.op](left, right)
    assert isinstance(expr, Call)
    return FUNCTIONS[expr.function].apply(*(_build(arg, nodes) for arg in expr.args))


_OPERATORS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}


def loss_node(
    model: Module, data: Dataset, loss: str | Loss, record_inputs: bool = False
) -> Tensor:
    """The loss of ``model`` on ``data`` as a graph node named as the learner reads it.

    ``loss`` is a name (``"ssr"``) or a function ``(predictions, target) -> Tensor``;
    ``record_inputs`` is passed to :func:`forward`.
    """
    function = loss if callable(loss) else get_loss(loss)
    out = function(forward(model, data, record_inputs), data.target)
    if not out.name:
        out.name = getattr(loss, "__name__", None) or "loss"
    return out


@contextlib.contextmanager
def every_parameter_recorded(model: Module) -> Iterator[None]:
    """Make every parameter (frozen ones too) record the graph, then restore the flags.

    A frozen parameter still has a derivative; the explainer shows it all the same.
    """
    parameters = model.parameters()
    flags = [p.requires_grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad = True
        yield
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad = flag


@contextlib.contextmanager
def values_restored(model: Module) -> Iterator[None]:
    """Put every parameter's values back afterwards, even when an error interrupts."""
    saved = [(p, p.data.copy()) for p in model.parameters()]
    try:
        yield
    finally:
        for p, data in saved:
            p.data[...] = data


def graph_nodes(root: Tensor) -> set[int]:
    """The ids of every node that ``root`` was computed from (itself included)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.extend(t.inputs)
    return seen


def unreached(model: Module, data: Dataset, loss: str | Loss) -> list[str]:
    """The names of the model's parameters that the loss does not depend on at all: no
    path in the graph leads from the loss to them.

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> unreached(Formula("x1 = w1 * dosage\\np = 2 * dosage + b", inputs=["dosage"]),
    ...           dosage(), "ssr")
    ['w1']
    """
    with every_parameter_recorded(model):
        reached = graph_nodes(loss_node(model, data, loss))
    return [name for name, p in model.named_parameters() if id(p) not in reached]


def _state(x: float) -> str:
    if math.isnan(x):
        return "NaN (not a number)"
    return "infinite" if x > 0 else "infinite (-inf)"


def _point(data: Dataset, p: int) -> str:
    """``data point 2 (dosage = 0.5)``: 1-based, with up to three of its inputs."""
    shown = [f"{name} = {float(column[p]):g}" for name, column in list(data.inputs.items())[:3]]
    more = ", ..." if len(data.inputs) > 3 else ""
    return f"data point {p + 1} ({', '.join(shown)}{more})"


def _first_bad(values: np.ndarray, data: Dataset) -> tuple[float, str] | None:
    """The first value that is not a finite number, and where (the data point, if per point)."""
    flat = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return None
    if flat.ndim >= 1 and flat.shape[0] == data.n:
        rows = np.flatnonzero(bad.reshape(data.n, -1).any(axis=1))
        p = int(rows[0])
        row = flat[p].reshape(-1)
        return float(row[~np.isfinite(row)][0]), f" at {_point(data, p)}"
    return float(flat[bad][0]), ""


def where_not_finite(model: Module, data: Dataset, loss: str | Loss) -> str | None:
    """Where the first value that is not a finite number appears when ``model`` runs on
    ``data``: a formula's line and the data point, or the output of a layer model; None
    when the loss is a finite number.

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> model = Formula("x1 = log(dosage)\\npredicted = w * x1 + b", inputs=["dosage"])
    >>> print(where_not_finite(model, dosage(), "ssr"))
    formula line 1 (x1 = log(dosage)) is infinite (-inf) at data point 1 (dosage = 0), so the loss SSR is infinite
    """  # noqa: E501 (a doctest's output)
    with no_grad(), np.errstate(all="ignore"):
        out = loss_node(model, data, loss)
        value = float(np.asarray(out.data).reshape(-1)[0])
        if math.isfinite(value):
            return None
        then = f"so the loss {out.name} is {_state(value)}"
        if "inputs" in dir(type(model)):  # a Formula: its lines in order
            nodes = model.trace(dict(data.inputs))  # type: ignore[attr-defined]
            for line in model.assignments:  # type: ignore[attr-defined]
                found = _first_bad(nodes[line.name].data, data)
                if found is not None:
                    where = f"formula line {line.line} ({line.name} = {line.expression})"
                    return f"{where} is {_state(found[0])}{found[1]}, {then}"
        else:
            found = _first_bad(forward(model, data).data, data)
            if found is not None:
                return f"the model's output is {_state(found[0])}{found[1]}, {then}"
        return f"every prediction is a number, but the loss {out.name} is {_state(value)}"
