"""The chain rule for one parameter, read off the engine's recorded graph.

StatQuest writes ``dSSR/dw1 = dSSR/dpredicted x dpredicted/dy1 x dy1/dx1 x dx1/dw1``. Here
that line is not typed in: it is found in the graph that the engine recorded for the loss.

1. Run the model and the loss. The graph's *named* nodes (the loss ``SSR``, ``predicted``,
   ``y1``, ``x1``, the parameters, the inputs, the target ``observed``; ``hidden.z`` and
   ``hidden.a`` in a layer model) form a smaller graph: a named node's operands are the
   named nodes reached by walking down through unnamed ones.
2. Each edge's local derivative comes from the engine: the unnamed operations between a
   named node and its operands are replayed on fresh leaves, and :func:`gradients` gives
   the derivative at every data point, with the other named nodes held fixed.
3. Its formula comes from the op table: each operation's derivative text, multiplied along
   the replayed operations, with the operands' names put in and lightly simplified
   (:mod:`chainrule.explain.symbolic`).
4. Every path from the loss down to the parameter is one product of local derivatives;
   each path is summed over the data points, and the paths are added up. The result is
   checked against the engine's own gradient.

A *scalar node* is a named node and one of its units: in a formula model every node has
one unit (one value per data point); in a layer model the units are the columns
(``hidden.a[1]``) or a weight's entries (``hidden.weight[0,1]``).

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> model = Formula("y1 = softplus(w1 * dosage + b1)\\npredicted = w2 * y1 + b2",
...                 inputs=["dosage"], values={"w1": 1.0, "w2": 2.0}, init="random")
>>> rule = chain_rule(model, dosage(), "ssr", "w1")
>>> rule.paths[0].text
'dSSR/dpredicted x dpredicted/dy1 x dy1/dw1'
>>> [f.formula for f in rule.paths[0].factors]
['-2 (observed - predicted)', 'w2', 'e^(w1 dosage + b1) dosage / (1 + e^(w1 dosage + b1))']
>>> bool(abs(rule.total - rule.value) < 1e-12)
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.explain import symbolic as sym
from chainrule.explain._model import graph_nodes, loss_node, recording_twin
from chainrule.explain.document import (
    Column,
    Document,
    Equations,
    Explanation,
    Paragraph,
    Table,
    plain,
)
from chainrule.explain.notation import derivative, latex_derivative, latex_name
from chainrule.losses import Loss
from chainrule.nn.module import Module, Parameter, scalar_name
from chainrule.tensor import Tensor, apply, gradients
from chainrule.text import decimals

#: More paths than this are refused: the explanation would be unreadable.
MAX_PATHS = 1000
#: More inputs than this are shown as a row number in the per-point tables.
MAX_INPUT_COLUMNS = 3


@dataclass(frozen=True, eq=False)
class Factor:
    """One local derivative ``d numerator / d denominator`` on a path.

    ``values`` holds its value at every data point (a constant repeated when neither side
    varies with the data point, ``per_point`` False then).
    """

    numerator: str
    denominator: str
    formula: str
    formula_latex: str
    values: np.ndarray
    per_point: bool

    @property
    def label(self) -> str:
        """``dy1/dx1``."""
        return derivative(self.numerator, self.denominator)

    @property
    def latex_label(self) -> str:
        return latex_derivative(self.numerator, self.denominator)


@dataclass(frozen=True, eq=False)
class ChainPath:
    """One route from the loss down to the parameter: its factors, loss first."""

    factors: tuple[Factor, ...]

    @property
    def text(self) -> str:
        """``dSSR/dpredicted x dpredicted/dy1 x ...``."""
        return " x ".join(f.label for f in self.factors)

    @property
    def latex(self) -> str:
        return r" \times ".join(f.latex_label for f in self.factors)

    @property
    def per_point(self) -> bool:
        """Whether the path goes through values that differ from data point to data point."""
        return any(f.per_point for f in self.factors)

    @property
    def products(self) -> np.ndarray:
        """The product of the factors at each data point, shape (n,)."""
        return np.prod(np.stack([f.values for f in self.factors]), axis=0)

    @property
    def total(self) -> float:
        """The path's share of the derivative: its products summed over the data points."""
        products = self.products
        return float(products.sum() if self.per_point else products[0])


