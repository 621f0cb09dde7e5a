"""chainrule models to PyTorch modules and back, and PyTorch's names for our losses and
optimizers. Imported only when used: it imports torch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from chainrule.errors import ChainruleError
from chainrule.export import _torch_modules as modules
from chainrule.export._common import (
    TORCH_FUNCTIONS,
    Construct,
    DType,
    check_model,
    check_names,
    construct,
    linear_weights,
    values_in_torch_layout,
)
from chainrule.formula import Formula
from chainrule.formula_lang import Expr, compile_expression
from chainrule.losses import get_loss
from chainrule.nn import Module
from chainrule.nn.layers import from_config
from chainrule.optim import OPTIMIZERS

# ---------------------------------------------------------------------------------------
# chainrule -> torch
# ---------------------------------------------------------------------------------------


def _compile(expr: Expr) -> Callable[[Mapping[str, Any]], Any]:
    """One right-hand side of a formula as a function of the named values, in torch: the
    formula language's own compiler over torch's functions."""
    functions = {name: modules.resolve(path) for name, path in TORCH_FUNCTIONS.items()}
    return compile_expression(expr, functions, constant=float)


def _build(plan: Any) -> Any:
    """The object a :class:`Construct` describes (its arguments built first)."""
    if isinstance(plan, Construct):
        args = [_build(arg) for arg in plan.args]
        kwargs = {key: _build(value) for key, value in plan.kwargs}
        return modules.resolve(plan.callee)(*args, **kwargs)
    if isinstance(plan, DType):
        return getattr(torch, plan.name)
    return plan


def to_torch(model: Module) -> torch.nn.Module:
    """``model`` as a ``torch.nn.Module`` with the same parameters under the same names.

    Layer weights are transposed to PyTorch's (out, in) layout; frozen parameters get
    ``requires_grad=False``; the dtype is kept (float64 unless the model chose float32).
    A formula becomes a module that evaluates its lines with torch operations, keeping
    the learner's names: ``trace`` returns every named value, and ``forward`` takes one
    1-D tensor per input (``module.input_names``). A layer model takes an (n, inputs)
    matrix, as in chainrule.

    >>> import torch, chainrule as cr
    >>> values = {"w": 2.0, "b": 0.0}
    >>> model = cr.Formula("y = softplus(w * dosage + b)", inputs=["dosage"], values=values)
    >>> module = to_torch(model)
    >>> module(torch.tensor([0.0, 1.0], dtype=torch.float64))
    tensor([0.6931, 2.1269], dtype=torch.float64, grad_fn=<ExpandBackward0>)
    >>> sorted(name for name, _ in module.named_parameters())
    ['b', 'w']
    """
    check_model(model)
    if isinstance(model, Formula):
        check_names(model, set(dir(torch.nn.Module())) | set(dir(modules.Formula)))
        parameters = {
            name: torch.nn.Parameter(torch.from_numpy(p.data.copy()), requires_grad=not p.frozen)
            for name, p in model.named_parameters()
        }
        lines = [(a.name, _compile(a.tree), a.expression) for a in model.assignments]
        return modules.Formula(model.inputs, parameters, lines)
    module = _build(construct(model))
    values = values_in_torch_layout(model)
    state = {value.name: torch.from_numpy(value.array) for value in values}
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)  # the same names by design
    for value, (name, parameter) in zip(values, module.named_parameters(), strict=True):
        assert value.name == name
        parameter.requires_grad_(not value.frozen)
    return module


# ---------------------------------------------------------------------------------------
# torch -> chainrule
# ---------------------------------------------------------------------------------------


def _array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ChainruleError(f"from_torch: {name} does not hold numbers ({array.dtype})")
    return array


def from_torch(source: torch.nn.Module | Mapping[str, Any], like: Module) -> Module:
    """A new chainrule model shaped like ``like``, with the weights of ``source``.

    ``source`` is a torch module (e.g. one made by :func:`to_torch` and trained with
    PyTorch) or its ``state_dict()``. Its names must be the model's, and each shape the
    model's in PyTorch's layout (Linear weights (out, in)); the values are converted to the
    model's dtype. From a module, a parameter with ``requires_grad=False`` comes back
    frozen; from a state dict, ``like``'s frozen parameters stay frozen. ``like`` is left
    as it is.

    >>> from chainrule import nn
    >>> model = nn.MLP([2, 3, 1], activation="tanh")
    >>> again = from_torch(to_torch(model), like=model)
    >>> bool((again.hidden.weight.data == model.hidden.weight.data).all())
    True
    """
    check_model(like)
    if isinstance(source, torch.nn.Module):
        state = dict(source.state_dict())
        frozen = {name for name, p in source.named_parameters() if not p.requires_grad}
    elif isinstance(source, Mapping):
        state = dict(source)
        frozen = {name for name, p in like.named_parameters() if p.frozen}
    else:
        raise ChainruleError(
            f"from_torch: give a torch.nn.Module or its state_dict(), not {type(source).__name__}"
        )
    named = dict(like.named_parameters())
    missing = [name for name in named if name not in state]
    extra = [name for name in state if name not in named]
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise ChainruleError(
            f"from_torch: the torch weights do not fit the model ({'; '.join(parts)}); "
            f"the model has: {', '.join(named)}"
        )
    transposed = linear_weights(like)
    arrays = {}
    for name, p in named.items():
        array = _array(name, state[name])
        needed = p.shape[::-1] if name in transposed else p.shape
        if array.shape != needed:
            layout = " (PyTorch's (out, in) layout)" if name in transposed else ""
            raise ChainruleError(
                f"from_torch: {name} has shape {tuple(array.shape)} in the torch weights; "
                f"the model needs {needed}{layout}"
            )
        array = array.T if name in transposed else array
        arrays[name] = np.array(array, dtype=p.dtype, copy=True)
    model = (
        Formula.from_config(like.config())
        if isinstance(like, Formula)
        else from_config(like.config())
    )
    model.load_state_dict(arrays)
    for name, p in model.named_parameters():
        p.frozen = name in frozen
    return model


# ---------------------------------------------------------------------------------------
# The same loss and optimizer in PyTorch
# ---------------------------------------------------------------------------------------


def _aligned(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The target in the predictions' shape and dtype ((n,) and (n, 1) match row by row)."""
    target = torch.as_tensor(target)
    if target.shape != predictions.shape and target.numel() == predictions.numel():
        target = target.reshape(predictions.shape)
    return target.to(predictions.dtype)


