"""What every exporter shares: the optional packages, and the model seen as parts.

Nothing here imports torch or onnx: a missing one is told in one line naming the extra
to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.nn import MLP, Activation, Linear, Module, Sequential

#: The extra that installs each optional package.
EXTRAS = {"torch": "torch", "onnx": "onnx", "onnxruntime": "onnx"}

#: The model kinds that the exporters know, as messages name them.
KNOWN = "a Formula, an MLP, a Sequential, a Linear layer or an activation"


def require(package: str, purpose: str) -> ModuleType:
    """Import ``package`` for ``purpose``, or say in one line which extra installs it.

    >>> require("numpy", "arrays").__name__
    'numpy'
    """
    try:
        return importlib.import_module(package)
    except ImportError:
        extra = EXTRAS.get(package, package)
        raise ChainruleError(
            f"{purpose} needs the {package} package: pip install 'chainrule[{extra}]'"
        ) from None


def check_model(model: Any) -> None:
    """Refuse a model that the exporters do not know, naming what they know."""
    if isinstance(model, Formula):
        model.inputs  # noqa: B018 (an unbound formula is refused with its own message)
        return
    if isinstance(model, (MLP, Linear, Activation)):
        return
    if isinstance(model, Sequential):
        for i, layer in enumerate(model.layers):
            if not isinstance(layer, (MLP, Linear, Activation, Sequential)):
                raise ChainruleError(
                    f"cannot export layer {i} of the Sequential ({type(layer).__name__}): "
                    f"its layers must be MLPs, Linear layers, activations or Sequentials"
                )
            check_model(layer)
        return
    raise ChainruleError(f"cannot export a {type(model).__name__}: export knows {KNOWN}")


#: Names that generated Python code uses for itself, so a formula's names cannot.
RESERVED_NAMES = frozenset({"self", "torch", "FORMULA", "VALUES", "FROZEN", "Model", "build"})


def check_names(model: Formula, attributes: Iterable[str]) -> None:
    """Refuse a formula name that the exported module cannot keep: a parameter named like
    an attribute of the module (``attributes``, e.g. torch.nn.Module's ``training``), or a
    name that the generated code uses for itself (``self``, ``torch``).

    >>> check_names(Formula("y = training * x", inputs=["x"]), {"training"})
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: cannot export the formula: its parameter 'training' \
would hide the PyTorch module's own 'training' (line 1); rename it
    """
    taken = set(attributes)
    for name in (*model.inputs, *model.parameter_names, *(a.name for a in model.assignments)):
        problem = None
        if name in RESERVED_NAMES:
            problem = f"the name {name!r} is one that the exported Python code needs"
        elif name in model.parameter_names and (
            name in taken or name.startswith(("__", "_chainrule_"))
        ):
            problem = f"its parameter {name!r} would hide the PyTorch module's own {name!r}"
        if problem:
            raise ChainruleError(
                f"cannot export the formula: {problem} ({_where(model, name)}); rename it"
            )


def _where(model: Formula, name: str) -> str:
    """Where ``name`` is first written in the formula: ``line L``."""
    for a in model.assignments:
        if a.name == name or name in a.uses:
            return f"line {a.line}"
    return "in the formula"


def linear_weights(model: Module, prefix: str = "") -> set[str]:
    """The names of the weight matrices of the Linear layers in ``model``: the parameters
    that PyTorch stores transposed, (out, in) where chainrule stores (in, out).

    >>> sorted(linear_weights(MLP([1, 2, 1])))
    ['hidden.weight', 'output.weight']
    """
    if isinstance(model, Linear):
        return {f"{prefix}weight"}
    if isinstance(model, Formula):
        return set()
    found: set[str] = set()
    for name, value in model.children():
        if isinstance(value, Module):
            found |= linear_weights(value, f"{prefix}{name}.")
    return found


@dataclass(frozen=True)
class Value:
    """One parameter as it leaves chainrule: its name, its values in PyTorch's layout,
    and whether it is frozen."""

    name: str
    array: np.ndarray
    frozen: bool


def values_in_torch_layout(model: Module) -> list[Value]:
    """Every parameter of ``model`` in PyTorch's layout (Linear weights transposed).

    >>> [(v.name, v.array.shape) for v in values_in_torch_layout(Linear(3, 2))]
    [('weight', (2, 3)), ('bias', (2,))]
    """
    transposed = linear_weights(model)
    return [
        Value(name, p.data.T.copy() if name in transposed else p.data.copy(), p.frozen)
        for name, p in model.named_parameters()
    ]


def dtype_of(model: Module) -> np.dtype:
    """The dtype of the model's parameters (float64 for a model without any).

    >>> str(dtype_of(MLP([1, 1], dtype="float32")))
    'float32'
    """
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) > 1:
        raise ChainruleError(
            f"the model's parameters have several dtypes ({', '.join(sorted(map(str, dtypes)))}); "
            "export needs one"
        )
    return np.dtype(dtypes.pop()) if dtypes else np.dtype(np.float64)


# ---------------------------------------------------------------------------------------
# Layer models as a description of the torch module they become
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Construct:
    """A call that builds one torch module: ``callee(*args, **kwargs)``.

    ``callee`` names a torch class (``torch.nn.Linear``) or a helper of the exported
    code (``MLP``, ``Softplus``); arguments are plain values, dtypes (:class:`DType`) or
    other Constructs. :func:`chainrule.export.to_torch` makes the objects from it and
    :func:`chainrule.export.to_torch_source` writes it out as Python, so both give the
    same module.
    """

    callee: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class DType:
    """A torch dtype by name, e.g. ``DType("float64")`` for ``torch.float64``."""

    name: str


#: How each function that a formula may call is written with torch: a torch function, or a
#: helper of the exported code (``softplus``: torch's own switches to the identity above
#: 20; ``maximum``/``minimum``: a number written in the formula is made a tensor).
TORCH_FUNCTIONS: dict[str, str] = {
    "softplus": "softplus",
    "relu": "torch.relu",
    "leaky_relu": "torch.nn.functional.leaky_relu",
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "exp": "torch.exp",
    "log": "torch.log",
    "ln": "torch.log",
    "sqrt": "torch.sqrt",
    "abs": "torch.abs",
    "maximum": "maximum",
    "minimum": "minimum",
}

#: chainrule's activation names -> the torch module class that computes the same
#: (``Softplus`` is a helper: torch's own switches to the identity above 20).
ACTIVATION_CLASSES: dict[str, str] = {
    "relu": "torch.nn.ReLU",
    "leaky_relu": "torch.nn.LeakyReLU",
    "tanh": "torch.nn.Tanh",
    "sigmoid": "torch.nn.Sigmoid",
    "softplus": "Softplus",
    "identity": "torch.nn.Identity",
}


def construct(model: Module) -> Construct:
    """The torch module that a layer model becomes, as a :class:`Construct`.

    >>> construct(Linear(3, 2))
    Construct(callee='torch.nn.Linear', args=(3, 2), kwargs=(('bias', True), \
('dtype', DType(name='float64'))))
    """
    if isinstance(model, MLP):
        dtype = DType(str(model.output.weight.dtype))
        return Construct(
            "MLP",
            (
                list(model.sizes),
                list(model.layer_names),
                Construct(ACTIVATION_CLASSES[model.activation_name]),
                Construct(ACTIVATION_CLASSES[model.output_activation_name]),
            ),
            (("dtype", dtype),),
        )
    if isinstance(model, Linear):
        dtype = DType(str(model.weight.dtype))
        bias = model.bias is not None
        return Construct(
            "torch.nn.Linear",
            (model.in_features, model.out_features),
            (("bias", bias), ("dtype", dtype)),
        )
    if isinstance(model, Activation):
        return Construct(ACTIVATION_CLASSES[model.name])
    if isinstance(model, Sequential):
        return Construct("Sequential", tuple(construct(layer) for layer in model.layers))
    raise ChainruleError(f"cannot export a {type(model).__name__}: export knows {KNOWN}")


def callees(plan: Construct) -> set[str]:
    """Every callee named in ``plan``, nested ones included."""
    found = {plan.callee}
    for value in (*plan.args, *(v for _, v in plan.kwargs)):
        if isinstance(value, Construct):
            found |= callees(value)
    return found
