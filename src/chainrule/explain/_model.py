"""Running a model on a data set for the explainer: the forward pass and the loss node."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.losses import Loss, get_loss
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


def forward(model: Module, data: Dataset) -> Tensor:
    """The model's output for every row of ``data``.

    A formula reads its inputs by name, so the graph's input leaves carry the data's
    names; a layer model gets the (n, d) matrix as one leaf, named after the single input
    (``dosage``) or ``x`` when there are several.
    """
    if not isinstance(data, Dataset):
        raise ChainruleError(f"the explainer needs a Dataset, not {type(data).__name__}")
    if "inputs" in dir(type(model)):  # a Formula: its inputs by name
        return model(dict(data.inputs))
    names = data.input_names
    return model(Tensor(data.X, name=names[0] if len(names) == 1 else "x"))


def loss_node(model: Module, data: Dataset, loss: str | Loss) -> Tensor:
    """The loss of ``model`` on ``data`` as a graph node named as the learner reads it.

    ``loss`` is a name (``"ssr"``) or a function ``(predictions, target) -> Tensor``.
    """
    function = loss if callable(loss) else get_loss(loss)
    out = function(forward(model, data), data.target)
    if not out.name:
        out.name = getattr(loss, "__name__", None) or "loss"
    return out


@contextlib.contextmanager
def every_parameter_recorded(model: Module) -> Iterator[None]:
    """Make every parameter (frozen ones too) record the graph, then restore the flags.

    A frozen parameter still has a derivative; the explainer shows it all the same.
    """
    parameters = model.parameters()
    flags = [p.requires_grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad = True
        yield
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad = flag


@contextlib.contextmanager
def values_restored(model: Module) -> Iterator[None]:
    """Put every parameter's values back afterwards, even when an error interrupts."""
    saved = [(p, p.data.copy()) for p in model.parameters()]
    try:
        yield
    finally:
        for p, data in saved:
            p.data[...] = data
