"""Loss functions: how far the predictions are from the observed values, as one number.

Every loss is built from engine operations, so the recorded graph shows it: the sum of
squared residuals is ``sum((observed - predicted) ** 2)``, i.e. ``sub``, ``pow`` and
``sum`` nodes, and backpropagation starts from its output. Each loss takes the model's
predictions (a Tensor) and the target (an array) and returns a one-element Tensor.

The target must have the predictions' shape, except that a column (n, 1) and a vector
(n,) are compared row by row, either way round; any other difference (even of the same
size, such as (2, 3) against (3, 2)) raises a ShapeError naming the loss and both shapes.

>>> import chainrule as cr
>>> predicted = cr.tensor([0.5, 1.5], requires_grad=True)
>>> loss = ssr(predicted, [0.0, 1.0])
>>> loss.item()
0.5
>>> loss.backward()
>>> predicted.grad
array([1., 1.])

Each loss has a record, a :class:`LossSpec`, in :data:`LOSSES`: its name, the name the
learner reads (``SSR``), the task it suits and how it combines the rows. Training, the
scenario reader and the explainer ask the record, never the loss's name:

>>> spec = loss_spec("ssr")
>>> spec.display, spec.task, spec.reduction
('SSR', 'regression', 'sum')

The names follow PyTorch's, which practitioners know: ``binary_cross_entropy`` takes
probabilities (the output of a sigmoid), ``binary_cross_entropy_with_logits`` and
``cross_entropy`` take logits (the sigmoid or softmax is inside the loss). A model whose
output applies a sigmoid trained with a loss that applies it again, or a model without
one trained with a loss that needs probabilities, is refused (:func:`sigmoid_mismatch`).

References: PyTorch's ``MSELoss``, ``L1Loss``, ``BCELoss``, ``BCEWithLogitsLoss`` and
``CrossEntropyLoss`` (the same formulas and default mean reduction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from chainrule.errors import ChainruleError, ShapeError
from chainrule.tensor import Tensor, clip, log, log_softmax, softplus

Loss = Callable[[Tensor, Any], Tensor]
Task = Literal["regression", "binary", "multiclass"]
Reduction = Literal["sum", "mean"]


def _as_tensor(predictions: Any) -> Tensor:
    return predictions if isinstance(predictions, Tensor) else Tensor(predictions)


def _target_array(target: Any, loss: str) -> np.ndarray:
    data = target.data if isinstance(target, Tensor) else target
    if isinstance(data, np.ndarray) and data.dtype.kind == "f":
        return data  # float32 stays float32 (and a compiled step reads the batch itself)
    try:
        return np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ChainruleError(f"{loss}: the target is not numeric ({exc})") from None


def _column_and_vector(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether one shape is (n, 1) and the other (n,): the same rows, one value each."""
    column, vector = (a, b) if len(a) == 2 else (b, a)
    return len(column) == 2 and len(vector) == 1 and column == (vector[0], 1)


def _aligned(predictions: Tensor, target: Any, loss: str) -> np.ndarray:
    """The target as an array of the predictions' shape and dtype.

    Only a column (n, 1) and a vector (n,) are matched (row by row); a target of another
    shape is refused even when its size agrees, since reshaping it would pair each
    prediction with some other row's value.

    >>> _aligned(Tensor([[1.0], [2.0]]), [3.0, 4.0], "mse")
    array([[3.],
           [4.]])
    """
    shape = predictions.shape
    if type(target) is Tensor:  # (a loop's target Tensor: its array, checked as one)
        target = target.data
    if type(target) is np.ndarray and target.shape == shape and target.dtype == predictions.dtype:
        return target  # already the target that training passes at every step
    y = _target_array(target, loss)
    if y.shape != shape:
        if not _column_and_vector(y.shape, shape):
            raise ShapeError(
                f"{loss}: predictions of shape {shape} and target of shape {y.shape} do not "
                "match: give one target value per prediction, in the same shape (a column "
                "(n, 1) and a vector (n,) are matched row by row)"
            )
        y = y.reshape(shape)
    return y.astype(predictions.dtype, copy=False)


#: The last small target made into a node, with the array it wraps: the same array again
#: (as at every step of full-batch training) reuses the node while it is a plain constant.
_last_observed: tuple[np.ndarray, Tensor] | None = None
_REUSE_UP_TO = 4096  # numbers


