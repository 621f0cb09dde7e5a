"""Running a model on a data set for the explainer: the forward pass and the loss node."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.losses import Loss, get_loss
from chainrule.nn.module import Module
from chainrule.tensor import Tensor, inplace, no_grad


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
        return recorded_formula(model, data) if record_inputs else model(dict(data.inputs))
    names = data.input_names
    return model(Tensor(data.X, name=names[0] if len(names) == 1 else "x"))


def recorded_formula(model: Any, data: Dataset) -> Tensor:
    """A formula's output computed from input leaves that need a gradient, so that every
    operation, those on the inputs alone too, is recorded with the learner's names
    (:meth:`~chainrule.formula.Formula.trace` keeps such inputs in the graph).

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
    return model(leaves)


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
            inplace(p)[...] = data


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
