"""Training: the fit loop, its stop rules and the History that the ledger reads.

One step is StatQuest's recipe: run the data through the model, measure the loss, let
backpropagation find every slope, then let the optimizer turn slopes into step sizes and
new values. :func:`train` repeats it until a stop rule fires and returns a
:class:`History` of what happened: the loss before each step and, for small models, every
trained scalar's value, slope, step size and new value.

>>> import chainrule as cr
>>> from chainrule.datasets import dosage
>>> model = cr.Formula('''
... x1 = w1 * dosage + b1
... y1 = softplus(x1)
... x2 = w2 * dosage + b2
... y2 = softplus(x2)
... predicted = w3 * y1 + w4 * y2 + b3
... ''', inputs=["dosage"],
...     values=dict(w1=3.34, b1=-1.43, w2=-3.53, b2=0.57, w3=-1.22, w4=-2.30, b3=0.0))
>>> model.freeze(); model.unfreeze("b3")
>>> history = train(model, dosage(), learning_rate=0.1, stop=Stop(step_size=0.001))
>>> history.message
'b3 = 2.61 after 10 steps: every step size is below 0.001'
>>> round(history.steps[0].slopes["b3"], 4)
-15.6551

The data is a :class:`~chainrule.datasets.Dataset`, or a pair ``(inputs, target)`` where
``inputs`` is an (n, d) matrix (or a 1-D array for one input) or a dict name -> values.
A model with an ``inputs`` attribute (a Formula) gets its columns in that order, picked
by name from a Dataset or a dict.
"""

from __future__ import annotations

import math
import operator
import sys
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError, GraphError
from chainrule.losses import LOSSES, REDUCTIONS, Loss, get_loss
from chainrule.nn.module import Module, scalar_name
from chainrule.optim import Optimizer, Update, make_optimizer
from chainrule.tensor import Tensor, inplace, no_grad

#: Per-scalar records are kept by default up to this many trainable scalars ...
DETAIL_MAX_SCALARS = 50
#: ... and up to this many data rows (per-step predictions are kept up to this many too).
DETAIL_MAX_ROWS = 1000
#: A loss more than this many times the first one, and still growing, has diverged: a
#: run that got there only climbs on towards overflow (hundreds of steps later for the
#: seed's network at learning rate 1.0) while its numbers stop meaning anything.
DIVERGED_GROWTH = 1e10
#: A progress bar appears once a run has taken this long (seconds), on a terminal.
PROGRESS_AFTER = 1.0

STOP_REASONS = ("step_size", "loss", "max_steps", "diverged")