def _observed(y: np.ndarray) -> Tensor:
    """The observed values as a constant node named ``observed`` (it wraps ``y``)."""
    global _last_observed
    last = _last_observed
    if last is not None and last[0] is y:
        node = last[1]
        if node.name == "observed" and not node.requires_grad and node.op is None:
            return node
    node = Tensor(y, name="observed")
    if y.size <= _REUSE_UP_TO:
        _last_observed = (y, node)
    return node


def ssr(predictions: Tensor, target: Any) -> Tensor:
    """Sum of squared residuals: ``sum((observed - predicted) ** 2)``.

    >>> ssr(Tensor([[1.0], [2.0]]), [0.0, 0.0]).item()
    5.0
    """
    p = _as_tensor(predictions)
    out = ((_observed(_aligned(p, target, "ssr")) - p) ** 2).sum()
    out.name = LOSSES["ssr"].display
    return out


def mse(predictions: Tensor, target: Any) -> Tensor:
    """Mean squared error: ``mean((observed - predicted) ** 2)``.

    >>> mse(Tensor([1.0, 2.0]), [0.0, 0.0]).item()
    2.5
    """
    p = _as_tensor(predictions)
    out = ((_observed(_aligned(p, target, "mse")) - p) ** 2).mean()
    out.name = LOSSES["mse"].display
    return out


def mae(predictions: Tensor, target: Any) -> Tensor:
    """Mean absolute error: ``mean(|observed - predicted|)``.

    >>> mae(Tensor([1.0, -3.0]), [0.0, 0.0]).item()
    2.0
    """
    p = _as_tensor(predictions)
    out = (_observed(_aligned(p, target, "mae")) - p).abs().mean()
    out.name = LOSSES["mae"].display
    return out


def _labels_between_0_and_1(y: np.ndarray, loss: str) -> None:
    outside = (y < 0) | (y > 1)
    if outside.any():
        row = int(np.flatnonzero(outside.ravel())[0])
        raise ChainruleError(
            f"{loss}: targets must be between 0 and 1 (class labels 0 and 1), "
            f"found {y.ravel()[row]:g} at row {row}"
        )


#: The log of a probability is taken no lower than this (as PyTorch's ``BCELoss`` does),
#: so a prediction of exactly 0 or 1 gives a large finite loss, not an infinite one.
_LOG_FLOOR = -100.0


def binary_cross_entropy(predictions: Tensor, target: Any) -> Tensor:
    """Binary cross-entropy of probabilities: ``-mean(y log p + (1 - y) log(1 - p))``.

    ``predictions`` are probabilities ``p`` in [0, 1], e.g. the output of a sigmoid; the
    target holds ``y`` in [0, 1], usually the labels 0 and 1. Each log is taken no lower
    than -100, as PyTorch's ``BCELoss`` does. For logits, use
    :func:`binary_cross_entropy_with_logits`, which is also steadier numerically.

    >>> round(binary_cross_entropy(Tensor([0.5, 0.9]), [1, 1]).item(), 6)
    0.399254
    >>> binary_cross_entropy(Tensor([1.5]), [1])
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: binary_cross_entropy takes probabilities between 0 \
and 1 (e.g. the output of a sigmoid), found 1.5 at row 0; for logits use \
binary_cross_entropy_with_logits
    """
    p = _as_tensor(predictions)
    y = _aligned(p, target, "binary_cross_entropy")
    _labels_between_0_and_1(y, "binary_cross_entropy")
    outside = (p.data < 0) | (p.data > 1)
    if outside.any():
        row = int(np.flatnonzero(outside.ravel())[0])
        raise ChainruleError(
            "binary_cross_entropy takes probabilities between 0 and 1 (e.g. the output of a "
            f"sigmoid), found {p.data.ravel()[row]:g} at row {row}; for logits use "
            "binary_cross_entropy_with_logits"
        )
    floor = float(np.exp(_LOG_FLOOR))
    observed = _observed(y)
    out = -(observed * log(clip(p, floor, 1.0)) + (1 - observed) * log(clip(1 - p, floor, 1.0)))
    out = out.mean()
    out.name = LOSSES["binary_cross_entropy"].display
    return out


