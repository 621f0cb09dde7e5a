"""The forward pass: each named node's value at each data point, the predictions and the loss.

StatQuest's first video ("Inside the Black Box") runs the network forward at given
values before any training: dosage 0 goes into the top unit, ``x1 = -34.4 x 0 + 2.14``,
softplus makes it 2.25, times -1.30 gives -2.93; the bottom unit gives 3.49, and the sum
plus b3 predicts -0.02 (the video rounds each node to two decimals before the next uses
it; the engine does not, and predicts -0.011). :func:`forward_pass` reads those numbers
off one forward pass of the engine (the model protocol's
:meth:`~chainrule.nn.Module.named_nodes` and :meth:`~chainrule.nn.Module.output_graph`),
and with observed values it adds the residuals and the loss. :func:`inputs_at` makes the
data for inputs of the learner's choice, with no observed values.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> model = Formula("x1 = w * dosage\\npredicted = x1 + b", inputs=["dosage"],
...                 values={"w": 2.0, "b": 1.0})
>>> result = forward_pass(model, dosage(), "ssr")
>>> result.nodes["x1"].tolist(), result.predictions.tolist(), result.loss
([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], 11.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.explain.document import (
    Column,
    Document,
    Equations,
    Explanation,
    Paragraph,
    Table,
    plain,
)
from chainrule.explain.model_graph import loss_node
from chainrule.explain.notation import escape_latex, latex_name
from chainrule.losses import Loss, loss_spec
from chainrule.nn.module import Module
from chainrule.tensor import no_grad
from chainrule.text import decimals, did_you_mean, parameter_value
from chainrule.version import SCHEMA_VERSION

#: Up to this many scalars, the document lists the values the pass ran at.
LISTED_VALUES = 12

#: At most this many data points are listed in a table of points (:func:`points_table`).
MAX_POINTS = 12


@dataclass(frozen=True, eq=False)
class ForwardPass(Explanation):
    """One forward pass of a model over some data points, with the engine's numbers.

    ``inputs`` holds each input column; ``nodes`` each named node's value per data point
    (a formula's lines, in order; a line that does not depend on the data repeats its
    one value); ``output`` names the prediction (``predicted``). ``predictions`` has one
    value per point, or one row per point for several outputs. With observed values
    (``observed`` not None), ``loss`` is the loss on all the points, named ``loss_name``
    as files write it (``ssr``) and ``loss_label`` as a derivation does (``SSR``);
    ``residuals`` (observed - predicted) are given for a regression. ``values`` are the
    parameters' values the pass ran at.
    """

    inputs: dict[str, np.ndarray]
    values: dict[str, float]
    nodes: dict[str, np.ndarray]
    output: str
    lines: tuple[tuple[str, str], ...]
    predictions: np.ndarray
    observed: np.ndarray | None = None
    observed_name: str = "observed"
    residuals: np.ndarray | None = None
    loss_name: str | None = None
    loss_label: str | None = None
    loss: float | None = None

    @property
    def n(self) -> int:
        """How many data points the pass ran on."""
        return len(self.predictions)

    def to_dict(self) -> dict[str, Any]:
        """``{"schema_version", "inputs", "values", "nodes", "output", "predictions"}``,
        plus ``"observed"``, ``"residuals"``, ``"loss_name"``, ``"loss_label"`` and
        ``"loss"`` when the points have observed values (docs/json.md)."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "inputs": self.inputs,
            "values": self.values,
            "nodes": self.nodes,
            "output": self.output,
            "predictions": self.predictions,
        }
        if self.observed is not None:
            out["observed"] = self.observed
            if self.residuals is not None:
                out["residuals"] = self.residuals
            out["loss_name"] = self.loss_name
            out["loss_label"] = self.loss_label
            out["loss"] = self.loss
        return plain(out)

    def document(self) -> Document:
        blocks: list[Any] = []
        if self.values:
            if len(self.values) <= LISTED_VALUES:
                shown = ", ".join(f"{k} = {parameter_value(v)}" for k, v in self.values.items())
                blocks.append(Paragraph(f"at {shown}"))
            else:
                blocks.append(Paragraph(f"at the model's {len(self.values)} values"))
        if self.lines:
            blocks.append(Equations(self.lines))
        blocks.append(self._table())
        if self.loss is not None and self.loss_label is not None:
            blocks.append(Paragraph(f"{self.loss_label} = {decimals(self.loss)}"))
        elif self.observed is None:
            blocks.append(Paragraph("no observed values at these inputs, so no loss"))
        return tuple(blocks)

    def _table(self) -> Table:
        """One row per data point: inputs, named nodes, predictions, observed, residual."""
        columns: list[Column] = []
        cells: list[list[Any]] = []

        def add(name: str, values: Any, latex: str | None = None) -> None:
            columns.append(Column(name, latex or f"${latex_name(name)}$"))
            cells.append(np.asarray(values).tolist())

        for name, values in self.inputs.items():
            add(name, values)
        for name, values in self.nodes.items():
            if name != self.output:
                add(name, values)
        predictions = np.asarray(self.predictions, dtype=np.float64)
        if predictions.ndim == 1:
            add(self.output, predictions)
        else:
            for k in range(predictions.shape[1]):
                add(f"{self.output}[{k}]", predictions[:, k])
        if self.observed is not None:
            add(self.observed_name, self.observed)
        if self.residuals is not None:
            add("residual", self.residuals, "residual")
        return Table(tuple(columns), tuple(zip(*cells, strict=True)))


