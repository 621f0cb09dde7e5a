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
from chainrule.datasets import Dataset, load_csv, load_dataset
from chainrule.errors import ChainruleError, DomainError, GraphError, ShapeError
from chainrule.formula import Formula
from chainrule.io import atomic_write, load, save
from chainrule.ops import OPS, Op
from chainrule.scenario import Scenario, load_scenario
from chainrule.tensor import (
    GradientCheckError,
    Tensor,
    abs,
    add,
    broadcast_to,
    check_grads,
    clip,
    concatenate,
    detect_anomaly,
    div,
    exp,
    grad,
    gradients,
    inplace,
    is_grad_enabled,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    no_grad,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    stack,
    sub,
    sum,
    swapaxes,
    tanh,
    tensor,
    transpose,
    where,
)
from chainrule.training import History, Stop, evaluate, train

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "History",
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
    "abs",
    "add",
    "atomic_write",
    "broadcast_to",
    "check_grads",
    "clip",
    "concatenate",
    "div",
    "exp",
    "grad",
    "gradients",
    "inplace",
    "is_grad_enabled",
    "load",
    "load_scenario",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "no_grad",
    "detect_anomaly",
    "pow",
    "relu",
    "reshape",
    "save",
    "sigmoid",
    "softmax",
    "softplus",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "swapaxes",
    "tanh",
    "tensor",
    "transpose",
    "where",
]