def binary_cross_entropy_with_logits(predictions: Tensor, target: Any) -> Tensor:
    """Binary cross-entropy from logits: ``mean(softplus(z) - y z)``.

    ``predictions`` are logits ``z`` (any real number, the sigmoid is inside the loss)
    and the target holds probabilities ``y`` in [0, 1], usually the labels 0 and 1. This
    equals ``-mean(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))`` but never takes the
    log of 0, so it stays finite for logits like +-1000; its slope is ``sigmoid(z) - y``.

    >>> round(binary_cross_entropy_with_logits(Tensor([0.0, 1000.0]), [1, 1]).item(), 6)
    0.346574
    """
    p = _as_tensor(predictions)
    y = _aligned(p, target, "binary_cross_entropy_with_logits")
    _labels_between_0_and_1(y, "binary_cross_entropy_with_logits")
    out = (softplus(p) - _observed(y) * p).mean()
    out.name = LOSSES["binary_cross_entropy_with_logits"].display
    return out


def cross_entropy(predictions: Tensor, target: Any) -> Tensor:
    """Cross-entropy of the softmax over classes: ``-mean(sum(onehot * log_softmax(z)))``.

    ``predictions`` are logits of shape (n, classes). The target holds one integer label
    per row, shape (n,), or one row of class probabilities (e.g. one-hot) per row, shape
    (n, classes). ``log_softmax`` subtracts each row's maximum first, so huge logits are
    fine.

    >>> round(cross_entropy(Tensor([[2.0, 0.0], [0.0, 2.0]]), [0, 1]).item(), 6)
    0.126928
    """
    p = _as_tensor(predictions)
    if p.ndim != 2:
        raise ShapeError(
            f"cross_entropy: predictions must have shape (rows, classes), got {p.shape}"
        )
    n, classes = p.shape
    y = _target_array(target, "cross_entropy")
    if y.shape == p.shape:
        weights = y.astype(p.dtype, copy=False)  # class probabilities per row
    else:
        if y.shape not in ((n,), (n, 1)):
            raise ShapeError(
                f"cross_entropy: predictions of shape {p.shape} need a target of labels of "
                f"shape ({n},) or of class probabilities of shape {p.shape}, got {y.shape}"
            )
        labels = y.reshape(n)
        bad = (labels != np.round(labels)) | (labels < 0) | (labels >= classes)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ChainruleError(
                f"cross_entropy: class labels must be whole numbers 0 to {classes - 1} (the "
                f"predictions have {classes} columns), found {labels[row]:g} at row {row}"
            )
        weights = np.zeros(p.shape, dtype=p.dtype)
        weights[np.arange(n), labels.astype(np.intp)] = 1.0  # one-hot, (n, classes)
    out = -(log_softmax(p, axis=1) * _observed(weights)).sum(axis=1).mean()
    out.name = LOSSES["cross_entropy"].display
    return out


@dataclass(frozen=True)
class LossSpec:
    """A loss and what the rest of chainrule needs to know of it.

    - ``name``: how a scenario file and the API call it (``"ssr"``).
    - ``display``: how the learner reads it (``"SSR"``); its graph node carries this name.
    - ``function``: ``(predictions, target) -> Tensor``, a one-element loss.
    - ``task``: the data it suits: ``"regression"`` (any real target), ``"binary"``
      (0/1 labels) or ``"multiclass"`` (one logit per class); None when unknown (a loss
      of the user's own).
    - ``takes``: what the predictions are: ``"values"`` (any real number),
      ``"logits"`` (the loss applies the sigmoid or softmax) or ``"probabilities"``
      (the model applies it); None when unknown.
    - ``reduction``: how the rows combine, ``"sum"`` or ``"mean"``, so that a loss over
      many rows can be computed in chunks and the parts added up; None when unknown.
    - ``curvature``: the second derivative of one row's term with respect to its
      prediction, where that is the same number everywhere (2 for a squared residual);
      None otherwise. The diagnosis reads from it how fast gradient descent contracts.

    Calling the record calls the loss.

    >>> spec = LOSSES["mse"]
    >>> spec(Tensor([1.0, 2.0]), [0.0, 0.0]).item(), spec.display
    (2.5, 'MSE')
    """

    name: str
    display: str
    function: Loss
    task: Task | None = None
    reduction: Reduction | None = None
    curvature: float | None = None
    takes: Literal["values", "logits", "probabilities"] | None = None

    def __call__(self, predictions: Tensor, target: Any) -> Tensor:
        return self.function(predictions, target)