@dataclass(frozen=True, eq=False)
class ChainRule(Explanation):
    """The chain rule for ``d loss / d parameter``: every path, every data point.

    ``value`` is the engine's gradient; ``total`` (the sum of the paths) must equal it.
    ``inputs`` holds the data's input columns, to label the per-point rows. When no path
    at all leads from the loss to the parameter, ``paths`` is empty, ``value`` is 0 and
    ``unreached`` says why (e.g. the only line that uses it is not used by the output).
    """

    parameter: str
    loss_name: str
    value: float
    paths: tuple[ChainPath, ...]
    inputs: dict[str, np.ndarray]
    unreached: str | None = None

    @property
    def total(self) -> float:
        """The sum over the paths of each path's sum over the data points."""
        return float(sum(path.total for path in self.paths))

    @property
    def label(self) -> str:
        """``dSSR/dw1``."""
        return derivative(self.loss_name, self.parameter)

    @property
    def formulas(self) -> dict[str, str]:
        """Each factor's formula by label, in order of first appearance."""
        return {f.label: f.formula for path in self.paths for f in path.factors}

    def to_dict(self) -> dict[str, Any]:
        """``{"parameter", "loss", "value", "paths", "formulas", "points", "path_sums",
        "sum"}``; ``points`` holds, per data point, its inputs, each path's factor values
        and each path's product."""
        n = len(next(iter(self.inputs.values()))) if self.inputs else 0
        products = [path.products for path in self.paths]
        points = []
        for p in range(n):
            points.append(
                {
                    "inputs": {name: float(column[p]) for name, column in self.inputs.items()},
                    "paths": [[float(f.values[p]) for f in path.factors] for path in self.paths],
                    "products": [float(product[p]) for product in products],
                }
            )
        return plain(
            {
                "parameter": self.parameter,
                "loss": self.loss_name,
                "value": self.value,
                "paths": [[f.label for f in path.factors] for path in self.paths],
                "formulas": self.formulas,
                "points": points,
                "path_sums": [path.total for path in self.paths],
                "sum": self.total,
            }
        )

    def document(self) -> Document:
        lhs, lhs_latex = self.label, latex_derivative(self.loss_name, self.parameter)
        if self.unreached is not None:
            return (Equations(((f"{lhs} = 0", f"{lhs_latex} = 0"),)), Paragraph(self.unreached))
        if not self.paths:
            return (
                Equations(((f"{lhs} = 0", f"{lhs_latex} = 0"),)),
                Paragraph(
                    f"Every path from {self.loss_name} to {self.parameter} has a local "
                    "derivative of 0 at every data point."
                ),
                Paragraph(f"the engine's gradient: {decimals(self.value)}"),
            )
        lines = [(f"{lhs} = {self.paths[0].text}", f"{lhs_latex} = {self.paths[0].latex}")]
        lines += [(f"{' ' * len(lhs)} + {p.text}", f"+ {p.latex}") for p in self.paths[1:]]
        formulas: dict[str, tuple[str, str]] = {}
        for path in self.paths:
            for f in path.factors:
                formulas.setdefault(
                    f.label, (f"{f.label} = {f.formula}", f"{f.latex_label} = {f.formula_latex}")
                )
        blocks: list[Any] = [Equations(tuple(lines)), Equations(tuple(formulas.values()))]
        several = len(self.paths) > 1
        for i, path in enumerate(self.paths, start=1):
            blocks.append(self._table(path, f"path {i}: {path.text}" if several else None))
            blocks.append(
                Paragraph(f"{f'path {i} sum' if several else 'sum'}: {decimals(path.total)}")
            )
        if several:
            blocks.append(Paragraph(f"sum of the paths: {decimals(self.total)}"))
        blocks.append(Paragraph(f"the engine's gradient: {decimals(self.value)}"))
        return tuple(blocks)

    def _table(self, path: ChainPath, title: str | None) -> Table:
        """One row per data point: its inputs, each factor's value, the product."""
        inputs = self.inputs if len(self.inputs) <= MAX_INPUT_COLUMNS else {}
        columns = [Column(name, f"${latex_name(name)}$") for name in inputs]
        if not inputs:
            columns.append(Column("row", "row"))
        columns += [Column(f.label, f"${f.latex_label}$") for f in path.factors]
        columns.append(Column("product", "product"))
        n = len(path.factors[0].values)
        products = path.products
        rows = []
        for p in range(n if path.per_point else 1):
            head: list[Any] = [float(c[p]) for c in inputs.values()] or [p]
            if not path.per_point:
                head = [None] * len(head)
            rows.append((*head, *(float(f.values[p]) for f in path.factors), float(products[p])))
        return Table(tuple(columns), tuple(rows), title=title)