# ---------------------------------------------------------------------------------------
# Stop rules
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """When training stops; the rules combine and the first that fires wins.

    - ``step_size=tol``: StatQuest's rule. After a step, stop if every trained scalar's
      step size was smaller than ``tol`` in size.
    - ``loss=tol``: before a step, stop if the loss is already below ``tol``.
    - ``max_steps=N``: stop after ``N`` steps.

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
                raise ChainruleError(f"stop: {name} must be a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))
        n = self.max_steps
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ChainruleError(f"stop: max_steps must be a whole number >= 1, got {n!r}")
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
        ({'b3': -1.57}, ['loss', 'new_values', 'slopes', 'step', 'step_sizes', 'values'])
        """
        return {
            "step": self.step,
            "loss": _json_float(self.loss),
            "values": self.values,
            "slopes": self.slopes,
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
        self._predictions: list[np.ndarray | None] = []
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
        k = len(self._predictions)
        if k >= len(self._blocks):
            grown = np.empty((2 * k, self._blocks.shape[1]))
            grown[:k] = self._blocks
            self._blocks = grown
        return self._blocks[k]

    def end_step(self, predictions: np.ndarray | None) -> None:
        """The block of :meth:`next_block` is filled: the step is recorded, with the model's
        outputs for its rows when they are kept (None otherwise). (Each step has an entry
        in the list of predictions: its length is the number of steps.)"""
        self._predictions.append(predictions)

    def _triple(self, i: int) -> np.ndarray:
        """Step ``i + 1``'s block as three rows: new values, slopes, step sizes."""
        return self._blocks[i].reshape(3, len(self._start))

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._predictions)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._predictions)))]
        n = len(self._predictions)
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
            predictions = self._predictions[i]
            record = self._records[i] = StepRecord(
                step=i + 1,
                loss=self._losses[i],
                values=dict(zip(names, self.values_before(i).tolist(), strict=True)),
                slopes=dict(zip(names, slopes, strict=True)),
                step_sizes=dict(zip(names, step_sizes, strict=True)),
                new_values=dict(zip(names, new, strict=True)),
                predictions=None if predictions is None else _flat(predictions),
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
        n = len(self._predictions)
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
        return f"StepLog({len(self._predictions)} steps of {len(self._start)} scalars)"


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
    ``"diverged"`` and ``message`` says it in one sentence. ``final_parameters`` holds a
    copy of every parameter at the end (frozen ones too) and ``final_values`` the same
    per scalar, built when asked for; ``final_loss`` and ``final_predictions`` come from
    the whole data set at the end.
    """

    parameters: list[ParameterShape]
    loss_name: str
    detail: bool
    learning_rate: float
    losses: array = field(default_factory=lambda: array("d"))
    accuracies: array | None = None
    stop_reason: str = ""
    message: str = ""
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
            self._final_values = dict(zip(scalar_names(shapes), values, strict=True))
        return self._final_values

    @property
    def num_steps(self) -> int:
        """How many steps were taken (the length of :attr:`losses`).

        >>> History([("b3", ())], loss_name="ssr", detail=False, learning_rate=0.1).num_steps
        0
        """
        return len(self.losses)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data.

        ``{"trained", "loss", "steps": [{"step", "loss", "values", "slopes", "step_sizes",
        "new_values"}], "stop_reason", "final": {"values", "loss", "predictions"}}``.
        Without detail, each step has its loss and empty per-scalar dicts.

        >>> import json
        >>> from chainrule.nn import Parameter
        >>> class Line(Module):
        ...     def __init__(self):
        ...         self.b = Parameter(0.0, name="b")
        ...     def forward(self, x):
        ...         return x[:, 0] * 0 + self.b
        >>> history = train(Line(), ([[0.0], [1.0]], [1.0, 1.0]), stop={"max_steps": 2})
        >>> sorted(history.to_dict())
        ['final', 'loss', 'steps', 'stop_reason', 'trained']
        >>> json.dumps(history.to_dict()["final"])
        '{"values": {"b": 0.64}, "loss": 0.2592, "predictions": [0.64, 0.64]}'
        """
        if self.detail and self.step_log is not None:
            steps = [record.to_dict() for record in self.step_log]
        else:
            steps = [
                {
                    "step": i + 1,
                    "loss": _json_float(loss),
                    "values": {},
                    "slopes": {},
                    "step_sizes": {},
                    "new_values": {},
                }
                for i, loss in enumerate(self.losses)
            ]
        return {
            "trained": list(self.trained),
            "loss": self.loss_name,
            "steps": steps,
            "stop_reason": self.stop_reason,
            "final": {
                "values": dict(self.final_values),
                "loss": _json_float(self.final_loss),
                "predictions": [_json_float(v) for v in self.final_predictions.tolist()],
            },
        }


def _json_float(x: Any) -> Any:
    """A float for JSON: not-a-number and infinities become None (JSON has no such values)."""
    if isinstance(x, list):
        return [_json_float(v) for v in x]
    return float(x) if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    X: np.ndarray  # (n, d) in the model's input order
    y: np.ndarray  # (n,) or (n, k)
    task: str | None  # "regression", "binary", "multiclass", or None when unknown

    @property
    def n(self) -> int:
        return len(self.y)


def _model_inputs(model: Any, available: Sequence[str] | None) -> tuple[str, ...] | None:
    """The input names a model reads (a Formula's ``inputs``), or None for a layer model.

    A formula whose inputs are not known yet is bound to the data's input names; a name
    of the data that it does not use is refused (a misspelt input would otherwise be
    trained as a parameter while the data's column is ignored).
    """
    if getattr(model, "is_bound", True) is False and available is not None:
        model.bind_to_data(list(available))
    if "inputs" not in dir(type(model)) and "inputs" not in vars(model):
        return None
    return tuple(model.inputs)


def _columns(columns: Mapping[str, Any], names: Sequence[str], where: str) -> np.ndarray:
    missing = [name for name in names if name not in columns]
    if missing:
        raise ChainruleError(
            f"the model reads input {', '.join(map(repr, missing))}, but {where} has: "
            f"{', '.join(map(str, columns))}"
        )
    try:
        return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])
    except (TypeError, ValueError) as exc:
        raise ChainruleError(
            f"the inputs in {where} are not numbers of one length ({exc})"
        ) from None


