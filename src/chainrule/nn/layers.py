"""Layers: Linear, MLP, Sequential and the activations as modules.

``Linear(in_features, out_features)`` computes ``x @ weight + bias`` with ``weight`` of
shape (in_features, out_features): ``weight[i, j]`` is the edge from input ``i`` to unit
``j``, which is how the network diagrams and the explainer name it.

>>> from chainrule import nn, tensor
>>> layer = nn.Linear(3, 2, seed=0)
>>> layer(tensor([[1.0, 2.0, 3.0]])).shape
(1, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.nn.module import Module, Parameter
from chainrule.ops import OPS, Op
from chainrule.tensor import FUNCTIONS, Tensor, matmul, relu, sigmoid, softplus, tanh


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed or 0)


def _size(where: str, what: str, n: Any) -> int:
    """A layer size: a whole number >= 1 (0 would divide by zero, 2.5 is no size)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ChainruleError(f"{where}: {what} must be a whole number >= 1, got {n!r}")
    return int(n)


class Linear(Module):
    """``x @ weight + bias``; weights start uniform in +-1/sqrt(in_features), seeded."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        seed: int | np.random.Generator | None = 0,
        dtype: Any = np.float64,
    ) -> None:
        in_features = _size("Linear", "in_features", in_features)
        out_features = _size("Linear", "out_features", out_features)
        bound = 1.0 / np.sqrt(in_features)
        rng = _rng(seed)
        shape = (in_features, out_features)
        # Fresh arrays drawn for the layer: adopted, not copied again.
        self.weight = Parameter(
            rng.uniform(-bound, bound, size=shape), name="weight", dtype=dtype, copy=False
        )
        self.bias = (
            Parameter(
                rng.uniform(-bound, bound, size=out_features), name="bias", dtype=dtype, copy=False
            )
            if bias
            else None
        )
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: Any) -> Tensor:  # x: (n, in) -> (n, out)
        dtype = self.weight.data.dtype
        if not isinstance(x, Tensor) and not (type(x) is np.ndarray and x.dtype == dtype):
            x = Tensor(x, dtype=dtype)  # data in the layer's float type: no silent upcast
        out = matmul(x, self.weight)
        return out + self.bias if self.bias is not None else out

    def config(self) -> dict[str, Any]:
        """The architecture as plain data (see :func:`from_config`).

        >>> Linear(3, 2).config()
        {'kind': 'linear', 'in_features': 3, 'out_features': 2, 'bias': True, 'dtype': 'float64'}
        """
        return {
            "kind": "linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": str(self.weight.dtype),
        }

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class Activation(Module):
    """An elementwise function as a layer (no parameters)."""

    function: Callable[[Any], Tensor]
    name = "identity"

    def forward(self, x: Any) -> Tensor:
        return type(self).function(x)

    def config(self) -> dict[str, Any]:
        """The architecture as plain data.

        >>> Tanh().config()
        {'kind': 'activation', 'name': 'tanh'}
        """
        return {"kind": "activation", "name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    function = staticmethod(relu)
    name = "relu"


class Tanh(Activation):
    function = staticmethod(tanh)
    name = "tanh"


class Sigmoid(Activation):
    function = staticmethod(sigmoid)
    name = "sigmoid"


class Softplus(Activation):
    function = staticmethod(softplus)
    name = "softplus"


class Identity(Activation):
    function = staticmethod(lambda x: x if isinstance(x, Tensor) else Tensor(x))
    name = "identity"


def _activation_class(op: Op) -> type[Activation]:
    """The layer of an op marked ``activation`` in the table: the class written above for
    it, or one made here (so a new activation op needs no class of its own)."""
    for cls in (ReLU, Tanh, Sigmoid, Softplus):
        if cls.name == op.name:
            return cls
    function = FUNCTIONS[op.name]
    return type(
        op.name.capitalize(),
        (Activation,),
        {"function": staticmethod(function), "name": op.name, "__doc__": op.doc},
    )


#: The activations by name: the op table's entries marked ``activation``, and identity.
ACTIVATIONS: dict[str, type[Activation]] = {
    **{op.name: _activation_class(op) for op in OPS.values() if op.activation},
    "identity": Identity,
}


def activation_module(name: str | None) -> Activation:
    """The activation module called ``name`` (None gives Identity)."""
    if name is None:
        return Identity()
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ChainruleError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None


class Sequential(Module):
    """Modules applied one after the other; parameters are named ``layers.0.weight`` ..."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)
        self.label_parameters()

    def forward(self, x: Any) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def config(self) -> dict[str, Any]:
        """The architecture as plain data: the config of each layer, in order.

        >>> Sequential(Linear(1, 2), Softplus()).config()["layers"][1]
        {'kind': 'activation', 'name': 'softplus'}
        """
        layers = []
        for i, layer in enumerate(self.layers):
            if not callable(getattr(layer, "config", None)):
                raise ChainruleError(
                    f"Sequential: layer {i} ({type(layer).__name__}) has no config(), "
                    "so the model cannot be described as data"
                )
            layers.append(layer.config())
        return {"kind": "sequential", "layers": layers}


