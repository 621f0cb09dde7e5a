"""The ledger: StatQuest's step table, one row per step of gradient descent.

Each row shows, for the trained parameters, the value before the step, the loss, the slope
``dSSR/db3``, the step size (slope x learning rate for plain gradient descent) and the new
value, then the ledger says why the run stopped. Every number is the training history's:
the ledger formats, it does not recompute.

For many parameters or many steps, pick ``columns`` (parameter names), every ``every``-th
step, and the ``first`` / ``last`` rows (the renderings put an ellipsis row in between).
Rendered for a narrow terminal (``render("table", width=80)``), a table of several
parameters too wide for it turns: one row per step and parameter, the slope, step size
and new value beside each parameter's value, and the loss once per step.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> from chainrule.training import train
>>> model = Formula("predicted = w * dosage + b3", inputs=["dosage"], values={"w": 1.0, "b3": 0.0})
>>> model.freeze("w")
>>> table = ledger(train(model, dosage(), learning_rate=0.1, stop={"step_size": 0.001}),
...                first=2, last=1)
>>> print(table.render("text"))
step       b3     SSR  dSSR/db3  step size   new b3
----  -------  ------  --------  ---------  -------
   1   0.0000  1.2500    1.0000     0.1000  -0.1000
   2  -0.1000  1.1800    0.4000     0.0400  -0.1400
 ...      ...     ...       ...        ...      ...
   7  -0.1660  1.1667    0.0041     0.0004  -0.1664
<BLANKLINE>
stopped: b3 = -0.166 after 7 steps: every step size is below 0.001
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrule.errors import ChainruleError
from chainrule.explain.document import (
    Column,
    Document,
    Explanation,
    Paragraph,
    Table,
)
from chainrule.explain.notation import latex_derivative, latex_name, loss_display_name
from chainrule.explain.outcome import stop_message
from chainrule.training import History
from chainrule.version import SCHEMA_VERSION

#: The per-scalar dicts of a step record, in the order the ledger shows them.
_PARTS = ("values", "gradients", "step_sizes", "new_values")


@dataclass(frozen=True, eq=False)
class Ledger(Explanation):
    """The chosen rows of a training history, ready to render.

    ``steps`` are the history's step records as JSON-ready dicts (``step``, ``loss``,
    ``values``, ``gradients``, ``step_sizes``, ``new_values``), restricted to the chosen
    rows and ``columns``; ``gap_before`` is the row before which rows were left out.
    """

    trained: tuple[str, ...]
    loss: str
    columns: tuple[str, ...]
    steps: tuple[dict[str, Any], ...]
    gap_before: int | None
    stop_reason: str
    message: str
    final: dict[str, Any]

    @property
    def loss_name(self) -> str:
        """The loss as the learner writes it: ``SSR``."""
        return loss_display_name(self.loss)

    def to_dict(self) -> dict[str, Any]:
        """``history.to_dict()`` restricted to the chosen rows (and columns, if chosen), with
        the loss's label (``SSR``) after its name (docs/json.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "trained": list(self.trained),
            "loss_name": self.loss,
            "loss_label": self.loss_name,
            "steps": [dict(step) for step in self.steps],
            "stop_reason": self.stop_reason,
            "final": self.final,
        }

    def document(self) -> Document:
        shown = [p for p in self.columns if any(p in s["values"] for s in self.steps)]
        loss = self.loss_name
        several = len(shown) > 1

        columns = [Column("step", "step")]
        columns += [Column(p, f"${latex_name(p)}$") for p in shown]
        columns.append(Column(loss, f"${latex_name(loss)}$"))
        columns += [Column(f"d{loss}/d{p}", f"${latex_derivative(loss, p)}$") for p in shown]
        if several:
            columns += [Column(f"step size ({p})", f"step size (${latex_name(p)}$)") for p in shown]
        else:
            columns += [Column("step size", "step size") for _ in shown]
        columns += [Column(f"new {p}", f"new ${latex_name(p)}$") for p in shown]
        rows = []
        for s in self.steps:
            cells: list[Any] = [s["step"], *(s["values"][p] for p in shown), s["loss"]]
            for part in _PARTS[1:]:
                cells += [s[part][p] for p in shown]
            rows.append(tuple(cells))
        turned = self._turned(shown) if several else None
        table = Table(tuple(columns), tuple(rows), gap_before=self.gap_before, turned=turned)
        if not self.message:
            return (table,)
        return (table, Paragraph(f"stopped: {self.message}"))

    def _turned(self, shown: list[str]) -> Table:
        """The same numbers, one row per step and parameter: as narrow as one parameter's
        table however many parameters were trained (what a narrow terminal shows)."""
        loss = self.loss_name
        columns = (
            Column("step", "step"),
            Column("parameter", "parameter"),
            Column("value", "value"),
            Column(loss, f"${latex_name(loss)}$"),
            Column("slope", "slope"),
            Column("step size", "step size"),
            Column("new value", "new value"),
        )
        rows = []
        for s in self.steps:
            for i, p in enumerate(shown):
                first = i == 0
                rows.append(
                    (
                        s["step"] if first else None,
                        p,
                        s["values"][p],
                        s["loss"] if first else None,
                        s["gradients"][p],
                        s["step_sizes"][p],
                        s["new_values"][p],
                    )
                )
        gap = None if self.gap_before is None else self.gap_before * len(shown)
        return Table(columns, tuple(rows), gap_before=gap, keep_first=2)