def forward_pass(model: Module, data: Dataset, loss: str | Loss | None = None) -> ForwardPass:
    """The forward pass of ``model`` over ``data``: every named node, the predictions and,
    when ``loss`` is given, the observed values, the residuals and the loss.

    Nothing is trained and the model is not changed.

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("inside-the-black-box")
    >>> result = forward_pass(s.build_model(), s.data, s.loss)
    >>> [round(float(result.nodes[name][0]), 2) for name in ("x1", "y1", "top", "x2", "y2")]
    [2.14, 2.25, -2.93, 1.29, 1.53]
    """
    if not isinstance(data, Dataset):
        raise ChainruleError(f"forward_pass needs a Dataset, not {type(data).__name__}")
    n = data.n
    with no_grad(), np.errstate(all="ignore"):
        named = model.named_nodes(data)
        lines = model.formula_lines
        output = model.output_name or "predicted"
        nodes = {a.name: _per_point(named[a.name].data, n) for a in lines if a.name in named}
        predictions = np.asarray(model.output_graph(data).data, dtype=np.float64)
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        loss_value = None
        spec = None
        if loss is not None:
            spec = loss_spec(loss)
            loss_value = float(np.asarray(loss_node(model, data, spec).data).reshape(-1)[0])
    residuals = None
    observed = None
    if spec is not None:
        # class labels stay whole numbers; a regression's targets are floats
        observed = np.asarray(data.target)
        if data.task == "regression" and predictions.ndim == 1:
            residuals = observed - predictions
    return ForwardPass(
        inputs={name: np.asarray(c, dtype=np.float64) for name, c in data.inputs.items()},
        values={ref.name: ref.value for ref in model.scalars()},
        nodes=nodes,
        output=output,
        lines=tuple(
            (
                f"{a.name} = {a.expression}",
                rf"\texttt{{{escape_latex(a.name)} = "
                rf"{escape_latex(a.expression)}}}",
            )
            for a in lines
        ),
        predictions=predictions,
        observed=observed,
        observed_name=data.target_name,
        residuals=residuals,
        loss_name=None if spec is None else spec.name,
        loss_label=None if spec is None else spec.display,
        loss=loss_value,
    )