class MLP(Module):
    """A multi-layer perceptron: ``sizes`` = [inputs, hidden..., outputs].

    The layers are named ``hidden`` and ``output`` (``hidden1``, ``hidden2``, ... when
    there are several hidden layers), so a scalar reads ``hidden.weight[0,1]``.

    >>> MLP([2, 8, 8, 1], activation="tanh", output_activation="sigmoid").layer_names
    ['hidden1', 'hidden2', 'output']
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | None = "relu",
        output_activation: str | None = None,
        seed: int | np.random.Generator | None = 0,
        dtype: Any = np.float64,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ChainruleError(f"MLP: sizes must be at least two positive numbers, got {sizes}")
        sizes = [_size("MLP", "every size", n) for n in sizes]
        rng = _rng(seed)
        hidden = len(sizes) - 2
        names = ["hidden"] if hidden == 1 else [f"hidden{i + 1}" for i in range(hidden)]
        self.layer_names = [*names, "output"]
        self.sizes = sizes
        self._activation = activation_module(activation)
        self._output_activation = activation_module(output_activation)
        self.activation_name = self._activation.name
        self.output_activation_name = self._output_activation.name
        for name, n_in, n_out in zip(self.layer_names, sizes[:-1], sizes[1:], strict=True):
            setattr(self, name, Linear(n_in, n_out, seed=rng, dtype=dtype))
        self.label_parameters()

    @property
    def output_sigmoid(self) -> bool:
        """Whether the output layer applies a sigmoid."""
        return self.output_activation_name == "sigmoid"

    def forward(self, x: Any) -> Tensor:
        # Each layer's weighted sum is named "<layer>.z" and its activation "<layer>.a",
        # so that derivations read dhidden.a/dhidden.z.
        for name in self.layer_names:
            last = name == "output"
            z = getattr(self, name)(x)
            z.name = f"{name}.z"
            act = self._output_activation if last else self._activation
            x = z if isinstance(act, Identity) else act(z)
            if x is not z:
                x.name = f"{name}.a"
        return x

    def config(self) -> dict[str, Any]:
        """The architecture as plain data (sizes, activations, dtype); see :func:`from_config`.

        >>> MLP([2, 8, 1], activation="tanh").config()["sizes"]
        [2, 8, 1]
        """
        return {
            "kind": "mlp",
            "sizes": list(self.sizes),
            "activation": self.activation_name,
            "output_activation": self.output_activation_name,
            "dtype": str(self.output.weight.dtype),
        }

    def __repr__(self) -> str:
        return f"MLP({self.sizes}, activation={self.activation_name!r})"


def _field(config: dict[str, Any], key: str, kind: str) -> Any:
    try:
        return config[key]
    except KeyError:
        raise ChainruleError(f"a {kind} config needs {key!r}; got keys {sorted(config)}") from None


def config_weights(config: Any) -> int | None:
    """How many numbers the weights of the model ``config`` describes, without building
    it (a file's config is checked against the file's tensors before anything is
    allocated); None for a kind whose count it cannot tell (from_config will say why).

    >>> config_weights(MLP([1, 2, 1]).config()), config_weights(Linear(3, 2, bias=False).config())
    (7, 6)
    """
    if not isinstance(config, dict):
        return None
    kind = config.get("kind")
    if kind == "mlp":
        sizes = config.get("sizes")
        if not isinstance(sizes, list) or not all(_count(n) for n in sizes):
            return None
        return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    if kind == "linear":
        n_in, n_out = config.get("in_features"), config.get("out_features")
        if not (_count(n_in) and _count(n_out)):
            return None
        return n_in * n_out + (n_out if config.get("bias", True) else 0)
    if kind == "activation":
        return 0
    if kind == "sequential" and isinstance(config.get("layers"), list):
        counts = [config_weights(layer) for layer in config["layers"]]
        return None if None in counts else sum(c for c in counts if c is not None)
    return None


def _count(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def from_config(config: dict[str, Any]) -> Module:
    """Build a layer model from ``model.config()`` (fresh weights; load them separately).

    Knows the kinds ``"mlp"``, ``"sequential"``, ``"linear"`` and ``"activation"``.

    >>> from_config(MLP([1, 2, 1], activation="softplus").config())
    MLP([1, 2, 1], activation='softplus')
    """
    if not isinstance(config, dict):
        raise ChainruleError(f"a model config must be a dict, got {type(config).__name__}")
    kind = config.get("kind")
    if kind == "mlp":
        return MLP(
            _field(config, "sizes", kind),
            activation=config.get("activation", "relu"),
            output_activation=config.get("output_activation"),
            dtype=config.get("dtype", "float64"),
        )
    if kind == "linear":
        return Linear(
            _field(config, "in_features", kind),
            _field(config, "out_features", kind),
            bias=config.get("bias", True),
            dtype=config.get("dtype", "float64"),
        )
    if kind == "activation":
        return activation_module(_field(config, "name", kind))
    if kind == "sequential":
        return Sequential(*(from_config(layer) for layer in _field(config, "layers", kind)))
    raise ChainruleError(
        f"unknown model kind {kind!r}; layer models are mlp, sequential, linear or activation"
    )
