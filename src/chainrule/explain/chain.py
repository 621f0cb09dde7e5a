"""The chain rule for one parameter, read off the engine's recorded graph.

StatQuest writes ``dSSR/dw1 = dSSR/dpredicted x dpredicted/dy1 x dy1/dx1 x dx1/dw1``. Here
that line is not typed in: it is found in the graph that the engine recorded for the loss.

1. Run the model and the loss. The graph's *named* nodes (the loss ``SSR``, ``predicted``,
   ``y1``, ``x1``, the parameters, the inputs, the target ``observed``; ``hidden.z`` and
   ``hidden.a`` in a layer model) form a smaller graph: a named node's operands are the
   named nodes reached by walking down through unnamed ones.
   (:mod:`chainrule.explain.named_graph`)
2. Each edge's local derivative comes from the engine: the unnamed operations between a
   named node and its operands are replayed on fresh leaves, and :func:`gradients` gives
   the derivative at every data point, with the other named nodes held fixed.
3. Its formula comes from the op table: each operation's derivative text, multiplied along
   the replayed operations, with the operands' names put in and lightly simplified
   (:mod:`chainrule.explain.symbolic`; both in :mod:`chainrule.explain.local_derivatives`).
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

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.explain import symbolic as sym
from chainrule.explain.document import (
    Column,
    Document,
    Equations,
    Explanation,
    Paragraph,
    Table,
    plain,
)
from chainrule.explain.forward import forward_pass, points_table
from chainrule.explain.local_derivatives import Edge, LocalDerivatives
from chainrule.explain.model_graph import graph_nodes, loss_node, recording_twin
from chainrule.explain.named_graph import NamedGraph
from chainrule.explain.notation import derivative, latex_derivative, latex_name
from chainrule.losses import Loss, loss_spec
from chainrule.nn.module import Module
from chainrule.tensor import Tensor, gradients
from chainrule.text import decimals
from chainrule.version import SCHEMA_VERSION

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
    ``loss_name`` is the loss as the derivation writes it (``SSR``), ``loss_id`` as files
    and the API name it (``ssr``; the same when it was not given by name).
    ``inputs`` holds the data's input columns, to label the per-point rows; ``observed``
    (the data's target, named ``observed_name``), ``predictions`` (the output
    ``output_name`` at the values explained: one row per point for several outputs) and,
    for a regression, ``residuals`` (observed - predicted) are the numbers the first
    factor is made of (``dSSR/dpredicted = -2 (observed - predicted)``). When no path
    at all leads from the loss to the parameter, ``paths`` is empty, ``value`` is 0 and
    ``unreached`` says why (e.g. the only line that uses it is not used by the output).
    When paths lead there but each goes through a local derivative that is 0 at every
    data point at these values (a ReLU off for all the data), ``paths`` is empty and
    ``blocked`` holds those derivatives.
    """

    parameter: str
    loss_name: str
    value: float
    paths: tuple[ChainPath, ...]
    inputs: dict[str, np.ndarray]
    unreached: str | None = None
    loss_id: str | None = None
    observed: np.ndarray | None = None
    predictions: np.ndarray | None = None
    residuals: np.ndarray | None = None
    observed_name: str = "observed"
    output_name: str = "predicted"
    blocked: tuple[Factor, ...] = ()

    @property
    def total(self) -> float:
        """The sum over the paths of each path's sum over the data points."""
        return float(sum(path.total for path in self.paths))

    @property
    def label(self) -> str:
        """``dSSR/dw1``."""
        return derivative(self.loss_name, self.parameter)

    @property
    def point_terms(self) -> np.ndarray | None:
        """Each data point's term of the derivative: the paths' products at that point,
        added up (what a sum over the data points adds); None when no path goes through
        values that differ from point to point."""
        per_point = [path.products for path in self.paths if path.per_point]
        if not per_point:
            return None
        return np.sum(per_point, axis=0)

    @property
    def formulas(self) -> dict[str, str]:
        """Each factor's formula by label, in order of first appearance."""
        return {f.label: f.formula for path in self.paths for f in path.factors}

    @property
    def why_zero(self) -> str | None:
        """Why no path carries a slope (None when one does): the parameter does not
        reach the loss, or every path goes through a local derivative that is 0."""
        if self.paths:
            return None
        if self.unreached is not None:
            return self.unreached
        if self.blocked:
            return (
                f"Every path from {self.loss_name} to {self.parameter} goes through a local "
                "derivative that is 0 at every data point at these values, so "
                f"{self.label} = 0 and the parameter gets no slope: "
                + "; ".join(f"{f.label} = {f.formula}" for f in self.blocked)
                + "."
            )
        return (
            f"Every path from {self.loss_name} to {self.parameter} has a local derivative "
            "of 0 at every data point."
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"schema_version", "parameter", "loss_name", "loss_label", "gradient", "paths",
        "formulas", "points", "path_sums", "sum", "observed", "predictions"}``,
        ``"residuals"`` for a regression, and ``"why_zero"`` (with ``"zero_factors"``
        when paths are blocked) when no path carries a slope; ``points`` holds, per data
        point, its inputs, each path's factor values and each path's product
        (docs/json.md)."""
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
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "parameter": self.parameter,
            "loss_name": self.loss_id or self.loss_name,
            "loss_label": self.loss_name,
            "gradient": self.value,
            "paths": [[f.label for f in path.factors] for path in self.paths],
            "formulas": self.formulas,
            "points": points,
            "path_sums": [path.total for path in self.paths],
            "sum": self.total,
        }
        if self.observed is not None:
            out["observed"] = self.observed
            out["predictions"] = self.predictions
            if self.residuals is not None:
                out["residuals"] = self.residuals
        if self.why_zero is not None:
            out["why_zero"] = self.why_zero
            if self.blocked:
                out["zero_factors"] = {f.label: f.formula for f in self.blocked}
        return plain(out)

    def document(self) -> Document:
        lhs, lhs_latex = self.label, latex_derivative(self.loss_name, self.parameter)
        if self.unreached is not None:
            return (Equations(((f"{lhs} = 0", f"{lhs_latex} = 0"),)), Paragraph(self.unreached))
        if self.blocked:
            return (
                Equations(((f"{lhs} = 0", f"{lhs_latex} = 0"),)),
                Paragraph(
                    f"Every path from {self.loss_name} to {self.parameter} goes through a "
                    "local derivative that is 0 at every data point at these values:"
                ),
                Equations(
                    tuple(
                        (f"{f.label} = {f.formula}", f"{f.latex_label} = {f.formula_latex}")
                        for f in self.blocked
                    )
                ),
                Paragraph(
                    f"So no data point passes a slope back to {self.parameter}: {lhs} = 0, "
                    "and a plain gradient descent step does not move it while these values "
                    "hold."
                ),
                Paragraph(f"the engine's gradient: {decimals(self.value)}"),
            )
        if not self.paths:
            return (
                Equations(((f"{lhs} = 0", f"{lhs_latex} = 0"),)),
                Paragraph(self.why_zero or ""),
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
        blocks += self._points()
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

    def _points(self) -> Document:
        """The data points the factors are computed at: inputs, observed, predicted and
        residual, as the quiz lists them (empty when the values are not known)."""
        if self.observed is None or self.predictions is None:
            return ()
        inputs = self.inputs if len(self.inputs) <= MAX_INPUT_COLUMNS else {}
        return points_table(
            inputs,
            self.observed_name,
            self.observed,
            self.output_name,
            self.predictions,
            self.residuals,
        )

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
        # fitted to a narrow terminal, the data point and the product stay
        return Table(
            tuple(columns), tuple(rows), title=title, keep_first=max(len(inputs), 1), keep_last=1
        )


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
    seen = forward_pass(model, data, loss)  # observed, predicted, residual per data point
    points = {
        "observed": seen.observed,
        "predictions": seen.predictions,
        "residuals": seen.residuals,
        "observed_name": seen.observed_name,
        "output_name": seen.output,
    }
    model = recording_twin(model)
    ref = model.scalar(parameter)
    inputs = {name: np.asarray(column) for name, column in data.inputs.items()}
    root = loss_node(model, data, loss, record_inputs=True)
    if id(ref.parameter) not in graph_nodes(root):
        why = _unreached(model, ref.name, ref.parameter.name or ref.name, root.name or "")
        return ChainRule(
            ref.name, root.name or "loss", 0.0, (), inputs, why, _loss_id(loss), **points
        )
    (slope,) = gradients(root, [ref.parameter], retain_graph=True)
    graph = NamedGraph(root, data.n, data.target_name, data.input_names)
    target_unit = int(np.ravel_multi_index(ref.index, ref.parameter.shape))
    paths = _paths(graph, ref.parameter, target_unit)
    blocked = () if paths else tuple(_blocked(graph, ref.parameter, target_unit))
    return ChainRule(
        parameter=ref.name,
        loss_name=graph.label(root, 0),
        value=float(np.asarray(slope)[ref.index]),
        paths=tuple(paths),
        inputs=inputs,
        loss_id=_loss_id(loss),
        blocked=blocked,
        **points,
    )


def _loss_id(loss: str | Loss) -> str:
    """The loss as files and the API name it: ``ssr`` (a function of the user's: its name)."""
    return loss_spec(loss).name


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


class _Factors:
    """The edges of ``graph`` on the way to ``target[target_unit]`` as factors of a
    path, each made once however many paths share it."""

    def __init__(self, graph: NamedGraph, target: Tensor, target_unit: int) -> None:
        self.graph = graph
        self.local = LocalDerivatives(graph, target, target_unit)
        self._made: dict[tuple[int, int, int, int], Factor] = {}

    def __call__(self, node: Tensor, unit: int, edge: Edge) -> Factor:
        key = (id(node), unit, id(edge.operand), edge.unit)
        if key not in self._made:
            expr = self.local.formula(node, unit, edge.operand, edge.unit)
            self._made[key] = Factor(
                numerator=self.graph.label(node, unit),
                denominator=self.graph.label(edge.operand, edge.unit),
                formula=sym.text(expr),
                formula_latex=sym.latex(expr),
                values=edge.values,
                per_point=edge.per_point,
            )
        return self._made[key]


def _blocked(graph: NamedGraph, target: Tensor, target_unit: int) -> list[Factor]:
    """When no path of nonzero local derivatives leads to ``target[target_unit]``: the
    local derivatives, 0 at every data point at these values, that close the paths the
    network has (each path's factors that are 0 everywhere, in the order first met)."""
    factor = _Factors(graph, target, target_unit)
    local = factor.local
    zero: dict[str, Factor] = {}
    complete = 0
    stack: list[tuple[Tensor, int, tuple[Factor, ...]]] = [(graph.root, 0, ())]
    while stack and complete <= MAX_PATHS:
        node, unit, closed = stack.pop()
        if node is target:
            complete += 1
            for f in closed:
                zero.setdefault(f.label, f)
            continue
        for edge in local.edges(node, unit):
            stack.append((edge.operand, edge.unit, closed))
        for edge in local.blocked_edges(node, unit):
            stack.append((edge.operand, edge.unit, (*closed, factor(node, unit, edge))))
    return list(zero.values())


def _paths(graph: NamedGraph, target: Tensor, target_unit: int) -> list[ChainPath]:
    """Every path of nonzero local derivatives from the loss to ``target[target_unit]``."""
    factor = _Factors(graph, target, target_unit)
    local = factor.local
    found: list[ChainPath] = []
    stack: list[tuple[Tensor, int, tuple[Factor, ...]]] = [(graph.root, 0, ())]
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
        for edge in reversed(local.edges(node, unit)):
            stack.append((edge.operand, edge.unit, (*factors, factor(node, unit, edge))))
    return found