def ledger(
    history: History,
    columns: list[str] | None = None,
    every: int = 1,
    first: int | None = None,
    last: int | None = None,
    style: str = "python",
) -> Ledger:
    """The step table of ``history``: one row per step, then why the run stopped.

    ``columns`` picks trained scalars by name (default: all of them); ``every`` keeps
    steps 1, 1 + every, 1 + 2 every, ... and always the last step; ``first`` and
    ``last`` keep that many rows from each end, with an ellipsis row in between.
    ``style`` is how the stop message writes a remedy (see :func:`stop_message`).
    A history kept without detail has only the loss per step.

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> from chainrule.training import train
    >>> history = train(Formula("p = w * dosage + b", inputs=["dosage"]), dosage(),
    ...                 stop={"max_steps": 50})
    >>> [s["step"] for s in ledger(history, columns=["b"], every=20).steps]
    [1, 21, 41, 50]
    """
    for name, count in (("every", every), ("first", first), ("last", last)):
        if count is None:
            continue
        if isinstance(count, bool) or not isinstance(count, int) or count < (name == "every"):
            least = 1 if name == "every" else 0
            raise ChainruleError(f"ledger: {name} must be a whole number >= {least}, got {count!r}")
    trained = tuple(history.trained)
    chosen = tuple(trained if columns is None else columns)
    unknown = [c for c in chosen if c not in trained]
    if unknown:
        raise ChainruleError(
            f"ledger: {', '.join(map(repr, unknown))} was not trained; "
            f"the trained parameters are: {', '.join(trained) or 'none'}"
        )
    total = history.num_steps
    picked = list(range(0, total, every))
    if picked and picked[-1] != total - 1:
        picked.append(total - 1)
    gap = None
    if (first is not None or last is not None) and (first or 0) + (last or 0) < len(picked):
        head, tail = first or 0, last or 0
        picked = picked[:head] + picked[len(picked) - tail :]
        gap = head
    # Only the rows shown are built: the History's arrays are read at those steps.
    rows = tuple(_restricted(history.step_dict(i), chosen, columns is not None) for i in picked)
    return Ledger(
        trained=trained,
        loss=history.loss_name,
        columns=chosen,
        steps=rows,
        gap_before=gap,
        stop_reason=history.stop_reason,
        # a run still going (the web page's Step button) has no stop message yet
        message=stop_message(history, style) if history.stop_reason else "",
        final=history.final_dict(),
    )


def _restricted(step: dict[str, Any], columns: tuple[str, ...], chosen: bool) -> dict[str, Any]:
    """A step record keeping only the chosen scalars (unchanged when none were chosen)."""
    if not chosen:
        return step
    kept = dict(step)
    for part in _PARTS:
        kept[part] = {p: v for p, v in step[part].items() if p in columns}
    return kept
