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
>>> history.stop_reason, history.num_steps, round(history.final_values["b3"], 2)
('step_size', 10, 2.61)
>>> round(history.steps[0].slopes["b3"], 4)
-15.6551

The data is a :class:`~chainrule.datasets.Dataset`, or a pair ``(inputs, target)`` where
``inputs`` is an (n, d) matrix (or a 1-D array for one input) or a dict name -> values.
A model with an ``inputs`` attribute (a Formula) gets its columns in that order, picked
by name from a Dataset or a dict.
"""

from __future__ import annotations

import math
import sys
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule import kernels
from chainrule.compile import TrainingStep, encoded_target
from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError, GraphError
from chainrule.history import (
    DIVERGED_GROWTH,
    Divergence,
    History,
    StepLog,
    Stop,
    flat_predictions,
)
from chainrule.losses import Loss, LossSpec, loss_for_task, loss_spec, sigmoid_mismatch
from chainrule.nn.module import Module, scalar_name
from chainrule.optim import (
    SGD,
    GradientDescent,
    Optimizer,
    Update,
    make_optimizer,
    one_learning_rate,
)
from chainrule.tensor import Tensor, inplace, mark_changed, no_grad
from chainrule.text import loss_unreached, significant

#: Per-scalar records are kept by default up to this many trainable scalars ...
DETAIL_MAX_SCALARS = 50
#: ... and up to this many data rows (per-step predictions are kept up to this many too).
DETAIL_MAX_ROWS = 1000
#: A progress bar appears once a run has taken this long (seconds), on a terminal.
PROGRESS_AFTER = 1.0


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


def _prepare(model: Module, data: Any) -> _Data:
    """The data as an (n, d) matrix in the model's input order (the model protocol's
    :meth:`~chainrule.nn.Module.feed`), the target and the task."""
    if isinstance(data, Dataset):
        return _Data(model.feed(data), np.asarray(data.target), data.task)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        inputs, target = data
        if isinstance(inputs, Mapping):
            X = model.feed_columns(inputs, "the data")
        else:
            raw = inputs.data if isinstance(inputs, Tensor) else inputs
            # The model's float type decides (a float32 model trains in float32).
            try:
                X = np.asarray(raw, model.dtype)
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


def _task_for(data: _Data, loss: LossSpec) -> str | None:
    """The data's task, else the one its loss suits (None for a loss of the user's own)."""
    return data.task if data.task is not None else loss.task


def _accuracy(
    out: np.ndarray, y: np.ndarray, task: str | None, loss: LossSpec, loops: Any = None
) -> float | None:
    """The fraction of rows whose predicted class is right (None for regression);
    ``loops``: :mod:`chainrule.kernels`' loops, to count them in one pass."""
    if task not in ("binary", "multiclass"):
        return None
    if y.ndim == 1:
        labels = y
    else:
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y))
    if out.ndim == 2 and out.shape[1] > 1:
        fits = out.dtype.kind == "f" and labels.dtype.kind == "i" and len(labels)
        if loops is not None and fits:  # argmax and == in one loop
            return loops.correct(out, labels) / len(labels)
        predicted = out.argmax(axis=1)
    elif task == "binary":
        # Logits for a loss made for two classes (it holds the sigmoid); otherwise outputs
        # meant to be near 0 or 1.
        threshold = 0.0 if loss.task == "binary" else 0.5
        predicted = out.reshape(len(y)) > threshold
        labels = labels > 0.5
    else:
        return None
    return int(np.count_nonzero(predicted == labels)) / len(labels) if len(labels) else math.nan


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
        self.bar.update(self.task, completed=step, loss=significant(loss, 4))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _bad_update(updates: list[Update], names: dict[int, str], loss: float) -> Divergence:
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
            return Divergence("slope", float(slope[at]), name, loss)
        return Divergence("step", float(new[at]), name, loss, float(slope[at]))
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
        """Whether every entry of the flat row ``row`` is a finite number (as :meth:`finite`,
        with the sum of the squares for a long row: one BLAS call, twice as fast as numpy's
        sum; an infinity or a NaN makes it non-finite as well, and so may an overflow, after
        which each entry is looked at)."""
        total = sum(row.tolist()) if self._row is not None else np.vdot(row, row)
        return math.isfinite(total) or bool(np.isfinite(row).all())

    def largest(self, arrays: Sequence[Any]) -> float:
        """The largest size ``|x|`` of any entry of ``arrays`` (0 for none)."""
        if self._row is not None:
            row = self._row
            row[:] = arrays
            return max(map(abs, row.tolist()), default=0.0)
        return max((float(np.abs(a).max()) for a in arrays if np.size(a)), default=0.0)