def chain_rule(model: Module, data: Dataset, loss: str | Loss, parameter: str) -> ChainRule:
    """Explain ``d loss / d parameter`` by the chain rule, from the engine's graph.

    ``parameter`` names one scalar: ``"w1"``, or ``"hidden.weight[0,1]"`` in a layer
    model. Frozen parameters are explained all the same (the derivative exists even
    when the parameter is not trained). The model's values are not changed.

    >>> from chainrule import nn
    >>> from chainrule.datasets import dosage
    >>> rule = chain_rule(nn.MLP([1, 2, 1], activation="softplus"), dosage(), "ssr",
    ...                   "hidden.weight[0,1]")
    >>> rule.paths[0].text
    'dSSR/doutput.z x doutput.z/dhidden.a[1] x dhidden.a[1]/dhidden.z[1] x dhidden.z[1]/dhidden.weight[0,1]'
    """  # noqa: E501 (an example's output)
    model = recording_twin(model)
    ref = model.scalar(parameter)
    inputs = {name: np.asarray(column) for name, column in data.inputs.items()}
    root = loss_node(model, data, loss, record_inputs=True)
    if id(ref.parameter) not in graph_nodes(root):
        why = _unreached(model, ref.name, ref.parameter.name or ref.name, root.name or "")
        return ChainRule(ref.name, root.name or "loss", 0.0, (), inputs, why)
    (slope,) = gradients(root, [ref.parameter], retain_graph=True)
    graph = _Graph(root, data.n, data.target_name, data.input_names)
    target_unit = int(np.ravel_multi_index(ref.index, ref.parameter.shape))
    paths = graph.paths(ref.parameter, target_unit)
    return ChainRule(
        parameter=ref.name,
        loss_name=graph.label(root, 0),
        value=float(np.asarray(slope)[ref.index]),
        paths=tuple(paths),
        inputs=inputs,
    )


def _unreached(model: Module, scalar: str, name: str, loss: str) -> str:
    """Why no path leads from the loss to a parameter, in the formula's own lines if any."""
    said = f"{scalar} does not reach {loss}: no path leads from {loss} down to {scalar}"
    lines = [a for a in model.formula_lines if name in a.uses]
    if lines:
        output = model.output_name  # type: ignore[attr-defined]
        where = " and ".join(f"line {a.line} ({a.name} = {a.expression})" for a in lines)
        names = [a.name for a in lines]
        which = names[0] if len(names) == 1 else f"any of {', '.join(names)}"
        said = (
            f"{scalar} does not reach {loss}: it is used only on formula {where}, and the "
            f"output {output} does not use {which}, directly or through other lines"
        )
    return (
        f"{said}. So {loss} does not depend on {scalar}: {derivative(loss, scalar)} = 0 at "
        f"any value, and training cannot change {loss} through {scalar}."
    )


# ---------------------------------------------------------------------------------------
# The collapsed graph of named nodes
# ---------------------------------------------------------------------------------------


def _named_operands(node: Tensor) -> tuple[Tensor, ...]:
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


