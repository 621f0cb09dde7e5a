"""Hand a chainrule model to PyTorch or ONNX, and take one back.

- :func:`to_torch`: a ``torch.nn.Module`` with the same parameters under the same names
  (layer weights transposed to PyTorch's (out, in) layout, frozen parameters with
  ``requires_grad=False``). A formula keeps the learner's names for every value.
- :func:`to_torch_source`: that module as Python source that runs on its own.
- :func:`to_onnx`: an ONNX graph (opset :data:`OPSET`, float32) whose inputs are named
  after the data's columns, checked with ``onnx.checker``.
- :func:`from_torch`: the weights of a torch module (or its ``state_dict()``) back into
  a chainrule model, checked by names and shapes.
- :func:`torch_loss`, :func:`torch_optimizer`: chainrule's losses and optimizers as
  PyTorch writes them, to train the exported module the same way.

Importing this package loads neither torch nor onnx; each function imports what it
needs, and a missing package is told in one line naming the extra to install
(``pip install 'chainrule[torch]'`` or ``'chainrule[onnx]'``).

>>> import chainrule as cr
>>> from chainrule.export import to_torch_source
>>> model = cr.Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 2.0, "b": 0.0})
>>> print(to_torch_source(model).split("def forward")[1].strip())  # doctest: +ELLIPSIS
(self, dosage: torch.Tensor) -> torch.Tensor:
        predicted = self.w * dosage + self.b
        return predicted
...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chainrule.export._common import require

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from chainrule.nn import Module

#: The ONNX opset that :func:`to_onnx` writes (supported by onnxruntime 1.13 and later).
OPSET = 17

__all__ = [
    "OPSET",
    "from_torch",
    "to_onnx",
    "to_torch",
    "to_torch_source",
    "torch_loss",
    "torch_optimizer",
]


def to_torch(model: Module) -> torch.nn.Module:
    """``model`` as a ``torch.nn.Module``: same parameter names, PyTorch's layout.

    A formula's module takes one 1-D tensor per input (``module.input_names``) and its
    ``trace`` returns every value by the learner's names; a layer model's module takes an
    (n, inputs) matrix. Frozen parameters get ``requires_grad=False``.

    >>> import torch, chainrule as cr
    >>> module = to_torch(cr.nn.MLP([2, 3, 1], activation="tanh"))
    >>> [(name, tuple(p.shape)) for name, p in module.named_parameters()][:2]
    [('hidden.weight', (3, 2)), ('hidden.bias', (3,))]
    """
    require("torch", "exporting to PyTorch")
    from chainrule.export._torch import to_torch as convert

    return convert(model)


def to_torch_source(model: Module, title: str | None = None) -> str:
    """Python source of a module ``Model`` (and ``build()``) that computes ``model`` with
    torch, its values written in. It needs only torch: keep it, import it, train it.

    A formula's ``forward`` reads like the formula, line by line, with the learner's
    names. ``title`` goes into the module docstring.

    >>> import chainrule as cr
    >>> source = to_torch_source(cr.Formula("y = relu(w * x)", inputs=["x"], values={"w": 1.5}))
    >>> "VALUES = {'w': 1.5}" in source and "y = torch.relu(self.w * x)" in source
    True
    """
    require("torch", "exporting to PyTorch source")
    from chainrule.export._source import to_torch_source as write

    return write(model, title)


def from_torch(source: torch.nn.Module | Mapping[str, Any], like: Module) -> Module:
    """A new model shaped like ``like`` holding the weights of the torch module (or
    state dict) ``source``; names and shapes (PyTorch's layout) must match.

    >>> import chainrule as cr
    >>> model = cr.nn.Sequential(cr.nn.Linear(2, 3), cr.nn.Tanh(), cr.nn.Linear(3, 1))
    >>> again = from_torch(to_torch(model).state_dict(), like=model)
    >>> again.parameter("layers.0.weight").shape
    (2, 3)
    """
    require("torch", "importing from PyTorch")
    from chainrule.export._torch import from_torch as convert

    return convert(source, like)


def to_onnx(
    model: Module, path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> Path:
    """Write ``model`` as an ONNX graph (opset :data:`OPSET`, float32) to ``path``.

    A formula's inputs are its input names, one 1-D tensor each, and its output is named
    after its last line. A layer model takes one (n, inputs) matrix named ``input``, or,
    when ``columns`` names the data's columns, one 1-D input per column. The graph is
    checked with ``onnx.checker`` and written atomically.

    >>> import pathlib, tempfile, chainrule as cr
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "seed.onnx"
    >>> to_onnx(cr.Formula("p = w * dosage + b", inputs=["dosage"]), path).name
    'seed.onnx'
    """
    require("onnx", "exporting to ONNX")
    from chainrule.export._onnx import to_onnx as write

    return write(model, path, columns)


def torch_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """chainrule's loss ``name`` written with torch (``ssr`` is a summed ``mse_loss``).

    >>> import torch
    >>> float(torch_loss("ssr")(torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0])))
    0.5
    """
    require("torch", "PyTorch's losses")
    from chainrule.export._torch import torch_loss as find

    return find(name)


def torch_optimizer(
    name: str, params: Iterable[torch.Tensor], learning_rate: float, **options: Any
) -> torch.optim.Optimizer:
    """chainrule's optimizer ``name`` as torch.optim makes it (same rules, same defaults).

    >>> import torch
    >>> type(torch_optimizer("gradient_descent", [torch.zeros(1, requires_grad=True)], 0.1))
    <class 'torch.optim.sgd.SGD'>
    """
    require("torch", "PyTorch's optimizers")
    from chainrule.export._torch import torch_optimizer as make

    return make(name, params, learning_rate, **options)