class _Descent:
    """StatQuest's step for plain gradient descent, on flat vectors of numbers.

    The trained parameters' arrays become views into one flat vector of their values,
    one number per trained scalar:

    - with a step log (``log``), the vector is the first third of a block ``[values |
      slopes | step sizes]`` laid out as a :class:`StepLog` block: a step writes all three
      in place, and recording it is one copy;
    - without one, two vectors take turns holding the values (:meth:`step_aside`): the
      values before a step (to undo one that diverges) are kept without a copy, and the
      step sizes are worked out only when asked for.

    The slopes: a compiled program writes them into the vector ``slopes``
    (:meth:`Program.write_gradients_into
    <chainrule.compile.Program.write_gradients_into>`). After an eager backward pass
    (``eager``) they are each parameter's ``.grad``: copied into that vector with a log
    (:meth:`take_slopes`), read where they are without one (no vector of slopes is made).

    A step is ``step sizes = lr * slopes`` and ``values - step sizes``, the numbers of
    :class:`~chainrule.optim.GradientDescent` (and of SGD without momentum or weight
    decay) without its Python per parameter: numpy calls over whole vectors, or one loop
    that also tells whether every new value is a finite number, with ``loops`` (a
    compiled run in float64 with numba installed: :mod:`chainrule.kernels`).
    """

    def __init__(
        self,
        params: list[Any],
        optimizer: Optimizer,
        loops: Any = None,
        log: bool = False,
        eager: bool = False,
    ) -> None:
        self.optimizer, self.params = optimizer, params
        self.lr = optimizer.lr
        size = sum(p.size for p in params)
        dtype = params[0].dtype
        parts = 3 if log else 1 if eager else 2
        self.block = np.empty(parts * size, dtype=dtype)
        self.values = self._home = self.block[:size]
        self.slopes = self.block[size : 2 * size] if parts > 1 else None
        self.step_sizes = self.block[2 * size :] if log else None
        self.saved = None if log else np.empty(size, dtype=dtype)  # the values before a step
        loops = loops if dtype.kind == "f" and self.slopes is not None else None
        self._descend = loops.descend if loops is not None else None
        self._descend_values = loops.descend_values if loops is not None else None
        self.slope_views: list[np.ndarray] = []
        # Each parameter's array in each of the vectors that hold the values (two take
        # turns without a log, see :meth:`step_aside`), by the vector's id.
        self.views: dict[int, list[np.ndarray]] = {id(self.values): []}
        if self.saved is not None:
            self.views[id(self.saved)] = []
        start = 0
        for p in params:
            end = start + p.size
            self.values[start:end] = np.reshape(p.data, -1)
            p.data = self.values[start:end].reshape(p.shape)
            self.views[id(self.values)].append(p.data)
            if self.saved is not None:
                self.views[id(self.saved)].append(self.saved[start:end].reshape(p.shape))
            inplace(p)  # a graph recorded before now is stale: its values moved
            if self.slopes is not None:
                slope = self.slopes[start:end].reshape(p.shape)
                slope[...] = 0
                self.slope_views.append(slope)
                p.grad = slope  # the slopes of the last step, as after an eager step
            start = end
        # The same parts again, to write the new values through (the engine makes the
        # arrays handed out as ``.data`` read-only while a graph reads them).
        self._writable = {key: [v.view() for v in views] for key, views in self.views.items()}

    @staticmethod
    def suits(optimizer: Optimizer, params: list[Any]) -> bool:
        """Whether a run of ``optimizer`` on ``params`` can take its steps here: plain
        gradient descent (SGD without momentum or weight decay) on parameters of one dtype."""
        kind = type(optimizer)
        plain = kind is GradientDescent or (
            kind is SGD and not optimizer.momentum and not optimizer.weight_decay
        )
        return plain and len({p.dtype for p in params}) == 1

    def take_slopes(self) -> None:
        """Copy each parameter's slope (``.grad``, after an eager backward pass; None: 0)
        into the vector of slopes, which ``.grad`` then views."""
        for p, view in zip(self.params, self.slope_views, strict=True):
            grad = p.grad
            if grad is None:
                view[...] = 0
            else:
                view[...] = grad
            p.grad = view

    def follow(self) -> None:
        """Take in a value set from outside between two calls of :meth:`Trainer.advance`:
        a parameter given a new array (``p.data = ...``) has it copied into the vector,
        which its array views again."""
        views, writable = self.views[id(self.values)], self._writable[id(self.values)]
        for p, view, into in zip(self.params, views, writable, strict=True):
            if p.data is not view:
                into[...] = p.data
                p.data = view
                inplace(p)  # a graph recorded before now is stale

    def release(self) -> None:
        """The run is over: let go of the second vector of values. The parameters keep
        their arrays (views into the first vector) and their last slopes."""
        if self.saved is None:
            return
        home = self._home
        if self.values is not home:  # the values are in the other vector: move them home
            home[...] = self.values
            for p, view in zip(self.params, self.views[id(home)], strict=True):
                p.data = view
            self.values, self.saved = home, self.values
        del self.views[id(self.saved)], self._writable[id(self.saved)]
        self.saved = None

    def step(self) -> bool | None:
        """Take the step in place (with a step log: the slopes are in the block). Returns
        whether every new value is a finite number when one loop took the step (None: not
        looked at)."""
        assert self.step_sizes is not None and self.slopes is not None
        self.optimizer.steps += 1
        mark_changed(*self.params)  # a graph recorded before the step is stale
        values, slopes, sizes = self.values, self.slopes, self.step_sizes
        if self._descend is not None:
            return bool(self._descend(values, slopes, self._rate(), sizes, values))
        np.multiply(slopes, self.lr, out=sizes)
        np.subtract(values, sizes, out=values)
        return None

    def _rate(self) -> Any:
        """The learning rate as a number of the values' dtype: numpy multiplies a float32
        array by a Python float in float32, and so must the loop."""
        return self.values.dtype.type(self.lr)

    def step_aside(self) -> tuple[np.ndarray, bool | None]:
        """Take the step (without a step log), writing the new values into the other of
        the two vectors, which the parameters' arrays then view; return the vector of the
        values before the step, and what :meth:`step` returns.

        ``before - lr * slope`` is computed as ``before + slope * -lr``: the same numbers
        (negating is exact), with no array of step sizes.
        """
        assert self.saved is not None
        before, after = self.values, self.saved
        self.optimizer.steps += 1
        mark_changed(*self.params)  # a graph recorded before the step is stale
        finite = None
        if self._descend_values is not None:
            finite = bool(self._descend_values(before, self.slopes, self._rate(), after))
        elif self.slopes is not None:
            np.multiply(self.slopes, -self.lr, out=after)
            np.add(before, after, out=after)
        else:  # an eager step: each slope where backward left it
            olds, news = self._writable[id(before)], self._writable[id(after)]
            for p, old, new in zip(self.params, olds, news, strict=True):
                if p.grad is None:  # a parameter the loss ignores: slope 0
                    new[...] = old
                else:
                    np.multiply(p.grad, -self.lr, out=new)
                    np.add(old, new, out=new)
        for p, view in zip(self.params, self.views[id(after)], strict=True):
            p.data = view
        self.values, self.saved = after, before
        return before, finite

    def _slopes(self) -> list[np.ndarray]:
        """The last step's slopes, one array per parameter."""
        if self.slope_views:
            return self.slope_views
        return [np.zeros(p.shape, p.dtype) if p.grad is None else p.grad for p in self.params]

    def largest_step(self) -> float:
        """The largest step size, in size."""
        if self.step_sizes is not None:
            sizes = self.step_sizes
            if sizes.size <= 64:  # a few numbers: Python is quicker than two numpy calls
                return max(map(abs, sizes.tolist()), default=0.0)
            return float(np.abs(sizes).max())
        return max(
            (float(np.abs(np.multiply(s, self.lr)).max()) for s in self._slopes() if s.size),
            default=0.0,
        )

    def updates(self) -> list[Update]:
        """The last step as the optimizer reports one (read when a run diverges)."""
        return [
            Update(p, np.array(s), np.multiply(s, self.lr), p.data.copy())
            for p, s in zip(self.params, self._slopes(), strict=True)
        ]