def _interior(node: Tensor) -> list[Tensor]:
    """The unnamed operations between ``node`` and its named operands, inputs first."""

    def unnamed_operations(t: Tensor) -> list[Tensor]:
        return [i for i in t.inputs if i.name is None and i.op is not None]

    return _children_first(node, unnamed_operations)


def _children_first(root: Tensor, children: Callable[[Tensor], Iterable[Tensor]]) -> list[Tensor]:
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


@dataclass(frozen=True)
class _Edge:
    operand: Tensor
    unit: int
    values: np.ndarray
    per_point: bool


class _Graph:
    """The named nodes under the loss, their operands and their local derivatives."""

    def __init__(
        self, root: Tensor, n: int, target_name: str, input_names: tuple[str, ...]
    ) -> None:
        self.root, self.n, self.input_names = root, n, input_names
        self.operands: dict[int, tuple[Tensor, ...]] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) not in self.operands:
                self.operands[id(node)] = _named_operands(node)
                stack.extend(self.operands[id(node)])
        self.names = {id(t): t.name for t in self._post_order()}
        for t in self.operands[id(root)]:  # the loss compares with the target: name it
            if t.op is None and not t.requires_grad:
                self.names[id(t)] = target_name
        self._local: dict[tuple[int, int], list[_Edge]] = {}
        self._factors: dict[tuple[int, int, int, int], Factor] = {}
        self._replays: dict[int, tuple[Tensor, list[Tensor], list[Tensor]]] = {}
        self._reach: set[int] = set()
        self._target: Tensor | None = None
        self._target_unit = 0

    def _post_order(self) -> list[Tensor]:
        """Every named node, operands before the nodes that use them."""
        return _children_first(self.root, lambda node: reversed(self.operands[id(node)]))

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
        if self._is_data_matrix(t):  # a layer model's input: its columns have names
            return self.input_names[unit]
        return scalar_name(name, tuple(int(i) for i in np.unravel_index(unit, shape)))

    def _is_data_matrix(self, t: Tensor) -> bool:
        return (
            t.op is None
            and not isinstance(t, Parameter)
            and t.shape == (self.n, len(self.input_names))
            and len(self.input_names) > 1
        )

    # -- paths -------------------------------------------------------------------------

    def paths(self, target: Tensor, target_unit: int) -> list[ChainPath]:
        """Every path of nonzero local derivatives from the loss to ``target[target_unit]``."""
        self._target, self._target_unit = target, target_unit
        self._reach = set()
        for node in self._post_order():
            if node is target or any(id(m) in self._reach for m in self.operands[id(node)]):
                self._reach.add(id(node))
        found: list[ChainPath] = []
        stack: list[tuple[Tensor, int, tuple[Factor, ...]]] = [(self.root, 0, ())]
        while stack:
            node, unit, factors = stack.pop()
            if node is target:
                found.append(ChainPath(factors))
                if len(found) > MAX_PATHS:
                    raise ChainruleError(
                        f"the parameter reaches the loss along more than {MAX_PATHS} paths: "
                        "explain a parameter nearer the output, or use a smaller network"
                    )
                continue
            for edge in reversed(self.local(node, unit)):
                factor = self.factor(node, unit, edge)
                stack.append((edge.operand, edge.unit, (*factors, factor)))
        return found

    def factor(self, node: Tensor, unit: int, edge: _Edge) -> Factor:
        """The edge as a factor of a path (made once, however many paths share it)."""
        key = (id(node), unit, id(edge.operand), edge.unit)
        if key not in self._factors:
            expr = self.formula(node, unit, edge.operand, edge.unit)
            self._factors[key] = Factor(
                numerator=self.label(node, unit),
                denominator=self.label(edge.operand, edge.unit),
                formula=sym.text(expr),
                formula_latex=sym.latex(expr),
                values=edge.values,
                per_point=edge.per_point,
            )
        return self._factors[key]

    # -- local derivatives from the engine ---------------------------------------------

    def local(self, node: Tensor, unit: int) -> list[_Edge]:
        """The nonzero derivatives of ``node[unit]`` with respect to its operands' units."""
        key = (id(node), unit)
        if key not in self._local:
            self._local[key] = self._compute_local(node, unit)
        return self._local[key]

    def _replay(self, node: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``node`` recomputed from fresh leaves standing for the operands on a path.

        The other named operands are detached: held fixed, as a partial derivative needs.
        """
        if id(node) not in self._replays:
            operands = [m for m in self.operands[id(node)] if id(m) in self._reach]
            leaves = [Tensor(m.data, requires_grad=True) for m in operands]
            made: dict[int, Tensor] = {
                id(m): leaf for m, leaf in zip(operands, leaves, strict=True)
            }
            for m in self.operands[id(node)]:
                made.setdefault(id(m), m.detach())
            for t in _interior(node):
                inputs = [made.get(id(i), i) for i in t.inputs]
                made[id(t)] = apply(t.op, *inputs, **t.attrs)  # type: ignore[arg-type]
            self._replays[id(node)] = (made[id(node)], operands, leaves)
        return self._replays[id(node)]

    def _compute_local(self, node: Tensor, unit: int) -> list[_Edge]:
        if node.op is None:
            return []
        out, operands, leaves = self._replay(node)
        if not operands:
            return []
        n = self.n
        rows = self.per_point(node)
        shared = [not self.per_point(m) for m in operands]
        # d node[p, unit] / d operand, as an (n, units of the operand) matrix per operand
        jac = [np.zeros((n, self.units(m))) for m in operands]
        if rows and any(shared):
            seeds = [(p, self._seed(out, p, unit)) for p in range(n)]  # one point at a time
        else:
            seeds = [(None, self._seed(out, None, unit))]
        for p, seed in seeds:
            grads = gradients(out, leaves, gradient=seed, retain_graph=True)
            for j, (m, g) in enumerate(zip(operands, grads, strict=True)):
                g = np.asarray(g, dtype=np.float64)
                if self.per_point(m):
                    g = g.reshape(n, -1)
                    if p is None:
                        jac[j][:] = g
                    else:
                        jac[j][p] = g[p]
                elif p is None:
                    jac[j][:] = g.reshape(1, -1)
                else:
                    jac[j][p] = g.reshape(-1)
        edges = []
        for m, values, is_shared in zip(operands, jac, shared, strict=True):
            for v in range(values.shape[1]):
                if m is self._target and v != self._target_unit:
                    continue
                column = values[:, v]
                if np.any(column != 0):
                    edges.append(_Edge(m, v, column.copy(), rows or not is_shared))
        return edges

    def _seed(self, out: Tensor, point: int | None, unit: int) -> np.ndarray:
        """A one-hot gradient for ``out``: ``unit`` at ``point`` (at every point if None)."""
        seed = np.zeros(out.shape, dtype=out.dtype)
        if self.per_point(out):
            flat = seed.reshape(self.n, -1)
            flat[slice(None) if point is None else point, unit] = 1.0
        else:
            seed.reshape(-1)[unit] = 1.0
        return seed

    # -- formulas from the op table ----------------------------------------------------

    def formula(self, node: Tensor, unit: int, operand: Tensor, operand_unit: int) -> sym.Expr:
        """d node / d operand as the op table's formulas multiply out along the replay."""
        interior = _interior(node)
        elementwise = all(t.op is not None and t.op.elementwise for t in interior)
        named: dict[int, sym.Expr] = {}
        for m in self.operands[id(node)]:
            same_units = elementwise and self.units(m) == self.units(node)
            u = operand_unit if m is operand else unit
            named[id(m)] = sym.Sym(self.label(m, u) if same_units else self.names[id(m)])
        named[id(node)] = sym.Sym(self.label(node, unit) if elementwise else self.names[id(node)])

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
                return sym.Sym(self.label(inputs[other], index[0]))
            return sym.Sym(scalar_name(self.names[id(inputs[other])], index))

        try:
            return _differentiate(node, operand, interior, named, entry)
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