def _ssr(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(predictions, _aligned(predictions, target), reduction="sum")


def _mse(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(predictions, _aligned(predictions, target))


def _mae(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.l1_loss(predictions, _aligned(predictions, target))


def _bce(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy(predictions, _aligned(predictions, target))


def _bce_with_logits(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(
        predictions, _aligned(predictions, target)
    )


def _cross_entropy(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    target = torch.as_tensor(target)
    if target.shape == predictions.shape:  # class probabilities per row
        return torch.nn.functional.cross_entropy(predictions, target.to(predictions.dtype))
    return torch.nn.functional.cross_entropy(predictions, target.reshape(-1).long())


#: chainrule's losses -> the same loss in torch.nn.functional terms.
TORCH_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ssr": _ssr,
    "mse": _mse,
    "mae": _mae,
    "binary_cross_entropy": _bce,
    "binary_cross_entropy_with_logits": _bce_with_logits,
    "cross_entropy": _cross_entropy,
}


def torch_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """chainrule's loss called ``name`` written with torch: ``loss(predictions, target)``.

    ``ssr`` is ``mse_loss(reduction="sum")``, the binary cross-entropies have torch's
    names and meaning (probabilities, and logits ``_with_logits``), and
    ``cross_entropy`` takes labels or class probabilities, as chainrule's does.

    >>> import torch
    >>> torch_loss("ssr")(torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0]))
    tensor(0.5000)
    """

    return TORCH_LOSSES[get_loss(name).__name__]


def torch_optimizer(
    name: str, params: Iterable[torch.Tensor], learning_rate: float, **options: Any
) -> torch.optim.Optimizer:
    """chainrule's optimizer called ``name`` as the torch.optim optimizer it follows.

    ``gradient_descent`` is ``SGD`` without momentum, ``momentum`` is ``SGD`` with
    momentum 0.9, and ``adamw`` keeps chainrule's default weight decay 0.01. Options
    (``momentum``, ``betas``, ...) are passed on.

    >>> import torch
    >>> torch_optimizer("adam", [torch.zeros(1, requires_grad=True)], 0.1)  # doctest: +ELLIPSIS
    Adam (...
    """

    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ChainruleError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    params = list(params)
    if key == "gradient_descent":
        return torch.optim.SGD(params, lr=learning_rate, **options)
    if key == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, **options)
    if key == "momentum":
        return torch.optim.SGD(params, lr=learning_rate, **{"momentum": 0.9, **options})
    if key == "adam":
        return torch.optim.Adam(params, lr=learning_rate, **options)
    return torch.optim.AdamW(params, lr=learning_rate, **{"weight_decay": 0.01, **options})