def _prepare(model: Any, data: Any) -> _Data:
    """The data as an (n, d) matrix in the model's input order, the target and the task."""
    if isinstance(data, Dataset):
        names = _model_inputs(model, data.input_names)
        X = data.X if names is None else _columns(data.inputs, names, f"data set '{data.name}'")
        return _Data(X, np.asarray(data.target), data.task)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        inputs, target = data
        if isinstance(inputs, Mapping):
            names = _model_inputs(model, list(inputs)) or list(inputs)
            X = _columns(inputs, names, "the data")
        else:
            try:
                X = np.asarray(inputs.data if isinstance(inputs, Tensor) else inputs, np.float64)
            except (TypeError, ValueError) as exc:
                raise ChainruleError(f"the inputs are not numeric ({exc})") from None
            X = X.reshape(-1, 1) if X.ndim == 1 else X
            if X.ndim != 2:
                raise ChainruleError(f"the inputs must be an (n, d) matrix, got shape {X.shape}")
        y = np.asarray(target.data if isinstance(target, Tensor) else target)
        if y.ndim == 0 or len(y) != len(X):
            raise ChainruleError(
                f"the inputs have {len(X)} rows but the target has shape {y.shape}; "
                "give one target per row"
            )
        return _Data(X, y, None)
    raise ChainruleError(
        "data must be a Dataset or a pair (inputs, target), where inputs is an (n, d) "
        f"matrix or a dict name -> values; got {type(data).__name__}"
    )


def _resolve_loss(loss: str | Loss) -> tuple[Loss, str]:
    if callable(loss):
        return loss, getattr(loss, "__name__", "loss")
    function = get_loss(loss)
    return function, function.__name__


def _task_for(data: _Data, loss_name: str) -> str | None:
    if data.task is not None:
        return data.task
    return {"cross_entropy": "multiclass", "binary_cross_entropy": "binary"}.get(loss_name)


def _accuracy(out: np.ndarray, y: np.ndarray, task: str | None, loss_name: str) -> float | None:
    """The fraction of rows whose predicted class is right (None for regression)."""
    if task not in ("binary", "multiclass"):
        return None
    labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y))
    if out.ndim == 2 and out.shape[1] > 1:
        predicted = out.argmax(axis=1)
    elif task == "binary":
        # Logits for cross-entropy from logits; otherwise outputs meant to be near 0 or 1.
        threshold = 0.0 if loss_name == "binary_cross_entropy" else 0.5
        predicted = out.reshape(len(y)) > threshold
        labels = labels > 0.5
    else:
        return None
    return int(np.count_nonzero(predicted == labels)) / len(labels) if len(labels) else math.nan


def _flat(out: np.ndarray) -> np.ndarray:
    """Predictions with one column as a vector (n, 1) -> (n,)."""
    return out.reshape(len(out)) if out.ndim == 2 and out.shape[1] == 1 else out


# ---------------------------------------------------------------------------------------
# Progress and messages
# ---------------------------------------------------------------------------------------


