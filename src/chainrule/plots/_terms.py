"""Reading the engine's recorded graph: the additive terms of an output, and their labels.

The squiggle's decomposition (StatQuest's blue ``w3 * y1`` curve, orange ``w4 * y2`` curve
and the ``+ b3`` shift) is not a second formula: it is found by walking the ``add``,
``sub`` and ``neg`` nodes that the engine recorded for the output, and the curves are the
values those nodes computed.

The engine records an operation only when one of its inputs needs a gradient (as PyTorch
does), so in a model's own forward pass ``dosage + 1`` or ``dosage ** 2`` is a bare array:
no name, no op, nothing to say it came from ``dosage``. :func:`recorder` traces a twin of
a formula model whose inputs are leaves that need a gradient, so that every operation,
the inputs' own too, is in the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from chainrule.formula import Formula
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


@dataclass(frozen=True, eq=False)
class Term:
    """One additive term of an output: ``sign * tensor``, with a readable label.

    Terms compare by identity (``eq=False``): a Tensor's ``==`` is elementwise, so
    comparing the fields would not say whether two terms are the same one.
    """

    label: str
    sign: float
    tensor: Tensor

    @property
    def values(self) -> np.ndarray:
        """The term's values as they enter the sum (the sign applied)."""
        return self.sign * np.asarray(self.tensor.data, dtype=np.float64)


def additive_terms(output: Tensor, open_named: bool = True) -> list[Term]:
    """The terms whose sum the engine computed as ``output`` (in the order written).

    Sums and differences are opened up; named ones too unless ``open_named`` is False (so
    ``s = a + b`` then ``y = s + c`` gives three terms, or two: ``s`` and ``c``). Anything
    else is one term.

    >>> import chainrule as cr
    >>> w = cr.tensor(2.0, requires_grad=True, name="w")
    >>> b = cr.tensor(1.0, requires_grad=True, name="b")
    >>> x = cr.tensor([1.0, 2.0], name="x")
    >>> [t.label for t in additive_terms(w * x - b)]
    ['w × x', '-b']
    """
    terms: list[Term] = []
    stack: list[tuple[Tensor, float]] = [(output, 1.0)]
    while stack:  # iterative, leftmost term first
        node, sign = stack.pop()
        name = node.op.name if node.op is not None else None
        if not open_named and node.name is not None and node is not output:
            name = None
        if name in ("add", "sub") and len(node.inputs) == 2:
            left, right = node.inputs
            stack.append((right, -sign if name == "sub" else sign))
            stack.append((left, sign))
        elif name == "neg" and node.inputs:
            stack.append((node.inputs[0], -sign))
        elif name == "broadcast_to" and node.inputs and node.name is None:
            stack.append((node.inputs[0], sign))
        else:
            text = describe(node)
            terms.append(Term(text if sign > 0 else f"-{wrapped_text(node, text)}", sign, node))
    return terms


def describe(node: Tensor, depth: int = 3) -> str:
    """A short label for a node: its name, else its op written over its inputs' labels.

    >>> import chainrule as cr
    >>> w = cr.tensor(2.0, requires_grad=True, name="w3")
    >>> describe(w * cr.tensor([1.0], name="y1"))
    'w3 × y1'
    """
    if node.name:
        return node.name
    if node.op is None:
        data = np.asarray(node.data)
        return f"{float(data.ravel()[0]):g}" if data.size == 1 else f"[{data.size} values]"
    if depth == 0 or not node.inputs:
        return node.op.name
    parts = [wrapped_text(t, describe(t, depth - 1)) for t in node.inputs]
    if node.op.name == "mul" and len(parts) == 2:
        return f"{parts[0]} × {parts[1]}"
    keys = ("a", "b") if len(parts) == 2 else ("x",)
    fields = dict(zip(keys, parts, strict=False))
    try:
        return node.op.expr.format(
            p="…", a=fields.get("a", "…"), b=fields.get("b", "…"), x=fields.get("x", parts[0])
        )
    except (KeyError, IndexError):  # pragma: no cover - every op's expr uses these keys
        return node.op.name


def wrapped_text(node: Tensor, text: str) -> str:
    """``text`` in parentheses when it is a sum or difference written out."""
    if node.name is None and node.op is not None and node.op.name in ("add", "sub"):
        return f"({text})"
    return text


def recorder(model: Module) -> Callable[[Mapping[str, float]], dict[str, Tensor]]:
    """A function that traces ``model`` (a formula) at one data point, every op recorded.

    It returns the named nodes, as :meth:`Formula.trace` does, of a twin built from the
    same text in which the inputs are parameters too (leaves that need a gradient) and
    the parameters hold the model's values. Each node is one number.

    >>> import chainrule as cr
    >>> values = {"w": 2.0, "b": 0.0}
    >>> model = cr.Formula("p = w * (dosage + 1) + b", inputs=["dosage"], values=values)
    >>> nodes = recorder(model)({"dosage": 0.5})
    >>> [t.label for t in additive_terms(nodes["p"])], float(nodes["p"].data)
    (['w × (dosage + 1)', 'b'], 3.0)
    """

    twin = Formula(model.text, inputs=[])
    for ref in model.scalars():
        twin.scalar(ref.name).set(ref.value)
    inputs, output = list(model.inputs), model.output_name

    def trace(point: Mapping[str, float]) -> dict[str, Tensor]:
        for name in inputs:
            twin.scalar(name).set(float(point.get(name, 0.0)))
        with np.errstate(all="ignore"):  # e.g. log(0) at the point 0: drawn as it is
            nodes = twin.trace({})
        # With no data the output is one number spread to one row: keep the number.
        out = nodes[output]
        if out.op is not None and out.op.name == "broadcast_to" and out.inputs[0].name is None:
            inner = out.inputs[0]
            inner.name = output
            nodes[output] = inner
        return nodes

    return trace
