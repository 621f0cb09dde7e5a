"""Running a model on a data set for the explainer: the forward pass and the loss node."""

from __future__ import annotations

import math

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.losses import Loss, loss_spec
from chainrule.nn.module import Module
from chainrule.tensor import Tensor, no_grad


def loss_node(
    model: Module, data: Dataset, loss: str | Loss, record_inputs: bool = False
) -> Tensor:
    """The loss of ``model`` on ``data`` as a graph node named as the learner reads it,
    through the model protocol (:meth:`~chainrule.nn.Module.loss_graph`).

    ``loss`` is a name (``"ssr"``) or a function ``(predictions, target) -> Tensor``;
    ``record_inputs``: operations on the inputs alone are recorded too (``dosage^2``).
    """
    if not isinstance(data, Dataset):
        raise ChainruleError(f"the explainer needs a Dataset, not {type(data).__name__}")
    spec = loss_spec(loss)
    return model.loss_graph(data, spec.function, spec.display, record_inputs)


def recording_twin(model: Module) -> Module:
    """A copy of ``model`` whose every parameter, frozen ones too, records the graph: a
    frozen parameter still has a derivative, and the explainer shows it all the same.
    The model itself is untouched."""
    twin = model.at()
    for p in twin.parameters():
        p.requires_grad = True
    return twin


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
    >>> unreached(Formula("p = w1 * dosage + b", inputs=["dosage"]), dosage(), "ssr")
    []
    """
    twin = recording_twin(model)
    reached = graph_nodes(loss_node(twin, data, loss))
    return [name for name, p in twin.named_parameters() if id(p) not in reached]


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
        nodes = model.named_nodes(data)
        for line in model.formula_lines:  # a formula's lines, in order
            found = _first_bad(nodes[line.name].data, data)
            if found is not None:
                where = f"formula line {line.line} ({line.name} = {line.expression})"
                return f"{where} is {_state(found[0])}{found[1]}, {then}"
        if not model.formula_lines:
            found = _first_bad(model.output_graph(data).data, data)
            if found is not None:
                return f"the model's output is {_state(found[0])}{found[1]}, {then}"
        return f"every prediction is a number, but the loss {out.name} is {_state(value)}"
