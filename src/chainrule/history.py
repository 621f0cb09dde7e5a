"""The History of a training run: facts only, no sentences.

A :class:`History` records what a run did: the loss before each step, for small models
every trained scalar's value, slope, step size and new value (a :class:`StepLog`), which
optimizer ran with which settings, the :class:`Stop` rule and the one that fired, and,
when the run diverged, a :class:`Divergence` record of what went wrong. It answers the
questions that every reader of a run shares (the values after step k, the losses with
the final one, whether the last step was undone), so that the explainer, the figures and
the web page ask it rather than re-deriving them. The sentences about a run are
written in :mod:`chainrule.explain`.

>>> import chainrule as cr
>>> history = cr.load_scenario("main-ideas").run().history
>>> history.optimizer, history.stop_reason, history.num_steps
('gradient_descent', 'step_size', 10)
>>> round(history.values_after(1)["b3"], 4)
1.5655
"""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.losses import LOSSES
from chainrule.nn.module import scalar_name
from chainrule.text import decimals
from chainrule.version import SCHEMA_VERSION

#: A History's repr lists the trained values when there are at most this many.
_REPR_VALUES = 8

#: Why a run stopped: a rule of its :class:`Stop`, or divergence.
STOP_REASONS = ("step_size", "loss", "max_steps", "diverged")

#: A loss more than this many times the first one, and still growing, has diverged: a
#: run that got there only climbs on towards overflow (hundreds of steps later for the
#: seed's network at learning rate 1.0) while its numbers stop meaning anything. This is
#: THE divergence rule: training applies it, and every reader asks the History.
DIVERGED_GROWTH = 1e10


def flat_predictions(out: np.ndarray) -> np.ndarray:
    """Predictions with one column as a vector: (n, 1) -> (n,).

    >>> flat_predictions(np.zeros((3, 1))).shape
    (3,)
    """
    return out.reshape(len(out)) if out.ndim == 2 and out.shape[1] == 1 else out


def json_float(x: Any) -> Any:
    """A float for JSON: not-a-number and infinities become None (JSON has no such values).

    >>> json_float([1.0, float("nan")])
    [1.0, None]
    """
    if isinstance(x, list):
        return [json_float(v) for v in x]
    return float(x) if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------