def _in_order(updates: list[Update], params: list[Any]) -> tuple[list[Update], bool]:
    """``updates`` in the order of ``params``, and whether they already were in it."""
    if len(updates) == len(params) and all(
        u.parameter is p for u, p in zip(updates, params, strict=True)
    ):
        return updates, True
    by_parameter = {id(u.parameter): u for u in updates}
    return [by_parameter[id(p)] for p in params], False


def _final_pass(
    model: Module, X: np.ndarray, y: np.ndarray, loss: LossSpec, chunk: int | None
) -> tuple[np.ndarray, float]:
    """The model's outputs for every row and the loss over them, without recording a graph.

    A run in minibatches passes the rows in chunks of the batch size, so that the memory
    this takes is no more than a training step's; the chunks' losses are added up (a
    sum) or weighted by their rows (a mean) when the loss's record says which, and a loss
    of the user's own is computed once over all the outputs.
    """
    n = len(X)
    loss_fn, reduction = loss.function, loss.reduction
    with no_grad():
        if chunk is None or chunk >= n:
            out = model(X)
            return out.data, loss_fn(out, y).item()
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


class Trainer:
    """A training run that moves forward a few steps at a time.

    :func:`train` makes one and runs it to its end; the web page's Step button calls
    :meth:`advance` with a few steps at a time. Each step is StatQuest's recipe: the
    forward pass, the loss, backpropagation, then the optimizer's step. The settings are
    :func:`train`'s. When a stop rule fires (or the run diverges) the run is over:
    :attr:`history` then holds the final loss, values and predictions.

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("main-ideas")
    >>> trainer = Trainer(s.build_model(), s.data, learning_rate=0.1, stop=s.stop)
    >>> trainer.advance(1), round(trainer.history.steps[0].slopes["b3"], 4), trainer.done
    (1, -15.6551, False)
    >>> trainer.advance(), trainer.history.stop_reason
    (9, 'step_size')
    """

    def __init__(
        self,
        model: Module,
        data: Any,
        loss: str | Loss = "ssr",
        optimizer: str | Optimizer = "gradient_descent",
        learning_rate: float | None = None,
        stop: Stop | Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        detail: bool | None = None,
        progress: bool | Callable[[int, float], Any] | None = None,
        compile: bool = False,  # noqa: A002 (train's keyword, as torch and jax name it)
        lr: float | None = None,
    ) -> None:
        rules = Stop.of(stop)
        prepared = _prepare(model, data)
        spec = loss_spec(loss)
        mismatch = sigmoid_mismatch(spec, model.output_sigmoid)
        if mismatch is not None:
            raise ChainruleError(mismatch)
        if isinstance(optimizer, Optimizer):
            opt = optimizer
        else:
            none = lr is None and learning_rate is None
            rate = 0.1 if none else one_learning_rate(lr, learning_rate)
            opt = make_optimizer(optimizer, model.parameters(), rate)
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ChainruleError(f"batch_size must be a whole number >= 1, got {batch_size!r}")

        named = [(name, p) for name, p in model.named_parameters() if not p.frozen]
        if not named:
            raise ChainruleError("nothing to train: every parameter of the model is frozen")
        trained = [p for _, p in named]
        held = {id(p) for p in opt.params}
        missing = [name for name, p in named if id(p) not in held]
        if missing:
            raise ChainruleError(
                f"the optimizer does not hold the trainable parameter(s) {', '.join(missing)}; "
                "make it from model.parameters(), or freeze them"
            )
        size = sum(p.size for p in trained)  # trained scalars
        if detail is None:
            detail = size <= DETAIL_MAX_SCALARS and prepared.n <= DETAIL_MAX_ROWS
        history = History(
            parameters=[(name, p.shape) for name, p in named],
            loss_name=spec.name,
            detail=bool(detail),
            learning_rate=opt.lr,
            optimizer=opt.name or type(opt).__name__,
            optimizer_settings=opt.settings(),
            stop=rules,
        )
        if history.detail:
            capacity = min(rules.max_steps, 1024)
            history.step_log = StepLog(size, lambda: history.trained, history.losses, capacity)
        task = _task_for(prepared, spec)
        if task in ("binary", "multiclass"):
            history.accuracies = array("d")

        self.model, self.history, self.optimizer, self.rules = model, history, opt, rules
        self.spec, self.task, self.data = spec, task, prepared
        self.batch_size = batch_size
        self.trained = trained
        self.names = {id(p): name for name, p in named}
        self.flat = _Flat(trained)
        self.batches = _batches(prepared.n, batch_size, seed)
        self.progress = progress
        # compile=True: each step replays a traced program (see chainrule.compile).
        self.step_fn: TrainingStep | None = None
        self.descent: _Descent | None = None
        self.targets = prepared.y
        # A compiled run may use numba's loops (the time to load them is part of compiling:
        # an eager run does not pay it).
        self.loops = kernels.get() if compile else None
        if _Descent.suits(opt, trained):  # the optimizer's step in two numpy calls (or one loop)
            eager = not compile
            self.descent = _Descent(trained, opt, self.loops, history.detail, eager)
        if compile:
            self.step_fn = TrainingStep(model, spec.function, trained)
            if self.descent is not None:  # the slopes are written into the descent's vector
                self.step_fn.grads_into = self.descent.slope_views
                self.step_fn.flat = (self.descent.values, self.descent.slopes)
            self.step_fn.check_batches = batch_size is not None and batch_size < prepared.n
            if spec.name == "cross_entropy" and prepared.n:  # labels: one-hot rows, once
                with no_grad():
                    first = model(prepared.X[:1])
                self.targets = encoded_target(spec.name, prepared.y, first.shape[-1], first.dtype)
        if history.step_log is not None:
            self.flat.read(history.step_log.start())
        # The loop's state between calls of :meth:`advance`:
        self.steps_taken = 0
        self.in_order = False  # whether the optimizer reports updates in parameter order
        # Above this a loss has diverged if it is still growing (or not a number: a NaN or
        # an infinity fails the one comparison made per step).
        self.limit = sys.float_info.max
        # The values before the last step, to undo it: the log has them with detail on;
        # else a copy is made just before the step and dropped once the next loss is
        # known to be a number (so that it is not held while backward builds the slopes).
        self.saved: np.ndarray | list[np.ndarray] | None = None
        self.done = False

    def advance(self, steps: int | None = None) -> int:
        """Take up to ``steps`` more steps (None: until a stop rule fires); return how
        many were taken. A stop rule that fires ends the run (:attr:`done`)."""
        if self.done:
            return 0
        if self.descent is not None:
            self.descent.follow()
        model, history, opt, spec = self.model, self.history, self.optimizer, self.spec
        loss_fn, task, flat, trained_params = spec.function, self.task, self.flat, self.trained
        X, y, batches = self.data.X, self.data.y, self.batches
        step_fn, targets, descent = self.step_fn, self.targets, self.descent
        log = history.step_log
        rules = self.rules
        bar = _Progress(self.progress, rules.max_steps)
        report = bar.update if bar.active else None
        losses, accuracies, tolerance = history.losses, history.accuracies, rules.step_size
        saved = self.saved
        block = np.empty(0)  # the log's block for the step being taken
        stop_loss = rules.loss
        n = self.data.n
        keep_predictions = min(self.batch_size or n, n) <= DETAIL_MAX_ROWS
        end_step = None if log is None else log.end_step
        reason, problem = "", Divergence("")
        limit, in_order, max_steps = self.limit, self.in_order, rules.max_steps
        step = start = self.steps_taken
        budget = max_steps if steps is None else min(max_steps, step + steps)
        updates: Sequence[Update] = ()
        slopes = step_sizes = news = ()
        out = loss_value = out_data = None
        final: tuple[np.ndarray, float] | None = None  # an up-to-date full-data forward pass
        # Overflow is diagnosed below, in words: a loss or slope that is not a finite number.
        if max_steps == 0:  # nothing to train: the run ends at the starting values
            reason = "max_steps"
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                while step < budget:
                    rows = next(batches)
                    # (``take`` makes the batch's copy at about half the cost of X[rows])
                    xb, yb = (X, y) if rows is None else (X.take(rows, 0), y.take(rows, 0))
                    if step_fn is None:
                        opt.zero_grad()  # the last step's slopes are used: free them first
                        out = model(xb)
                        loss_value = loss_fn(out, yb)
                        current = loss_value.item()
                        out_data = out.data
                    else:  # forward and backward replayed; the slopes are ready
                        out_data, current, slopes = step_fn(
                            xb, targets if rows is None else targets.take(rows, 0)
                        )
                    if not current <= limit and (
                        not math.isfinite(current) or current > losses[-1]
                    ):
                        reason = "diverged"
                        if math.isfinite(current):
                            problem = Divergence("growth", loss=current)
                        else:
                            problem = Divergence("loss", current, loss=current)
                        if step:  # undo the last step: its loss is not a number, or huge
                            flat.restore(saved if log is None else log.values_before(step - 1))
                        break
                    saved = None
                    if stop_loss is not None and current < stop_loss:
                        reason = "loss"
                        if rows is None:  # this pass saw every row: it is the final one
                            final = (out_data if step_fn is None else out_data.copy(), current)
                        break

                    if step_fn is None:  # backpropagation: every slope
                        if not loss_value.requires_grad:  # (a GraphError: the CLI names it)
                            raise GraphError(loss_unreached(list(self.names.values())))
                        loss_value.backward()
                        if descent is not None and log is not None:
                            descent.take_slopes()  # into the block that the log copies
                    if descent is not None:  # the slopes are in place: step, record, check
                        if log is None:  # the values before the step stay where they are
                            saved, finite = descent.step_aside()
                            if step_fn is not None:
                                step_fn.values_moved(descent.values)
                        else:
                            finite = descent.step()
                        if log is not None:  # one copy records the step
                            block = log.next_block()
                            block[...] = descent.block
                        if finite is None:  # (finite new values: finite slopes and steps)
                            finite = flat.row_finite(descent.values if log is None else block)
                    else:
                        if step_fn is not None:
                            for p, slope in zip(trained_params, slopes, strict=True):
                                p.grad = slope
                        else:
                            for p in trained_params:  # a parameter the loss ignores: slope 0
                                if p.grad is None:
                                    p.grad = np.zeros_like(p.data)
                        if log is not None:
                            block = log.next_block()
                        else:
                            saved = flat.copy()
                        updates = opt.step()
                        if not in_order or len(updates) != len(trained_params):
                            updates, in_order = _in_order(updates, trained_params)
                        _, slopes, step_sizes, news = zip(*updates, strict=False)  # the fields
                        if log is not None:  # one copy records the step; its sum checks it
                            flat.write(news + slopes + step_sizes, block)
                            finite = flat.row_finite(block)
                        else:
                            finite = flat.finite(news)
                    if not finite:
                        reason = "diverged"
                        if descent is not None:
                            updates = descent.updates()
                        problem = _bad_update(updates, self.names, current)
                        flat.restore(saved if log is None else log.values_before(step))
                        break

                    step += 1
                    losses.append(current)
                    if accuracies is not None:
                        accuracy = _accuracy(out_data, yb, task, spec, self.loops)
                        accuracies.append(math.nan if accuracy is None else accuracy)
                    if end_step is not None:
                        if keep_predictions:  # (a compiled step's outputs are a buffer)
                            end_step(out_data if step_fn is None else out_data.copy())
                        else:
                            end_step(None)
                    if report is not None:
                        report(step, current)
                    if tolerance is not None:
                        largest = (
                            flat.largest(step_sizes) if descent is None else descent.largest_step()
                        )
                        if largest < tolerance:
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
        self.steps_taken, self.limit, self.in_order, self.saved = step, limit, in_order, saved
        # Let go of the last step's graph, updates and saved values before the final pass.
        del out, loss_value, out_data, updates, block
        if reason:
            self.saved = None
            self._finish(reason, problem, final)
        return step - start

    def _finish(
        self, reason: str, problem: Divergence, final: tuple[np.ndarray, float] | None
    ) -> None:
        """The run is over: record the final pass over every row and why it stopped."""
        history, y = self.history, self.data.y
        if self.descent is not None:  # (the values before the last step are not needed)
            self.descent.release()
            if self.step_fn is not None:
                self.step_fn.values_moved(self.descent.values)
        if final is None and self.step_fn is not None:  # replayed by the compiled programs
            final = self.step_fn.final_pass(
                self.data.X, self.targets, self.batch_size, self.spec.reduction
            )
        if final is None:
            final = _final_pass(self.model, self.data.X, y, self.spec, self.batch_size)
        predictions, history.final_loss = final
        history.final_predictions = flat_predictions(predictions)
        history.final_accuracy = _accuracy(predictions, y, self.task, self.spec)
        history.final_parameters = {
            name: p.data.copy() for name, p in self.model.named_parameters()
        }
        history.stop_reason = reason
        if reason == "diverged":
            history.divergence = problem
        self.done = True


