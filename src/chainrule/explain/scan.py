"""The "brute force" scan: the loss over a grid of one or two parameters.

Before gradient descent, StatQuest plugs b3 = 0, 0.5, 1, ... into the network and plots the
SSR: the pink curve whose lowest point gradient descent will find. :func:`scan` does that
with the engine's own forward pass (under :func:`~chainrule.tensor.no_grad`), holding every
other parameter at its value, and puts the model back as it was afterwards. With two
parameters it gives the grid of a contour plot.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> model = Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 0.0, "b": 0.0})
>>> result = scan(model, dosage(), "ssr", "b", [0.0, 0.5, 1.0])
>>> result.loss.tolist(), result.best
([1.0, 0.75, 2.0], {'value': 0.5, 'loss': 0.75})
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.explain.document import Column, Document, Explanation, Paragraph, Table, plain
from chainrule.explain.model_graph import loss_node
from chainrule.explain.notation import latex_name
from chainrule.losses import Loss, loss_spec
from chainrule.nn.module import Module
from chainrule.tensor import no_grad
from chainrule.text import decimals
from chainrule.version import SCHEMA_VERSION

#: The most grid points a scan computes (one forward pass each): enough for any curve or
#: contour plot, and a typo such as ``--num 100000000`` is refused instead of running for
#: hours. 10,000 points (a 100 x 100 contour) take a few seconds on the seed network;
#: 100,000 took half a minute.
MAX_SCAN_POINTS = 10_000


@dataclass(frozen=True, eq=False)
class Scan(Explanation):
    """The loss at each grid value of ``parameter`` (and ``parameter2``: a 2-D ``loss``).

    ``loss[i]`` (1-D) or ``loss[i, j]`` (2-D) is the loss with ``parameter = values[i]``
    (and ``parameter2 = values2[j]``). A grid point where the loss is not a number (e.g.
    the log of a negative value) holds NaN and is never the best.
    """

    parameter: str
    values: np.ndarray
    loss: np.ndarray
    loss_name: str
    parameter2: str | None = None
    values2: np.ndarray | None = None
    loss_id: str | None = None  # the loss as files name it (``ssr``); loss_name: ``SSR``

    @property
    def best(self) -> dict[str, float] | None:
        """The lowest point: ``{"value", "loss"}`` (plus ``"value2"``), None if no finite loss."""
        finite = np.isfinite(self.loss)
        if not finite.any():
            return None
        flat = int(np.argmin(np.where(finite, self.loss, np.inf)))
        index = np.unravel_index(flat, self.loss.shape)
        best = {"value": float(self.values[index[0]])}
        if self.values2 is not None:
            best["value2"] = float(self.values2[index[1]])
        best["loss"] = float(self.loss[index])
        return best

    def to_dict(self) -> dict[str, Any]:
        """``{"schema_version", "parameter", "values", "loss_name", "loss_label", "losses",
        "best"}`` (+ ``"parameter2"``, ``"values2"``); ``losses`` is a list of lists for two
        parameters, and NaN is null (docs/json.md)."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "parameter": self.parameter,
            "values": self.values.tolist(),
        }
        if self.parameter2 is not None and self.values2 is not None:
            out["parameter2"] = self.parameter2
            out["values2"] = self.values2.tolist()
        out["loss_name"] = self.loss_id or self.loss_name
        out["loss_label"] = self.loss_name
        out["losses"] = plain(self.loss)
        out["best"] = self.best
        return out

    def document(self) -> Document:
        p, loss = self.parameter, self.loss_name
        best = self.best
        if self.values2 is None or self.parameter2 is None:
            marked = None if best is None else int(np.nanargmin(self.loss))
            columns = (
                Column(p, f"${latex_name(p)}$"),
                Column(loss, f"${latex_name(loss)}$"),
                Column("lowest", "lowest"),
            )
            rows = tuple(
                (float(v), float(L), "yes" if i == marked else "")
                for i, (v, L) in enumerate(zip(self.values, self.loss, strict=True))
            )
            where = "" if best is None else f"{p} = {decimals(best['value'])}"
        else:
            q = self.parameter2
            columns = (
                Column(f"{p} \\ {q}", f"${latex_name(p)}$ \\textbackslash{{}} ${latex_name(q)}$"),
            )
            columns += tuple(
                Column(f"{q} = {v:g}", f"${latex_name(q)} = {v:g}$") for v in self.values2
            )
            rows = tuple(
                (float(v), *(float(L) for L in row))
                for v, row in zip(self.values, self.loss, strict=True)
            )
            where = (
                ""
                if best is None
                else f"{p} = {decimals(best['value'])}, {q} = {decimals(best['value2'])}"
            )
        if best is None:
            summary = f"the {loss} is not a number anywhere on this grid"
        else:
            summary = f"the lowest {loss} on this grid is {decimals(best['loss'])}, at {where}"
        return (Table(columns, rows), Paragraph(summary))


def scan(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    parameter: str,
    values: Sequence[float] | np.ndarray,
    parameter2: str | None = None,
    values2: Sequence[float] | np.ndarray | None = None,
) -> Scan:
    """The loss for each value of ``parameter`` (or each pair with ``parameter2``).

    Every other parameter is held at its current value; the model's values are restored
    afterwards, even when the forward pass fails. Parameters name one scalar each
    (``"b3"``, ``"hidden.weight[0,1]"``).

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> model = Formula("predicted = w * dosage + b", inputs=["dosage"])
    >>> scan(model, dosage(), "ssr", "w", [0, 1], "b", [0, 1, 2]).loss.shape
    (2, 3)
    """
    if (parameter2 is None) != (values2 is None):
        raise ChainruleError("scan: give both parameter2 and values2, or neither")
    model = model.at()  # a copy to set the grid's values on: the caller's stays as it is
    ref = model.scalar(parameter)
    grid = _grid(values, parameter)
    ref2 = None if parameter2 is None else model.scalar(parameter2)
    grid2 = None if values2 is None else _grid(values2, parameter2 or "")
    if ref2 is not None and ref2.name == ref.name:
        raise ChainruleError(f"scan: parameter2 must differ from parameter ({ref.name!r})")
    shape = (len(grid),) if grid2 is None else (len(grid), len(grid2))
    if math.prod(shape) > MAX_SCAN_POINTS:
        raise ChainruleError(f"scan: {math.prod(shape):,} grid points; at most {MAX_SCAN_POINTS:,}")
    losses = np.full(shape, np.nan)
    name = "loss"
    with no_grad(), np.errstate(all="ignore"):
        for index in np.ndindex(shape):
            ref.set(grid[index[0]])
            if ref2 is not None and grid2 is not None:
                ref2.set(grid2[index[1]])
            out = loss_node(model, data, loss)
            losses[index] = out.item()
            name = out.name or name
    parameter2 = None if ref2 is None else ref2.name
    return Scan(ref.name, grid, losses, name, parameter2, grid2, loss_spec(loss).name)


def _grid(values: Sequence[float] | np.ndarray, parameter: str) -> np.ndarray:
    """The grid as a 1-D float array of finite numbers, or a clear error."""
    try:
        grid = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ChainruleError(f"scan: the values for {parameter!r} must be numbers") from None
    if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all():
        raise ChainruleError(
            f"scan: the values for {parameter!r} must be a non-empty list of finite numbers"
        )
    return grid