def points_table(
    inputs: Mapping[str, np.ndarray],
    target_name: str,
    observed: np.ndarray,
    output_name: str,
    predicted: np.ndarray,
    residual: np.ndarray | None,
    title: str | None = None,
) -> Document:
    """The data points as a learner works a slope out from them: one row per point with
    its inputs (its row number when none are given), observed value, predicted value (one
    column per output of a model with several) and residual (when given); at most
    :data:`MAX_POINTS` rows, and a line that says how many were left out. The quiz and the
    chain rule show their points this way. Without residuals the target is a class, and
    is written as the whole number it is (``1``, not ``1.0000``).

    >>> doc = points_table({"dosage": np.array([0.0, 1.0])}, "observed", np.array([0.0, 1.0]),
    ...                    "predicted", np.array([0.5, 0.5]), np.array([-0.5, 0.5]))
    >>> [c.text for c in doc[0].columns], doc[0].rows[1]
    (['dosage', 'observed', 'predicted', 'residual'], (1.0, 1.0, 0.5, 0.5))
    """
    n = len(observed)
    outputs = np.asarray(predicted, dtype=np.float64).reshape(n, -1).T  # one row per output
    names = [*inputs, target_name] if inputs else ["row", target_name]
    if len(outputs) == 1:
        names.append(output_name)
    else:
        names += [f"{output_name}[{j}]" for j in range(len(outputs))]
    columns = [Column(name, f"${latex_name(name)}$") for name in names]
    cells: list[np.ndarray] = [*inputs.values()] if inputs else [np.arange(n)]
    observed = np.asarray(observed)
    if (
        residual is None
        and np.all(np.isfinite(observed))
        and np.all(observed == np.round(observed))
    ):
        observed = observed.astype(np.int64)  # a class
    cells += [observed, *outputs]
    if residual is not None:
        columns.append(Column("residual", "residual"))
        cells.append(np.asarray(residual))
    shown = min(n, MAX_POINTS)
    # a class or a row number stays a whole number (0, not 0.0000); the rest are floats
    cells = [np.asarray(c) for c in cells]
    rows = tuple(tuple(c[i].item() for c in cells) for i in range(shown))
    # fitted to a narrow terminal, the point and its residual stay
    keep_first, keep_last = max(len(inputs), 1), int(residual is not None)
    blocks: list[Any] = [Table(tuple(columns), rows, None, title, None, keep_first, keep_last)]
    if shown < n:
        blocks.append(Paragraph(f"({shown} of {n} data points shown)"))
    return tuple(blocks)


def _per_point(values: Any, n: int) -> np.ndarray:
    """A node's values as one number per data point (a constant line repeats its value)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    return array.reshape(n, -1)[:, 0] if array.ndim > 1 else array


def inputs_at(
    data: Dataset, given: Mapping[str, Sequence[float]], source: str = "inputs_at"
) -> Dataset:
    """Data points at the inputs ``given`` (name -> values), laid out as ``data``'s, with
    no observed values: for :func:`forward_pass` without a loss.

    Every input of ``data`` must be given, each with the same number of values; an error
    names ``source``, where the values came from (the command line passes ``--at``).

    >>> from chainrule.datasets import dosage
    >>> inputs_at(dosage(), {"dosage": [0.25]}).inputs["dosage"].tolist()
    [0.25]
    >>> inputs_at(dosage(), {"dose": [0.25]}, "--at")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: --at dose: the model has no input 'dose'; did you mean 'dosage'? (its inputs: dosage)
    """  # noqa: E501 (a doctest's output)
    names = list(data.input_names)
    for name in given:
        if name not in names:
            raise ChainruleError(
                f"{source} {name}: the model has no input {name!r}{did_you_mean(name, names)} "
                f"(its inputs: {', '.join(names)})"
            )
    missing = [name for name in names if name not in given]
    if missing:
        raise ChainruleError(
            f"{source}: give every input; missing {', '.join(missing)} (e.g. {missing[0]}=0.5)"
        )
    counts = {name: len(values) for name, values in given.items()}
    if len(set(counts.values())) > 1:
        said = ", ".join(f"{name} has {k}" for name, k in counts.items())
        raise ChainruleError(f"{source}: every input needs as many values ({said})")
    n = next(iter(counts.values()))
    columns = {name: np.asarray(given[name], dtype=np.float64) for name in names}
    placeholder = np.zeros(n)  # no observed values: the pass runs without a loss
    return Dataset(columns, placeholder, data.target_name, "--at", data.task, data.num_classes)
