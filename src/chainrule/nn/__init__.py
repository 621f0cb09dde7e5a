"""Models: parameters, modules and layers (see ``module.py`` and ``layers.py``)."""

from chainrule.nn.layers import (
    ACTIVATIONS,
    MLP,
    Activation,
    Identity,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softplus,
    Tanh,
    activation_module,
    from_config,
)
from chainrule.nn.module import Module, Parameter, ScalarRef, scalar_name

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Activation",
    "Identity",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "ScalarRef",
    "Sequential",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "activation_module",
    "from_config",
    "scalar_name",
]