class _Progress:
    """A rich progress bar on stderr, shown once a run takes longer than a second.

    ``mode``: None shows it on a terminal only, True always, False never; a callable is
    called as ``mode(step, loss)`` after every step instead.
    """

    def __init__(self, mode: bool | Callable[[int, float], Any] | None, total: int) -> None:
        self.callback = mode if callable(mode) else None
        self.enabled = mode is True or (mode is None and sys.stderr.isatty())
        self.total = total
        self.start = self.shown = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    @property
    def active(self) -> bool:
        """Whether :meth:`update` does anything (else train skips calling it)."""
        return self.callback is not None or self.enabled

    def update(self, step: int, loss: float) -> None:
        if self.callback is not None:
            self.callback(step, loss)
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.bar is None:
            if now - self.start < PROGRESS_AFTER:
                return
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            except ImportError:  # no rich: no bar
                self.enabled = False
                return
            self.bar = Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, loss="")
        elif now - self.shown < 0.1:
            return
        self.shown = now
        self.bar.update(self.task, completed=step, loss=f"{loss:.4g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _number_text(x: float) -> str:
    text = f"{x:.3g}"
    return text if any(c in text for c in ".en") else f"{text}.0"


def _steps_text(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _summary(history: History, trained: list[Any]) -> str:
    """``b3 = 2.61 after 10 steps`` for a few scalars, else ``trained 7 parameters for ...``."""
    steps = _steps_text(history.num_steps)
    size = sum(p.size for p in trained)
    if size <= 3:
        values = _concat([p.data for p in trained]).tolist()
        shown = ", ".join(
            f"{name} = {v:.3g}" for name, v in zip(history.trained, values, strict=True)
        )
        return f"{shown} after {steps}"
    return f"trained {size} parameters for {steps}"


@dataclass(frozen=True)
class _Problem:
    """What stopped a diverging run: ``kind`` is ``"loss"`` (not a number), ``"growth"``
    (huge and still growing), ``"slope"`` (a slope not a number) or ``"step"`` (a finite
    slope whose step gives a value that is not a finite number)."""

    kind: str
    state: str = ""  # what the loss, slope or value became, e.g. "infinite"
    name: str = ""  # the scalar, for "slope" and "step"
    loss: float = math.nan  # the loss at which it happened
    slope: float = math.nan  # the slope, for "step"


def _diverged_message(losses: array, problem: _Problem, lr: float) -> str:
    """Why a run diverged, in one sentence with the run's own numbers.

    >>> _diverged_message(array("d", [20.4, 510.0]), _Problem("growth", loss=3.1e12), 1.0)
    'the loss grew from 20.4 to 3.1e+12 in 2 steps: the learning rate 1.0 is too large for \
this loss; try 0.1'
    >>> _diverged_message(array("d"), _Problem("step", "infinite", "b3", 20.4, -15.7), 1e308)
    'step 1 would make b3 infinite, although its slope (-15.7) and the loss (20.4) are \
finite: the learning rate 1e+308 is too large for this loss; try 1e+307'
    """
    n = len(losses)
    rate, smaller = _number_text(lr), _number_text(lr / 10)
    too_large = f"the learning rate {rate} is too large for this loss; try {smaller}"
    if problem.kind == "growth":
        grew = f"the loss grew from {losses[0]:.3g} to {problem.loss:.3g} in {_steps_text(n)}"
        return f"{grew}: {too_large}"
    if problem.kind == "step":
        return (
            f"step {n + 1} would make {problem.name} {problem.state}, although its slope "
            f"({problem.slope:.3g}) and the loss ({problem.loss:.3g}) are finite: {too_large}"
        )
    subject = "the loss" if problem.kind == "loss" else f"the slope of {problem.name}"
    state = problem.state
    if n == 0:
        return (
            f"{subject} is {state} at the starting values: check the data and the starting values"
        )
    first, last = losses[0], losses[-1]
    if last > first:
        return (
            f"the loss grew from {first:.3g} to {last:.3g} in {_steps_text(n)}, then {subject} "
            f"became {state}: {too_large}"
        )
    return (
        f"{subject} became {state} after {_steps_text(n)} (the loss was {last:.3g}): check "
        f"the data, the starting values and the learning rate {rate}"
    )


def _non_finite(x: float) -> str:
    if math.isnan(x):
        return "NaN (not a number)"
    return "infinite" if x > 0 else "infinite (-inf)"


def _bad_update(updates: list[Update], names: dict[int, str], loss: float) -> _Problem:
    """What went wrong in the first update whose new value is not a finite number: its
    slope, or (when the slope is finite) a step too large for the numbers."""
    for u in updates:
        new = np.reshape(u.new_value, -1)
        bad = np.flatnonzero(~np.isfinite(new))
        if not bad.size:
            continue
        slope = np.reshape(u.slope, -1)
        wrong = np.flatnonzero(~np.isfinite(slope))
        at = int(wrong[0] if wrong.size else bad[0])
        index = tuple(int(i) for i in np.unravel_index(at, np.shape(u.new_value)))
        name = scalar_name(names[id(u.parameter)], index)
        if wrong.size:
            return _Problem("slope", _non_finite(float(slope[at])), name, loss)
        return _Problem("step", _non_finite(float(new[at])), name, loss, float(slope[at]))
    raise AssertionError("no update has a value that is not a finite number")


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


def _batches(n: int, batch_size: int | None, seed: int):
    """Row indices of each step's batch: all rows, or seeded shuffled minibatches forever."""
    if batch_size is None or batch_size >= n:
        while True:
            yield None
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    """The values of several parameters as one flat vector, in parameter order."""
    return np.concatenate([np.reshape(a, -1) for a in arrays])


class _Flat:
    """The trained parameters seen as one flat vector of their scalars, in order.

    Arrays of the parameters' shapes (values, slopes, step sizes) are copied into a flat
    row with one numpy call; parameters that are all single numbers (a Formula's) take a
    faster path, a plain assignment of the list.
    """

    def __init__(self, params: list[Any]) -> None:
        self.params = params
        self.scalars = all(p.ndim == 0 for p in params)
        self.spans: list[tuple[int, int, tuple[int, ...]]] = []
        start = 0
        for p in params:
            self.spans.append((start, start + p.size, p.shape))
            start += p.size
        self.size = start
        self._row = np.empty(self.size) if self.scalars else None

    def write(self, arrays: Sequence[Any], out: np.ndarray) -> None:
        """Copy ``arrays`` (one per parameter, of its shape, in order; or several such runs
        one after the other) into the flat row ``out``."""
        if self.scalars:
            out[:] = arrays
        else:
            np.concatenate([np.reshape(a, -1) for a in arrays], out=out)

    def read(self, out: np.ndarray) -> None:
        """Copy the parameters' current values into the flat row ``out``."""
        self.write([p.data for p in self.params], out)

    def values(self) -> np.ndarray:
        """The parameters' current values as a new flat vector."""
        out = np.empty(self.size)
        self.read(out)
        return out

    def copy(self) -> np.ndarray | list[np.ndarray]:
        """A copy of the parameters' values: a flat row for single numbers, else one
        array per parameter (no single large block to find room for)."""
        if self.scalars:
            return self.values()
        return [p.data.copy() for p in self.params]

    def restore(self, values: np.ndarray | list[np.ndarray]) -> None:
        """Set the parameters to ``values``: a flat row, or one array per parameter."""
        with no_grad():
            if isinstance(values, np.ndarray):
                values = [values[a:b].reshape(shape) for a, b, shape in self.spans]
            for p, value in zip(self.params, values, strict=True):
                inplace(p)[...] = value

    def finite(self, arrays: Sequence[Any]) -> bool:
        """Whether every entry of ``arrays`` is a finite number.

        A sum is finite exactly when every entry is, unless finite entries overflow it:
        only then is each entry looked at.
        """
        if self._row is not None:
            row = self._row
            row[:] = arrays
            return math.isfinite(sum(row.tolist())) or bool(np.isfinite(row).all())
        total, add = 0.0, np.add.reduce
        for a in arrays:
            total += add(a, None)
        return math.isfinite(total) or all(bool(np.isfinite(a).all()) for a in arrays)

    def row_finite(self, row: np.ndarray) -> bool:
        """Whether every entry of the flat row ``row`` is a finite number (as :meth:`finite`)."""
        total = sum(row.tolist()) if self._row is not None else np.add.reduce(row)
        return math.isfinite(total) or bool(np.isfinite(row).all())

    def largest(self, arrays: Sequence[Any]) -> float:
        """The largest size ``|x|`` of any entry of ``arrays`` (0 for none)."""
        if self._row is not None:
            row = self._row
            row[:] = arrays
            return max(map(abs, row.tolist()), default=0.0)
        return max((float(np.abs(a).max()) for a in arrays if np.size(a)), default=0.0)


def _in_order(updates: list[Update], params: list[Any]) -> tuple[list[Update], bool]:
    """``updates`` in the order of ``params``, and whether they already were in it."""
    if len(updates) == len(params) and all(
        u.parameter is p for u, p in zip(updates, params, strict=True)
    ):
        return updates, True
    by_parameter = {id(u.parameter): u for u in updates}
    return [by_parameter[id(p)] for p in params], False


def _final_pass(
    model: Module, X: np.ndarray, y: np.ndarray, loss_fn: Loss, loss_name: str, chunk: int | None
) -> tuple[np.ndarray, float]:
    """The model's outputs for every row and the loss over them, without recording a graph.

    A run in minibatches passes the rows in chunks of the batch size, so that the memory
    this takes is no more than a training step's; the chunks' losses are added up (a
    sum) or weighted by their rows (a mean) for the built-in losses, and a loss of the
    user's own is computed once over all the outputs.
    """
    n = len(X)
    with no_grad():
        if chunk is None or chunk >= n:
            out = model(X)
            return out.data, loss_fn(out, y).item()
        reduction = REDUCTIONS.get(loss_name) if LOSSES.get(loss_name) is loss_fn else None
        outputs: np.ndarray | None = None
        total = 0.0
        for start in range(0, n, chunk):
            part = model(X[start : start + chunk]).data
            if outputs is None:
                outputs = np.empty((n, *part.shape[1:]), dtype=part.dtype)
            outputs[start : start + len(part)] = part
            if reduction is not None:
                value = loss_fn(Tensor(part), y[start : start + chunk]).item()
                total += value if reduction == "sum" else value * len(part)
        assert outputs is not None
        if reduction is None:
            return outputs, loss_fn(Tensor(outputs), y).item()
        return outputs, total if reduction == "sum" else total / n


def train(
    model: Module,
    data: Any,
    loss: str | Loss = "ssr",
    optimizer: str | Optimizer = "gradient_descent",
    learning_rate: float = 0.1,
    stop: Stop | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    detail: bool | None = None,
    progress: bool | Callable[[int, float], Any] | None = None,
) -> History:
    """Train ``model`` on ``data``; return the :class:`History` of the run.

    ``loss`` is a name from :data:`chainrule.losses.LOSSES` or a function
    ``(predictions, target) -> Tensor``; ``optimizer`` a name from
    :data:`chainrule.optim.OPTIMIZERS` (made with ``learning_rate``) or an Optimizer (used
    as it is; ``learning_rate`` is then ignored). Only parameters that are not frozen are
    trained. Every step uses all rows unless ``batch_size`` is given: then each step uses
    the next minibatch of rows shuffled by ``seed`` (the loss of a step is its batch's).
    ``stop`` is a :class:`Stop` or a dict of its fields (default: 1000 steps).

    ``detail`` keeps a :class:`StepRecord` per step (per-scalar values, slopes, step sizes
    and new values, and the predictions); by default it is on for models with at most
    50 trainable scalars and data of at most 1000 rows. A loss or slope that is not a
    finite number, or a loss grown to more than :data:`DIVERGED_GROWTH` times the first
    and still growing, stops the run with a diagnosis, and the model keeps the values
    before the step that led there. ``progress``: a progress bar on stderr for runs
    longer than a second on a terminal (None), always (True), never (False), or a
    callable ``(step, loss)`` called after every step.

    >>> from chainrule import nn
    >>> from chainrule.datasets import load_dataset
    >>> model = nn.MLP([2, 8, 1], activation="tanh")
    >>> history = train(model, load_dataset("moons", n=100), loss="binary_cross_entropy",
    ...                 optimizer="adam", learning_rate=0.05, stop={"max_steps": 200})
    >>> history.stop_reason, history.final_accuracy > 0.8
    ('max_steps', True)
    """
    rules = Stop.of(stop)
    prepared = _prepare(model, data)
    loss_fn, loss_name = _resolve_loss(loss)
    task = _task_for(prepared, loss_name)
    if isinstance(optimizer, Optimizer):
        opt = optimizer
    else:
        opt = make_optimizer(optimizer, model.parameters(), learning_rate)
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ChainruleError(f"batch_size must be a whole number >= 1, got {batch_size!r}")

    named = [(name, p) for name, p in model.named_parameters() if not p.frozen]
    if not named:
        raise ChainruleError("nothing to train: every parameter of the model is frozen")
    trained_params = [p for _, p in named]
    names = {id(p): name for name, p in named}
    held = {id(p) for p in opt.params}
    missing = [name for name, p in named if id(p) not in held]
    if missing:
        raise ChainruleError(
            f"the optimizer does not hold the trainable parameter(s) {', '.join(missing)}; "
            "make it from model.parameters(), or freeze them"
        )
    size = sum(p.size for p in trained_params)  # trained scalars
    if detail is None:
        detail = size <= DETAIL_MAX_SCALARS and prepared.n <= DETAIL_MAX_ROWS
    history = History(
        parameters=[(name, p.shape) for name, p in named],
        loss_name=loss_name,
        detail=bool(detail),
        learning_rate=opt.lr,
    )
    log = None
    if history.detail:
        capacity = min(rules.max_steps, 1024)
        log = history.step_log = StepLog(size, lambda: history.trained, history.losses, capacity)
    if task in ("binary", "multiclass"):
        history.accuracies = array("d")

    X, y = prepared.X, prepared.y
    batches = _batches(prepared.n, batch_size, seed)
    bar = _Progress(progress, rules.max_steps)
    report = bar.update if bar.active else None
    flat = _Flat(trained_params)
    losses, accuracies, tolerance = history.losses, history.accuracies, rules.step_size
    # The values before the last step, to undo it: the log has them with detail on; else
    # a copy is made just before the step and dropped once the next loss is known to be
    # a number (so that it is not held while backward builds the slopes).
    saved: np.ndarray | list[np.ndarray] | None = None
    block = np.empty(0)  # the log's block for the step being taken
    if log is not None:
        flat.read(log.start())
    stop_loss = rules.loss
    keep_predictions = min(batch_size or prepared.n, prepared.n) <= DETAIL_MAX_ROWS
    end_step = None if log is None else log.end_step
    reason, problem = "", _Problem("")
    # Above this a loss has diverged if it is still growing (or not a number: a NaN or an
    # infinity fails the one comparison made per step).
    limit = sys.float_info.max
    step, in_order, max_steps = 0, False, rules.max_steps
    updates: Sequence[Update] = ()
    slopes = step_sizes = news = ()
    final: tuple[np.ndarray, float] | None = None  # an up-to-date full-data forward pass
    # Overflow is diagnosed below, in words: a loss or slope that is not a finite number.
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while True:
                rows = next(batches)
                xb, yb = (X, y) if rows is None else (X[rows], y[rows])
                opt.zero_grad()  # the last step's slopes are used: free them before this pass
                out = model(xb)
                loss_value = loss_fn(out, yb)
                current = loss_value.item()
                if not current <= limit and (not math.isfinite(current) or current > losses[-1]):
                    reason = "diverged"
                    if math.isfinite(current):
                        problem = _Problem("growth", loss=current)
                    else:
                        problem = _Problem("loss", _non_finite(current), loss=current)
                    if step:  # undo the last step: its loss is not a number, or huge
                        flat.restore(saved if log is None else log.values_before(step - 1))
                    break
                saved = None
                if stop_loss is not None and current < stop_loss:
                    reason = "loss"
                    if rows is None:  # this pass saw every row: it is the final one
                        final = (out.data, current)
                    break

                if not loss_value.requires_grad:  # (a GraphError: the CLI names the file)
                    raise GraphError(
                        "the loss does not depend on any trained parameter "
                        f"({', '.join(names.values())}): the model's output does not use "
                        "them, so training cannot change the loss"
                    )
                loss_value.backward()
                for p in trained_params:  # a parameter that the loss ignores has slope 0
                    if p.grad is None:
                        p.grad = np.zeros_like(p.data)
                if log is not None:
                    block = log.next_block()
                else:
                    saved = flat.copy()
                updates = opt.step()
                if not in_order or len(updates) != len(trained_params):
                    updates, in_order = _in_order(updates, trained_params)
                _, slopes, step_sizes, news = zip(*updates, strict=False)  # Update's fields
                if log is not None:  # one copy records the step; its sum checks it
                    flat.write(news + slopes + step_sizes, block)
                    finite = flat.row_finite(block)
                else:
                    finite = flat.finite(news)
                if not finite:
                    reason = "diverged"
                    problem = _bad_update(updates, names, current)
                    flat.restore(saved if log is None else log.values_before(step))
                    break

                step += 1
                losses.append(current)
                if accuracies is not None:
                    accuracy = _accuracy(out.data, yb, task, loss_name)
                    accuracies.append(math.nan if accuracy is None else accuracy)
                if end_step is not None:
                    end_step(out.data if keep_predictions else None)
                if report is not None:
                    report(step, current)
                if tolerance is not None and flat.largest(step_sizes) < tolerance:
                    reason = "step_size"
                    break
                updates = slopes = step_sizes = news = ()  # free them before the next pass
                if step >= max_steps:
                    reason = "max_steps"
                    break
                if step == 1 and current > 0:
                    limit = min(DIVERGED_GROWTH * current, limit)
    finally:
        bar.close()
    # Let go of the last step's graph, updates and saved values before the final pass.
    del out, loss_value, updates, saved, block

    if final is None:
        final = _final_pass(model, X, y, loss_fn, loss_name, batch_size)
    predictions, history.final_loss = final
    history.final_predictions = _flat(predictions)
    history.final_accuracy = _accuracy(predictions, y, task, loss_name)
    history.final_parameters = {name: p.data.copy() for name, p in model.named_parameters()}
    history.stop_reason = reason
    summary = _summary(history, trained_params)
    if reason == "step_size":
        history.message = f"{summary}: every step size is below {rules.step_size:g}"
    elif reason == "loss":
        history.message = f"{summary}: the loss {history.final_loss:.3g} is below {rules.loss:g}"
    elif reason == "max_steps":
        history.message = (
            f"{summary}: reached the limit of {rules.max_steps} steps "
            f"(the loss is {history.final_loss:.3g})"
        )
    else:
        history.message = _diverged_message(history.losses, problem, opt.lr)
    return history


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """A model's loss on some data, and its accuracy for classification (else None)."""

    loss: float
    accuracy: float | None
    loss_name: str
    n: int


_TASK_LOSS = {"regression": "ssr", "binary": "binary_cross_entropy", "multiclass": "cross_entropy"}


def evaluate(model: Module, data: Any, loss: str | Loss | None = None) -> Evaluation:
    """The loss and (for classification) the accuracy of ``model`` on ``data``, no training.

    ``loss`` defaults to the data set's natural one: SSR for regression, binary
    cross-entropy from logits for two classes, cross-entropy for more (SSR for a pair).

    >>> from chainrule.datasets import dosage
    >>> from chainrule import Formula
    >>> evaluate(Formula("p = 0 * dosage + b", inputs=["dosage"]), dosage())
    Evaluation(loss=1.0, accuracy=None, loss_name='ssr', n=3)
    """
    prepared = _prepare(model, data)
    if loss is None:
        loss = _TASK_LOSS.get(prepared.task or "regression", "ssr")
    loss_fn, loss_name = _resolve_loss(loss)
    with no_grad():
        out = model(prepared.X)
        value = loss_fn(out, prepared.y).item()
    task = _task_for(prepared, loss_name)
    return Evaluation(
        value, _accuracy(out.data, prepared.y, task, loss_name), loss_name, prepared.n
    )