#: The losses by name: their records, in the order they are listed to the learner. The
#: first loss of a task is the one that task gets by default (:func:`loss_for_task`).
LOSSES: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("ssr", "SSR", ssr, "regression", "sum", curvature=2.0, takes="values"),
        LossSpec("mse", "MSE", mse, "regression", "mean", curvature=2.0, takes="values"),
        LossSpec("mae", "MAE", mae, "regression", "mean", takes="values"),
        LossSpec(
            "binary_cross_entropy_with_logits",
            "BCE",
            binary_cross_entropy_with_logits,
            "binary",
            "mean",
            takes="logits",
        ),
        LossSpec(
            "binary_cross_entropy",
            "BCE",
            binary_cross_entropy,
            "binary",
            "mean",
            takes="probabilities",
        ),
        LossSpec("cross_entropy", "CE", cross_entropy, "multiclass", "mean", takes="logits"),
    )
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def loss_spec(loss: str | Loss | LossSpec) -> LossSpec:
    """The record of a loss: given by name (as :func:`get_loss` reads it), as a built-in
    loss function, or as a function of the user's own, which is wrapped in a record named
    after it (its ``__name__``), whose task and reduction are unknown.

    >>> loss_spec("binary-cross-entropy").display
    'BCE'
    >>> def half_ssr(predictions, target):
    ...     return ssr(predictions, target) * 0.5
    >>> spec = loss_spec(half_ssr)
    >>> spec.name, spec.display, spec.task, spec.reduction
    ('half_ssr', 'half_ssr', None, None)
    """
    if isinstance(loss, LossSpec):
        return loss
    if isinstance(loss, str):
        spec = LOSSES.get(_key(loss))
        if spec is None:
            raise ChainruleError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        return spec
    if callable(loss):
        for spec in LOSSES.values():
            if spec.function is loss:
                return spec
        name = getattr(loss, "__name__", None) or "loss"
        return LossSpec(name, name, loss)
    raise ChainruleError(
        f"a loss is a name ({', '.join(LOSSES)}) or a function (predictions, target) -> "
        f"Tensor, got {type(loss).__name__}"
    )


def get_loss(name: str) -> Loss:
    """The loss function called ``name`` (one of :data:`LOSSES`; ``-`` may stand for ``_``).

    >>> get_loss("cross-entropy") is cross_entropy
    True
    """
    return loss_spec(name).function


def loss_for_task(task: str) -> LossSpec:
    """The loss a task gets when none is chosen: the first one in :data:`LOSSES` for it.

    >>> loss_for_task("regression").name, loss_for_task("multiclass").name
    ('ssr', 'cross_entropy')
    """
    for spec in LOSSES.values():
        if spec.task == task:
            return spec
    raise ChainruleError(f"unknown task {task!r}; choose one of regression, binary, multiclass")


def sigmoid_mismatch(loss: str | Loss | LossSpec, output_sigmoid: bool | None) -> str | None:
    """Why a model whose output applies a sigmoid (``output_sigmoid``; None when unknown)
    cannot be trained with ``loss``, or None when they fit: a loss that takes logits would
    apply the sigmoid a second time (and train to chance), and a loss that takes
    probabilities needs the model to apply it.

    >>> print(sigmoid_mismatch("binary_cross_entropy", output_sigmoid=True))
    None
    >>> sigmoid_mismatch("binary_cross_entropy_with_logits", output_sigmoid=True)[:60]
    'binary_cross_entropy_with_logits takes logits and applies th'
    """
    spec = loss_spec(loss)
    if output_sigmoid is None:
        return None
    if output_sigmoid and spec.takes == "logits":
        return (
            f"{spec.name} takes logits and applies the sigmoid itself, but the model's output "
            "already applies a sigmoid, so it would be applied twice: use "
            "binary_cross_entropy (it takes probabilities), or leave the output's sigmoid out"
        )
    if not output_sigmoid and spec.takes == "probabilities":
        return (
            f"{spec.name} takes probabilities, but the model's output applies no sigmoid, so "
            "its outputs are logits: use binary_cross_entropy_with_logits, or end the model "
            "with a sigmoid"
        )
    return None
