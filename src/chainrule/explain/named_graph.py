"""The graph of named nodes under a loss: what the chain rule walks.

The engine records every operation; the learner names only a few values (the loss
``SSR``, ``predicted``, ``y1``, ``x1``, the parameters, the inputs, the target). A named
node's *operands* are the named nodes reached by walking down through unnamed ones, so
``predicted = w3 * y1 + w4 * y2 + b3`` has the operands ``w3, y1, w4, y2, b3`` whatever
operations the engine recorded between them. A *unit* of a node is one of its scalars
per data point (``hidden.a[1]``) or one entry of a parameter (``hidden.weight[0,1]``).

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> from chainrule.explain.model_graph import loss_node
>>> model = Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 1.0, "b": 0.0})
>>> root = loss_node(model, dosage(), "ssr")
>>> graph = NamedGraph(root, 3, "observed", ("dosage",))
>>> [graph.names[id(t)] for t in graph.operands[id(root)]]
['observed', 'predicted']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from chainrule.nn.module import Parameter, scalar_name
from chainrule.tensor import Tensor


def named_operands(node: Tensor) -> tuple[Tensor, ...]:
    """The named nodes under ``node``, reached through unnamed ones, in written order."""
    found: list[Tensor] = []
    seen: set[int] = set()
    stack = list(reversed(node.inputs))
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.name is not None:
            found.append(t)
        elif t.op is not None:
            stack.extend(reversed(t.inputs))
    return tuple(found)


def interior(node: Tensor) -> list[Tensor]:
    """The unnamed operations between ``node`` and its named operands, inputs first."""

    def unnamed_operations(t: Tensor) -> list[Tensor]:
        return [i for i in t.inputs if i.name is None and i.op is not None]

    return children_first(node, unnamed_operations)


def children_first(root: Tensor, children: Callable[[Tensor], Iterable[Tensor]]) -> list[Tensor]:
    """``root`` and every node below it through ``children``, each after its children.

    A depth-first search with an explicit stack, so a deep graph cannot hit the recursion
    limit; the children are pushed in the order given, so the last one is visited first.
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:  # every child is already in ``order``
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        stack.extend((child, False) for child in children(t))
    return order


class NamedGraph:
    """The named nodes under the loss ``root``, their operands and their units."""

    def __init__(
        self, root: Tensor, n: int, target_name: str, input_names: tuple[str, ...]
    ) -> None:
        self.root, self.n, self.input_names = root, n, input_names
        self.operands: dict[int, tuple[Tensor, ...]] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) not in self.operands:
                self.operands[id(node)] = named_operands(node)
                stack.extend(self.operands[id(node)])
        self.names = {id(t): t.name for t in self.post_order()}
        for t in self.operands[id(root)]:  # the loss compares with the target: name it
            if t.op is None and not t.requires_grad:
                self.names[id(t)] = target_name

    def post_order(self) -> list[Tensor]:
        """Every named node, operands before the nodes that use them."""
        return children_first(self.root, lambda node: reversed(self.operands[id(node)]))

    # -- scalar nodes ------------------------------------------------------------------

    def per_point(self, t: Tensor) -> bool:
        """Whether ``t`` holds one row per data point (parameters never do)."""
        return not isinstance(t, Parameter) and t.ndim >= 1 and t.shape[0] == self.n

    def unit_shape(self, t: Tensor) -> tuple[int, ...]:
        return t.shape[1:] if self.per_point(t) else t.shape

    def units(self, t: Tensor) -> int:
        return int(np.prod(self.unit_shape(t), dtype=int))

    def label(self, t: Tensor, unit: int) -> str:
        """``x1``, ``hidden.a[1]`` or ``hidden.weight[0,1]``."""
        shape = self.unit_shape(t)
        name = self.names[id(t)]
        if int(np.prod(shape, dtype=int)) <= 1:
            return name
        if self.is_data_matrix(t):  # a layer model's input: its columns have names
            return self.input_names[unit]
        return scalar_name(name, tuple(int(i) for i in np.unravel_index(unit, shape)))

    def is_data_matrix(self, t: Tensor) -> bool:
        return (
            t.op is None
            and not isinstance(t, Parameter)
            and t.shape == (self.n, len(self.input_names))
            and len(self.input_names) > 1
        )
