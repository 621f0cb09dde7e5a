"""chainrule: backpropagation shown step by step on a real reverse-mode autodiff engine.

The public names live here. Importing chainrule loads numpy and nothing heavier:
figures, the web page and the optional packages are imported only when used.

>>> import chainrule as cr
>>> x = cr.tensor(2.0, requires_grad=True)
>>> (x ** 2).backward()
>>> x.grad
array(4.)
"""

from chainrule import explain, losses, nn, optim
from chainrule.compile import CompileError, compile
from chainrule.datasets import Dataset, load_csv, load_dataset
from chainrule.errors import ChainruleError, DomainError, GraphError, ShapeError
from chainrule.formula import Formula
from chainrule.io import atomic_write, load, save
from chainrule.ops import OPS, Op
from chainrule.run import Run
from chainrule.scenario import Scenario, load_scenario
from chainrule.tensor import (
    FUNCTIONS,
    GradientCheckError,
    Tensor,
    check_grads,
    detect_anomaly,
    grad,
    gradients,
    inplace,
    is_grad_enabled,
    no_grad,
    tensor,
)
from chainrule.training import History, Stop, Trainer, evaluate, train
from chainrule.transforms import hessian, hvp, jacobian, jvp, vjp
from chainrule.version import __version__  # noqa: F401 (chainrule.__version__)

#: The op table's functions (``chainrule.sin``, ``chainrule.sum``, ...), one per entry.
globals().update(FUNCTIONS)

__all__ = [
    "CompileError",
    "Dataset",
    "compile",
    "History",
    "Run",
    "Trainer",
    "Stop",
    "evaluate",
    "explain",
    "load_csv",
    "load_dataset",
    "losses",
    "nn",
    "optim",
    "train",
    "OPS",
    "ChainruleError",
    "DomainError",
    "Formula",
    "GradientCheckError",
    "GraphError",
    "Op",
    "Scenario",
    "ShapeError",
    "Tensor",
    "atomic_write",
    "check_grads",
    "grad",
    "gradients",
    "inplace",
    "is_grad_enabled",
    "load",
    "load_scenario",
    "no_grad",
    "detect_anomaly",
    "save",
    "tensor",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "vjp",
    *sorted(FUNCTIONS),
]