def train(
    model: Module,
    data: Any,
    loss: str | Loss = "ssr",
    optimizer: str | Optimizer = "gradient_descent",
    learning_rate: float | None = None,
    stop: Stop | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    detail: bool | None = None,
    progress: bool | Callable[[int, float], Any] | None = None,
    compile: bool = False,  # noqa: A002 (the name torch and jax use)
    lr: float | None = None,
) -> History:
    """Train ``model`` on ``data``; return the :class:`History` of the run.

    ``loss`` is a name from :data:`chainrule.losses.LOSSES` or a function
    ``(predictions, target) -> Tensor``; ``optimizer`` a name from
    :data:`chainrule.optim.OPTIMIZERS` (made with ``learning_rate``) or an Optimizer (used
    as it is; ``learning_rate`` is then ignored). ``lr`` is the same setting by PyTorch's
    name (as :mod:`chainrule.optim` calls it); the default is 0.1. Only parameters that
    are not frozen are trained. Every step uses all rows unless ``batch_size`` is given:
    then each step uses the next minibatch of rows shuffled by ``seed`` (the loss of a
    step is its batch's).
    ``stop`` is a :class:`Stop` or a dict of its fields (default: 1000 steps).

    ``detail`` keeps a :class:`StepRecord` per step (per-scalar values, slopes, step sizes
    and new values, and the predictions); by default it is on for models with at most
    50 trainable scalars and data of at most 1000 rows. A loss or slope that is not a
    finite number, or a loss grown to more than :data:`DIVERGED_GROWTH` times the first
    and still growing, stops the run with a diagnosis, and the model keeps the values
    before the step that led there. ``progress``: a progress bar on stderr for runs
    longer than a second on a terminal (None), always (True), never (False), or a
    callable ``(step, loss)`` called after every step.

    ``compile=True`` traces the forward pass, the loss and backpropagation once and
    replays them at every step as plain numpy calls (see :mod:`chainrule.compile`): the
    same numbers and the same History, in less time for small networks (with numba
    installed, ``chainrule[fast]``, a network of a few numbers runs in one numba call per
    step). Python control flow inside the model that depends on the data is traced as
    the branch taken.

    >>> from chainrule import nn
    >>> from chainrule.datasets import load_dataset
    >>> model = nn.MLP([2, 8, 1], activation="tanh")
    >>> history = train(model, load_dataset("moons", n=100),
    ...                 loss="binary_cross_entropy_with_logits",
    ...                 optimizer="adam", learning_rate=0.05, stop={"max_steps": 200})
    >>> history.stop_reason, history.final_accuracy > 0.8
    ('max_steps', True)
    """
    trainer = Trainer(
        model,
        data,
        loss,
        optimizer,
        learning_rate,
        stop,
        batch_size,
        seed,
        detail,
        progress,
        compile,
        lr,
    )
    trainer.advance()
    return trainer.history


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
    spec = loss_for_task(prepared.task or "regression") if loss is None else loss_spec(loss)
    with no_grad():
        out = model(prepared.X)
        value = spec.function(out, prepared.y).item()
    task = _task_for(prepared, spec)
    return Evaluation(value, _accuracy(out.data, prepared.y, task, spec), spec.name, prepared.n)
