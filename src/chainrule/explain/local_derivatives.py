"""The local derivatives of the named graph: numbers from the engine, formulas from the
op table.

For an edge ``node -> operand`` of a :class:`~chainrule.explain.named_graph.NamedGraph`,
the unnamed operations between them are replayed on fresh leaves (the other named
operands held fixed, as a partial derivative needs) and the engine's :func:`gradients`
gives ``d node / d operand`` at every data point. Its formula is the op table's text for
each replayed operation, multiplied out by forward mode over the formulas
(:mod:`chainrule.explain.symbolic`).

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> from chainrule.explain.model_graph import loss_node, recording_twin
>>> from chainrule.explain.named_graph import NamedGraph
>>> model = recording_twin(Formula("predicted = w * dosage + b", inputs=["dosage"]))
>>> root = loss_node(model, dosage(), "ssr")
>>> graph = NamedGraph(root, 3, "observed", ("dosage",))
>>> w = model.parameter("w")
>>> local = LocalDerivatives(graph, w, 0)
>>> predicted = graph.operands[id(root)][1]
>>> [sym.text(local.formula(predicted, 0, e.operand, e.unit)) for e in local.edges(predicted, 0)]
['dosage']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chainrule.explain import symbolic as sym
from chainrule.explain.named_graph import NamedGraph, interior
from chainrule.nn.module import scalar_name
from chainrule.tensor import Tensor, apply, gradients


@dataclass(frozen=True)
class Edge:
    """One nonzero local derivative: ``d node[unit] / d operand[unit]`` at each point."""

    operand: Tensor
    unit: int
    values: np.ndarray
    per_point: bool


class LocalDerivatives:
    """The local derivatives of ``graph``'s edges on the way to ``target[target_unit]``
    (the parameter being explained), each computed once however many paths share it."""

    def __init__(self, graph: NamedGraph, target: Tensor, target_unit: int) -> None:
        self.graph, self.target, self.target_unit = graph, target, target_unit
        self._local: dict[tuple[int, int], list[Edge]] = {}
        self._replays: dict[int, tuple[Tensor, list[Tensor], list[Tensor]]] = {}
        # The named nodes from which the target can be reached: the only operands to vary.
        self.reach: set[int] = set()
        for node in graph.post_order():
            if node is target or any(id(m) in self.reach for m in graph.operands[id(node)]):
                self.reach.add(id(node))

    # -- local derivatives from the engine ---------------------------------------------

    def edges(self, node: Tensor, unit: int) -> list[Edge]:
        """The nonzero derivatives of ``node[unit]`` with respect to its operands' units."""
        key = (id(node), unit)
        if key not in self._local:
            self._local[key] = self._compute_local(node, unit)
        return self._local[key]

    def blocked_edges(self, node: Tensor, unit: int) -> list[Edge]:
        """The derivatives of ``node[unit]`` that are 0 at every data point at these
        values though not at others: edges of the network that the values close (a ReLU
        off at every point, an input 0 at every point, a unit whose output is 0 for the
        weights after it). Their ``values`` are the zeros; :meth:`edges` leaves them out.

        An edge is told from a pair of units that no operation joins (a weight's column
        feeds one unit of a layer) by the derivatives at random values of the operands.
        """
        if node.op is None or not any(id(m) in self.reach for m in self.graph.operands[id(node)]):
            return []
        rng = np.random.default_rng(0)
        with np.errstate(all="ignore"):
            anywhere = self._jacobians(node, unit, *self._replay(node, rng))
        here = {(id(e.operand), e.unit) for e in self.edges(node, unit)}
        return [
            Edge(m, v, np.zeros(self.graph.n), per_point)
            for m, values, per_point in anywhere
            for v in range(values.shape[1])
            if (id(m), v) not in here
            and (m is not self.target or v == self.target_unit)
            and np.any(values[:, v] != 0)
        ]

    def _replay(
        self, node: Tensor, rng: np.random.Generator | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``node`` recomputed from fresh leaves standing for the operands on a path.

        The other named operands are detached: held fixed, as a partial derivative needs.
        With ``rng`` every floating operand holds random values instead of its own (the
        replay is not kept).
        """
        if rng is None and id(node) in self._replays:
            return self._replays[id(node)]

        def value(m: Tensor) -> np.ndarray:
            if rng is None or not np.issubdtype(m.data.dtype, np.floating):
                return m.data
            return rng.standard_normal(m.data.shape).astype(m.data.dtype)

        operands = [m for m in self.graph.operands[id(node)] if id(m) in self.reach]
        leaves = [Tensor(value(m), requires_grad=True) for m in operands]
        made: dict[int, Tensor] = {id(m): leaf for m, leaf in zip(operands, leaves, strict=True)}
        for m in self.graph.operands[id(node)]:
            made.setdefault(id(m), m.detach() if rng is None else Tensor(value(m)))
        for t in interior(node):
            inputs = [made.get(id(i), i) for i in t.inputs]
            made[id(t)] = apply(t.op, *inputs, **t.attrs)  # type: ignore[arg-type]
        replay = (made[id(node)], operands, leaves)
        if rng is None:
            self._replays[id(node)] = replay
        return replay

    def _compute_local(self, node: Tensor, unit: int) -> list[Edge]:
        if node.op is None:
            return []
        edges = []
        for m, values, per_point in self._jacobians(node, unit, *self._replay(node)):
            for v in range(values.shape[1]):
                if m is self.target and v != self.target_unit:
                    continue
                column = values[:, v]
                if np.any(column != 0):
                    edges.append(Edge(m, v, column.copy(), per_point))
        return edges

    def _jacobians(
        self, node: Tensor, unit: int, out: Tensor, operands: list[Tensor], leaves: list[Tensor]
    ) -> list[tuple[Tensor, np.ndarray, bool]]:
        """For each operand of a replay of ``node``: ``d node[p, unit] / d operand`` as an
        (n, units of the operand) matrix, and whether it varies with the data point."""
        if not operands:
            return []
        n = self.graph.n
        rows = self.graph.per_point(node)
        shared = [not self.graph.per_point(m) for m in operands]
        # d node[p, unit] / d operand, as an (n, units of the operand) matrix per operand
        jac = [np.zeros((n, self.graph.units(m))) for m in operands]
        if rows and any(shared):
            seeds = [(p, self._seed(out, p, unit)) for p in range(n)]  # one point at a time
        else:
            seeds = [(None, self._seed(out, None, unit))]
        for p, seed in seeds:
            grads = gradients(out, leaves, gradient=seed, retain_graph=True)
            for j, (m, g) in enumerate(zip(operands, grads, strict=True)):
                g = np.asarray(g, dtype=np.float64)
                if self.graph.per_point(m):
                    g = g.reshape(n, -1)
                    if p is None:
                        jac[j][:] = g
                    else:
                        jac[j][p] = g[p]
                elif p is None:
                    jac[j][:] = g.reshape(1, -1)
                else:
                    jac[j][p] = g.reshape(-1)
        return [
            (m, values, rows or not is_shared)
            for m, values, is_shared in zip(operands, jac, shared, strict=True)
        ]

    def _seed(self, out: Tensor, point: int | None, unit: int) -> np.ndarray:
        """A one-hot gradient for ``out``: ``unit`` at ``point`` (at every point if None)."""
        seed = np.zeros(out.shape, dtype=out.dtype)
        if self.graph.per_point(out):
            flat = seed.reshape(self.graph.n, -1)
            flat[slice(None) if point is None else point, unit] = 1.0
        else:
            seed.reshape(-1)[unit] = 1.0
        return seed

    # -- formulas from the op table ----------------------------------------------------

    def formula(self, node: Tensor, unit: int, operand: Tensor, operand_unit: int) -> sym.Expr:
        """d node / d operand as the op table's formulas multiply out along the replay."""
        between = interior(node)
        elementwise = all(t.op is not None and t.op.elementwise for t in between)
        graph = self.graph
        named: dict[int, sym.Expr] = {}
        for m in graph.operands[id(node)]:
            same_units = elementwise and self.graph.units(m) == self.graph.units(node)
            u = operand_unit if m is operand else unit
            named[id(m)] = sym.Sym(
                self.graph.label(m, u) if same_units else self.graph.names[id(m)]
            )
        named[id(node)] = sym.Sym(
            self.graph.label(node, unit) if elementwise else self.graph.names[id(node)]
        )

        def entry(t: Tensor, k: int) -> sym.Expr | None:
            """One entry of a contraction's derivative (the op table's ``entry``): a unit
            of a layer reads one column of its weight, not the whole matrix ``W^T``."""
            op = t.op
            inputs = t.inputs
            if not (
                op is not None
                and op.entry is not None
                and inputs[k] is operand
                and all(id(i) in named for i in inputs)
                and t.shape == node.shape
            ):
                return None
            found = op.entry(k, [i.shape for i in inputs], operand_unit, unit)
            if found is None:
                return None
            other, index = found
            if len(index) == 1:
                return sym.Sym(self.graph.label(inputs[other], index[0]))
            return sym.Sym(scalar_name(self.graph.names[id(inputs[other])], index))

        try:
            return _differentiate(node, operand, between, named, entry)
        except RecursionError:
            return sym.Phrase(("(too long to write out)",))


def _constant(t: Tensor) -> sym.Expr:
    """A constant leaf: its number when it holds one value, else ``c``."""
    flat = t.data.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return sym.Num(float(flat[0]))
    return sym.Sym("c")


def _holes(t: Tensor, expressions: dict[int, sym.Expr]) -> dict[str, sym.Expr]:
    """What the op table's placeholders stand for at node ``t``."""
    inputs = [expressions[id(i)] for i in t.inputs]
    holes: dict[str, sym.Expr] = {"p": sym.Sym(", ".join(f"{k}={v}" for k, v in t.attrs.items()))}
    if t.op is not None and t.op.arity == 1:
        holes["x"] = inputs[0]
    else:
        holes.update(zip("ab", inputs, strict=False))
    return holes


def _differentiate(
    node: Tensor,
    operand: Tensor,
    interior: list[Tensor],
    named: dict[int, sym.Expr],
    entry: Callable[[Tensor, int], sym.Expr | None],
) -> sym.Expr:
    """Forward mode over the unnamed operations: each one's expression and derivative.

    The derivative of each operation's output with respect to ``operand`` is the sum,
    over its inputs, of the op table's formula for that input times the input's own
    derivative; named operands other than ``operand`` are held fixed (derivative 0).
    """
    expressions: dict[int, sym.Expr] = dict(named)
    slopes: dict[int, sym.Expr] = dict.fromkeys(named, sym.ZERO)
    slopes[id(operand)] = sym.ONE

    def leaf(t: Tensor) -> None:
        if id(t) not in expressions:
            expressions[id(t)] = _constant(t)
            slopes[id(t)] = sym.ZERO

    for t in interior:  # inputs come before the operations that use them
        for i in t.inputs:
            leaf(i)
        op = t.op
        assert op is not None
        holes = _holes(t, expressions)
        if t is not node:
            expressions[id(t)] = sym.fill(op.expr, **holes)
        holes["out"] = expressions[id(t)]
        terms = []
        for k, i in enumerate(t.inputs):
            if slopes[id(i)] == sym.ZERO:
                continue
            local = entry(t, k)
            if local is None:
                local = sym.fill(op.formulas[0 if op.arity is None else k], **holes)
            terms.append(sym.mul(local, slopes[id(i)]))
        slopes[id(t)] = sym.add(*terms)
    return slopes[id(node)]