# Stop rules
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """When training stops; the rules combine and the first that fires wins.

    - ``step_size=tol``: StatQuest's rule. After a step, stop if every trained scalar's
      step size was smaller than ``tol`` in size.
    - ``loss=tol``: before a step, stop if the loss is already below ``tol``.
    - ``max_steps=N``: stop after ``N`` steps. ``max_steps=0`` trains nothing: the run
      stops at once, at the starting values (StatQuest's first video: predictions at
      given values).

    A loss or slope that is not a finite number always stops the run ("diverged"), and
    so does a loss that has grown to more than :data:`DIVERGED_GROWTH` times the first
    one and is still growing.

    >>> Stop.of({"step_size": 0.001})
    Stop(step_size=0.001, loss=None, max_steps=1000)
    """

    step_size: float | None = None
    loss: float | None = None
    max_steps: int = 1000

    def __post_init__(self) -> None:
        for name in ("step_size", "loss"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.integer, np.floating))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ChainruleError(f"stop: {name}: expected a number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        n = self.max_steps
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ChainruleError(f"stop: max_steps: expected a whole number >= 0, got {n!r}")
        object.__setattr__(self, "max_steps", int(n))

    @classmethod
    def of(cls, value: Stop | Mapping[str, Any] | None) -> Stop:
        """A Stop from a Stop, a dict of its fields, or None (the defaults).

        >>> Stop.of(None).max_steps
        1000
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = [f.name for f in fields(cls)]
            unknown = [key for key in value if key not in known]
            if unknown:
                raise ChainruleError(
                    f"stop: unknown rule {', '.join(map(repr, unknown))}; "
                    f"the rules are: {', '.join(known)}"
                )
            return cls(**value)
        raise ChainruleError(f"stop: give a Stop or a dict, not {type(value).__name__}")


@dataclass(frozen=True)
class Divergence:
    """What stopped a diverging run, as facts: ``kind`` is ``"loss"`` (not a number),
    ``"growth"`` (more than :data:`DIVERGED_GROWTH` times the first loss and still
    growing), ``"slope"`` (a slope not a number) or ``"step"`` (a finite slope whose step
    gives a value that is not a finite number)."""

    kind: str
    value: float = math.nan  # what the loss, slope or new value became (not finite)
    name: str = ""  # the scalar, for "slope" and "step"
    loss: float = math.nan  # the loss at which it happened
    slope: float = math.nan  # the slope, for "step"


# ---------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """One step of training: the loss before it, and per trained scalar the value before,
    the slope, the step size and the new value. ``predictions`` are the model's outputs
    for the step's rows (before the step), kept when the data is small."""

    step: int
    loss: float
    values: dict[str, float]
    slopes: dict[str, float]
    step_sizes: dict[str, float]
    new_values: dict[str, float]
    predictions: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (without the predictions).

        >>> record = StepRecord(1, 20.4, {"b3": 0.0}, {"b3": -15.7}, {"b3": -1.57}, {"b3": 1.57})
        >>> record.to_dict()["step_sizes"], sorted(record.to_dict())
        ({'b3': -1.57}, ['gradients', 'loss', 'new_values', 'step', 'step_sizes', 'values'])
        """
        return {
            "step": self.step,
            "loss": json_float(self.loss),
            "values": self.values,
            "gradients": self.slopes,
            "step_sizes": self.step_sizes,
            "new_values": self.new_values,
        }


#: A parameter as a History remembers it: its dotted name and its shape.
ParameterShape = tuple[str, tuple[int, ...]]


def scalar_names(parameters: Sequence[ParameterShape]) -> list[str]:
    """The name of every scalar of the parameters, in order (row-major within each).

    >>> scalar_names([("b3", ()), ("hidden.weight", (1, 2))])
    ['b3', 'hidden.weight[0,0]', 'hidden.weight[0,1]']
    """
    return [scalar_name(name, index) for name, shape in parameters for index in np.ndindex(shape)]


class StepLog(Sequence[StepRecord]):
    """The per-step detail of a run, kept compactly: one block of floats per step.

    The block of step ``i + 1`` holds three rows, one number per trained scalar: the new
    values, the slopes and the step sizes. The values before a step are the new values
    of the step before (or the starting values), so they are not stored twice;
    ``losses`` is the History's own array. Recording a step is one array copy. Indexing
    gives :class:`StepRecord` objects, built when first asked for.

    >>> log = StepLog(1, ["b"], array("d", [4.0]))
    >>> log.start()[:] = [1.0]
    >>> log.next_block()[:] = [0.75, 0.5, 0.25]  # new values, slopes, step sizes
    >>> log.end_step(None)
    >>> log[0]  # doctest: +NORMALIZE_WHITESPACE
    StepRecord(step=1, loss=4.0, values={'b': 1.0}, slopes={'b': 0.5},
               step_sizes={'b': 0.25}, new_values={'b': 0.75}, predictions=None)
    """

    def __init__(
        self,
        size: int,
        names: Sequence[str] | Callable[[], list[str]],
        losses: array,
        capacity: int = 16,
    ) -> None:
        self._names = names if callable(names) else list(names)
        self._losses = losses
        self._start = np.empty(size)
        self._blocks = np.empty((max(int(capacity), 1), 3 * size))  # one flat row a step
        # Each step's outputs: rows of one block while they all have one shape (a
        # full-batch run: a few floats a step), else one entry per step (None: not kept).
        self._count = 0
        self._prediction_rows: np.ndarray | None = None
        self._prediction_list: list[np.ndarray | None] | None = None
        self._records: list[StepRecord | None] = []

    @property
    def names(self) -> list[str]:
        """The trained scalars' names: the columns of every row."""
        if callable(self._names):
            self._names = self._names()
        return self._names  # type: ignore[return-value]

    # -- recording (used by train) -----------------------------------------------------

    def start(self) -> np.ndarray:
        """The row of the starting values (a view into the log, to copy into)."""
        return self._start

    def values_before(self, i: int) -> np.ndarray:
        """The values before step ``i + 1``: the starting ones, or step ``i``'s new ones."""
        return self._start if i == 0 else self._blocks[i - 1, : len(self._start)]

    def next_block(self) -> np.ndarray:
        """The block of the next step, one flat row: its new values, then its slopes, then
        its step sizes (a view, to copy into); :meth:`end_step` then records it."""
        k = self._count
        if k >= len(self._blocks):
            grown = np.empty((2 * k, self._blocks.shape[1]))
            grown[:k] = self._blocks
            self._blocks = grown
        return self._blocks[k]

    def end_step(self, predictions: np.ndarray | None) -> None:
        """The block of :meth:`next_block` is filled: the step is recorded, with the model's
        outputs for its rows when they are kept (None otherwise). (Each step has an entry
        in the list of predictions: its length is the number of steps.)"""
        k, rows = self._count, self._prediction_rows
        if self._prediction_list is None and predictions is not None:
            if rows is None and k == 0:
                rows = self._prediction_rows = np.empty((len(self._blocks), *predictions.shape))
            if rows is not None and predictions.shape == rows.shape[1:]:
                if k >= len(rows):
                    grown = np.empty((2 * k, *rows.shape[1:]))
                    grown[:k] = rows
                    rows = self._prediction_rows = grown
                rows[k] = predictions
                self._count += 1
                return
        if self._prediction_list is None:  # from now on, one entry per step
            kept = [] if rows is None else [row.copy() for row in rows[:k]]
            self._prediction_list = kept + [None] * (k - len(kept))
            self._prediction_rows = None
        self._prediction_list.append(predictions)
        self._count += 1

    def _predictions_of(self, i: int) -> np.ndarray | None:
        """The outputs of step ``i + 1``, if they were kept."""
        if self._prediction_list is not None:
            return self._prediction_list[i]
        return None if self._prediction_rows is None else self._prediction_rows[i]

    def _triple(self, i: int) -> np.ndarray:
        """Step ``i + 1``'s block as three rows: new values, slopes, step sizes."""
        return self._blocks[i].reshape(3, len(self._start))

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        n = self._count
        i = operator.index(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"step index {index} out of range for {n} steps")
        if len(self._records) < n:
            self._records.extend([None] * (n - len(self._records)))
        record = self._records[i]
        if record is None:
            names = self.names
            new, slopes, step_sizes = self._triple(i).tolist()
            predictions = self._predictions_of(i)
            record = self._records[i] = StepRecord(
                step=i + 1,
                loss=self._losses[i],
                values=dict(zip(names, self.values_before(i).tolist(), strict=True)),
                slopes=dict(zip(names, slopes, strict=True)),
                step_sizes=dict(zip(names, step_sizes, strict=True)),
                new_values=dict(zip(names, new, strict=True)),
                predictions=None if predictions is None else flat_predictions(predictions),
            )
        return record

    def arrays(self) -> dict[str, np.ndarray]:
        """The detail as arrays of shape (steps, scalars): ``values`` before each step,
        ``slopes``, ``step_sizes`` and ``new_values`` (views into the log but ``values``:
        read them, do not write).

        >>> log = StepLog(1, ["b"], array("d", [4.0]))
        >>> log.start()[:] = [1.0]
        >>> log.next_block()[:] = [0.75, 0.5, 0.25]
        >>> log.end_step(None)
        >>> log.arrays()["values"], log.arrays()["new_values"]
        (array([[1.]]), array([[0.75]]))
        """
        n = self._count
        blocks = self._blocks[:n].reshape(n, 3, len(self._start))
        return {
            "values": np.concatenate([self._start[None], blocks[: n - 1, 0]])[:n],
            "slopes": blocks[:, 1],
            "step_sizes": blocks[:, 2],
            "new_values": blocks[:, 0],
        }

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StepLog | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StepLog({self._count} steps of {len(self._start)} scalars)"


@dataclass(eq=False)
class History:
    """What a training run did.

    ``parameters`` names the trained parameters with their shapes, and ``trained`` names
    their scalars (e.g. ``b3`` or ``hidden.weight[0,1]``), built when asked for;
    ``losses`` holds the loss before each step (always kept, one float per step) and
    ``accuracies`` the accuracy on the step's rows for classification; ``steps`` holds a
    :class:`StepRecord` per step only when ``detail`` is on (a :class:`StepLog`, empty
    otherwise), so a long run of a large model keeps one float per step and no more.
    ``stop_reason`` is one of ``"step_size"``, ``"loss"``, ``"max_steps"``,
    ``"diverged"`` (:func:`chainrule.explain.stop_message` says it in words).
    ``final_parameters`` holds a copy of every parameter at the end (frozen ones too)
    and ``final_values`` the same per scalar, built when asked for; ``final_loss`` and
    ``final_predictions`` come from the whole data set at the end.
    """

    parameters: list[ParameterShape]
    loss_name: str
    detail: bool
    learning_rate: float
    losses: array = field(default_factory=lambda: array("d"))
    accuracies: array | None = None
    stop_reason: str = ""
    #: The optimizer's name (``"gradient_descent"``, ``"adam"``...) and its settings.
    optimizer: str = "gradient_descent"
    optimizer_settings: dict[str, Any] = field(default_factory=dict)
    #: The stop rules the run was given (the one that fired is :attr:`stop_reason`).
    stop: Stop = field(default_factory=lambda: Stop())
    #: What went wrong, when the run diverged; None otherwise.
    divergence: Divergence | None = None
    final_parameters: dict[str, np.ndarray] = field(default_factory=dict)
    final_loss: float = math.nan
    final_predictions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    final_accuracy: float | None = None
    step_log: StepLog | None = field(default=None, repr=False)
    _trained: list[str] | None = field(default=None, init=False, repr=False)
    _final_values: dict[str, float] | None = field(default=None, init=False, repr=False)

    @property
    def trained(self) -> list[str]:
        """The trained scalars' names, in order (built on first use).

        >>> History([("b3", ()), ("w", (2,))], "ssr", False, 0.1).trained
        ['b3', 'w[0]', 'w[1]']
        """
        if self._trained is None:
            self._trained = scalar_names(self.parameters)
        return self._trained

    @property
    def steps(self) -> StepLog:
        """A :class:`StepRecord` per step when ``detail`` is on; empty otherwise."""
        if self.step_log is None:
            self.step_log = StepLog(0, [], self.losses)
        return self.step_log

    @property
    def final_values(self) -> dict[str, float]:
        """Every scalar of the model at the end (frozen ones too), by name (built on first use).

        >>> end = {"w": np.array([1.0, 2.0])}
        >>> History([], "ssr", False, 0.1, final_parameters=end).final_values
        {'w[0]': 1.0, 'w[1]': 2.0}
        """
        if self._final_values is None:
            shapes = [(name, value.shape) for name, value in self.final_parameters.items()]
            values = [v for value in self.final_parameters.values() for v in value.ravel().tolist()]
            if not shapes:  # a run still going (Trainer.advance): nothing to keep yet
                return {}
            self._final_values = dict(zip(scalar_names(shapes), values, strict=True))
        return self._final_values

    def __repr__(self) -> str:
        """A few lines: steps, stop reason, final loss, and the trained values when few
        (the detail stays in :attr:`steps`, :attr:`losses` and :attr:`final_values`).

        >>> from chainrule.scenario import load_scenario
        >>> load_scenario("main-ideas").run().history
        History(10 steps, stopped by step_size, final ssr 6.303e-05,
                trained: b3 = 2.6089)
        """
        loss = decimals(self.final_loss) if math.isfinite(self.final_loss) else self.final_loss
        lines = [
            f"History({self.num_steps} steps, stopped by {self.stop_reason or 'nothing yet'}, "
            f"final {self.loss_name} {loss}"
        ]
        trained = self.trained
        if trained and len(trained) <= _REPR_VALUES and self.final_parameters:
            values = self.final_values
            shown = ", ".join(f"{name} = {decimals(values[name])}" for name in trained)
            lines.append(f"        trained: {shown}")
        elif trained:
            lines.append(f"        {len(trained)} trained values (see .final_values)")
        return ",\n".join(lines) + ")"

    @property
    def num_steps(self) -> int:
        """How many steps were taken (the length of :attr:`losses`).

        >>> History([("b3", ())], loss_name="ssr", detail=False, learning_rate=0.1).num_steps
        0
        """
        return len(self.losses)

    # -- the questions every reader of a run asks ------------------------------------------

    @property
    def diverged(self) -> bool:
        """Whether the run diverged: training's one rule (a loss or slope that is not a
        finite number, or a loss grown :data:`DIVERGED_GROWTH`-fold and still growing)."""
        return self.stop_reason == "diverged"

    @property
    def plain_gradient_descent(self) -> bool:
        """Whether every step size was exactly slope x learning rate (StatQuest's rule):
        gradient descent, or SGD without momentum or weight decay."""
        settings = self.optimizer_settings
        return self.optimizer == "gradient_descent" or (
            self.optimizer == "sgd"
            and not settings.get("momentum")
            and not settings.get("weight_decay")
        )

    @property
    def undone(self) -> bool:
        """Whether training undid the last step (of a diverged run): the final values are
        those before it, and the loss after it is known only from the divergence record."""
        if not self.diverged or not self.steps:
            return False
        final, after = self.final_values, self.steps[-1].new_values
        return any(n in final and final[n] != after[n] for n in after)

    def losses_with_final(self) -> np.ndarray:
        """The loss before each step, then the loss after the last one (unless training
        undid that step).

        >>> h = History([("b", ())], "ssr", False, 0.1, losses=array("d", [4.0]), final_loss=1.0)
        >>> h.losses_with_final()
        array([4., 1.])
        """
        losses = np.asarray(self.losses, dtype=np.float64)
        if losses.size and not self.undone and not math.isnan(self.final_loss):
            losses = np.append(losses, self.final_loss)
        return losses

    def values_after(self, steps_taken: int) -> dict[str, float]:
        """The trained scalars' values after ``steps_taken`` steps (0 gives the start).

        Without per-step records only the end is known: any other step is an error that
        says how to keep them.
        """
        steps, total = self.steps, self.num_steps
        if not 0 <= steps_taken <= total:
            raise ChainruleError(
                f"step {steps_taken}: the run has {total} steps; choose 0 (the start) to {total}"
            )
        if steps_taken < len(steps):
            return dict(steps[steps_taken].values)
        if steps and steps_taken == len(steps):
            return dict(steps[-1].new_values)
        if steps_taken == total and self.final_parameters:
            return {name: self.final_values[name] for name in self.trained}
        raise ChainruleError(
            f"the run kept no per-step values, so the values after {steps_taken} of its "
            f"{total} steps are unknown; only the end can be shown"
        )

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data.

        ``{"schema_version", "trained", "loss_name", "loss_label", "steps": [{"step", "loss",
        "values", "gradients", "step_sizes", "new_values"}], "stop_reason", "final":
        {"values", "loss", "predictions"}}``, in the vocabulary of docs/json.md.
        Without detail, each step has its loss and empty per-scalar dicts.

        >>> import json
        >>> from chainrule.nn import Module, Parameter
        >>> from chainrule.training import train
        >>> class Line(Module):
        ...     def __init__(self):
        ...         self.b = Parameter(0.0, name="b")
        ...     def forward(self, x):
        ...         return x[:, 0] * 0 + self.b
        >>> history = train(Line(), ([[0.0], [1.0]], [1.0, 1.0]), stop={"max_steps": 2})
        >>> sorted(history.to_dict())
        ['final', 'loss_label', 'loss_name', 'schema_version', 'steps', 'stop_reason', 'trained']
        >>> json.dumps(history.to_dict()["final"])
        '{"values": {"b": 0.64}, "loss": 0.2592, "predictions": [0.64, 0.64]}'
        """
        return {
            "schema_version": SCHEMA_VERSION,
            "trained": list(self.trained),
            "loss_name": self.loss_name,
            "loss_label": self.loss_label,
            "steps": [self.step_dict(i) for i in range(self.num_steps)],
            "stop_reason": self.stop_reason,
            "final": self.final_dict(),
        }

    @property
    def loss_label(self) -> str:
        """The loss as a derivation writes it (``SSR``); a loss of the user's own keeps its
        name."""
        spec = LOSSES.get(self.loss_name)
        return self.loss_name if spec is None else spec.display

    def step_dict(self, i: int) -> dict[str, Any]:
        """Step ``i + 1`` as JSON-ready data (see :meth:`to_dict`), built alone: a reader
        that shows a few steps of a long run builds those and no more."""
        if self.detail and self.step_log is not None:
            return self.step_log[i].to_dict()
        empty: dict[str, float] = {}
        return {
            "step": i + 1,
            "loss": json_float(self.losses[i]),
            "values": empty,
            "gradients": empty,
            "step_sizes": empty,
            "new_values": empty,
        }

    def final_dict(self) -> dict[str, Any]:
        """Where the run ended, as JSON-ready data: ``{"values", "loss", "predictions"}``."""
        return {
            "values": dict(self.final_values),
            "loss": json_float(self.final_loss),
            "predictions": [json_float(v) for v in self.final_predictions.tolist()],
        }
