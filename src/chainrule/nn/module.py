"""Parameters and modules: the containers that models are made of.

A :class:`Module` finds its parameters by walking its attributes (Parameters, Modules,
and lists, tuples and dicts of them), so ``named_parameters()`` gives dotted names such
as ``hidden.weight``. A single entry of a weight matrix has a name too,
``hidden.weight[0,1]``, so that the explainer can talk about one scalar.

>>> from chainrule import nn
>>> model = nn.MLP([1, 2, 1], activation="softplus")
>>> [name for name, _ in model.named_parameters()]
['hidden.weight', 'hidden.bias', 'output.weight', 'output.bias']
>>> model.freeze("hidden.*")
>>> [name for name, p in model.named_parameters() if not p.frozen]
['output.weight', 'output.bias']
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.tensor import Tensor, inplace, no_grad
from chainrule.text import normal_name

if TYPE_CHECKING:  # pragma: no cover
    from chainrule.formula import Assignment


class Parameter(Tensor):
    """A Tensor that a model trains: it requires grad unless frozen.

    A Parameter owns its values: made from an ndarray (or a Tensor), it holds a copy, so
    the optimizer's in-place steps never change the caller's array. ``copy=False`` adopts
    an array made just for it instead (a layer's freshly drawn weights, say).

    >>> p = Parameter(0.5, name="b3")
    >>> p.requires_grad, p.frozen
    (True, False)
    >>> start = np.zeros(2)
    >>> Parameter(start).data is start
    False
    """

    def __init__(
        self, data: Any, name: str | None = None, dtype: Any = None, *, copy: bool = True
    ) -> None:
        super().__init__(data, requires_grad=True, name=name, dtype=dtype)
        source = data.data if isinstance(data, Tensor) else data
        # Copy only what may be shared: the caller's own array, or a view into some array
        # (numbers, lists and converted dtypes already gave a fresh array of our own).
        if copy and (self.data is source or self.data.base is not None):
            self.data = self.data.copy()

    @property
    def frozen(self) -> bool:
        """A frozen parameter keeps its value: it gets no gradient and no update."""
        return not self.requires_grad

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.requires_grad = not value
        if value:
            self.grad = None


@dataclass(frozen=True, eq=False)
class ScalarRef:
    """One scalar of a model: ``name`` (e.g. ``hidden.weight[0,1]``), its parameter and index.

    Two refs are equal when they name the same entry of the same parameter OBJECT (a
    Parameter's ``==`` compares values elementwise, so it cannot decide that).
    """

    name: str
    parameter: Parameter
    index: tuple[int, ...]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScalarRef):
            return NotImplemented
        return (
            self.parameter is other.parameter
            and self.index == other.index
            and self.name == other.name
        )

    def __hash__(self) -> int:
        return hash((self.name, id(self.parameter), self.index))

    @property
    def value(self) -> float:
        return float(self.parameter.data[self.index])

    def grad(self) -> float | None:
        g = self.parameter.grad
        return None if g is None else float(np.asarray(g)[self.index])

    def set(self, value: float) -> None:
        inplace(self.parameter)[self.index] = value


_KEY = re.compile(r"^\w+$")


def _held(owner: Module, name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """The Parameters and Modules that the attribute ``name`` holds, with their names."""
    if isinstance(value, (Parameter, Module)):
        yield name, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if isinstance(v, (Parameter, Module, list, tuple, dict)):
                yield from _held(owner, f"{name}.{i}", v)
    elif isinstance(value, dict):
        for key, v in value.items():
            if not isinstance(v, (Parameter, Module, list, tuple, dict)):
                continue
            found = list(_held(owner, f"{name}.{key}", v))
            if found and not (isinstance(key, str) and _KEY.match(key)):
                raise ChainruleError(
                    f"{type(owner).__name__}: the dict {name!r} holds parameters under the key "
                    f"{key!r}; their names would read {name}.{key}..., so use keys of letters, "
                    "digits and _ only"
                )
            yield from found


#: ``name`` or ``name[i,j]``; each dotted part of the name must be a Python identifier.
_SCALAR_NAME = re.compile(r"^(?P<param>[^\[\]]+?)(?:\[(?P<index>[0-9,\s]*)\])?$")


def _name_part(part: str) -> bool:
    """A part of a dotted parameter name: an identifier, or a list index (``layers.0``)."""
    return part.isidentifier() or (part.isascii() and part.isdecimal())


def scalar_name(name: str, index: tuple[int, ...]) -> str:
    """``scalar_name("hidden.weight", (0, 1))`` is ``"hidden.weight[0,1]"``."""
    return name if not index else f"{name}[{','.join(str(i) for i in index)}]"


class Module:
    """Base class of models and layers. Subclasses set attributes and define ``forward``.

    The parameters are found in the attributes, in the order they were set: a
    :class:`Parameter` or a Module (whose own parameters get its name as a prefix:
    ``hidden.weight``), and lists, tuples and dicts of them, nested or not
    (``self.layers = [...]`` gives ``layers.0.weight``; ``self.scales = {"x": p}`` gives
    ``scales.x``). Attributes whose names start with ``_`` are private and not searched.
    A parameter or module reachable under two names (``self.a = layer; self.b = layer``)
    is listed once, under the first name, as in PyTorch.

    >>> class Line(Module):
    ...     def __init__(self):
    ...         self.w = Parameter(2.0, name="w")
    ...         self.b = Parameter(0.0, name="b")
    ...     def forward(self, x):
    ...         return self.w * x + self.b
    >>> Line()(Tensor([1.0, 2.0])).data
    array([2., 4.])
    """

    def forward(self, x: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, x: Any) -> Tensor:
        return self.forward(x)

    # -- the model protocol --------------------------------------------------------------
    # What training, the explainer, the figures and the web page ask of ANY model (a
    # formula, layers, a user's own Module). A subclass that reads its inputs by name (a
    # Formula) overrides ``input_names`` and the few methods that depend on it; nobody
    # outside asks which kind of model it is.

    @property
    def input_names(self) -> tuple[str, ...] | None:
        """The data columns the model reads by name, in its order; None for a model that
        takes a data set's whole input matrix, columns in the data set's order (layers).

        >>> from chainrule import nn
        >>> nn.Linear(2, 1).input_names is None
        True
        """
        return None

    @property
    def dtype(self) -> np.dtype:
        """The float type the model computes in: its parameters' (float64 or float32).

        A float32 model reads its data as float32 (:meth:`feed`, training), so its
        outputs, loss and gradients stay float32. float64 for a model without parameters.

        >>> from chainrule import nn
        >>> nn.Linear(2, 1, dtype="float32").dtype
        dtype('float32')
        """
        for _, p in self.named_parameters():
            return p.dtype
        return np.dtype(np.float64)

    @property
    def output_sigmoid(self) -> bool | None:
        """Whether the model's output applies a sigmoid (its outputs are probabilities),
        or None when the model cannot tell (a Module of one's own)."""
        return None

    @property
    def output_name(self) -> str | None:
        """What the model calls its output (a formula's last line), or None."""
        return None

    @property
    def formula_lines(self) -> tuple[Assignment, ...]:
        """The lines of a model written as a formula, in order; empty for other models."""
        return ()

    def bind_to(self, input_names: Sequence[str]) -> None:
        """Learn the input names from the data when the model does not know them yet (a
        formula written without ``inputs=``); nothing to learn for other models."""

    def feed(self, data: Dataset) -> np.ndarray:
        """``data``'s inputs as the (n, d) float matrix the model reads, columns in the
        model's order (:attr:`input_names`) or, for a layer model, in the data's order.

        >>> from chainrule import nn
        >>> from chainrule.datasets import dosage
        >>> nn.Linear(1, 1).feed(dosage()).tolist()
        [[0.0], [0.5], [1.0]]
        """
        if not isinstance(data, Dataset):
            raise ChainruleError(f"a model is fed a Dataset, not {type(data).__name__}")
        return self.feed_columns(data.inputs, f"data set '{data.name}'", data.X)

    def feed_columns(
        self, columns: Mapping[str, Any], where: str, matrix: np.ndarray | None = None
    ) -> np.ndarray:
        """Named ``columns`` as the (n, d) matrix the model reads (``matrix``, when given,
        holds the same columns in their order); ``where`` names them in errors."""
        self.bind_to(list(columns))
        names, dtype = self.input_names, self.dtype
        if names is None:
            if matrix is not None:
                return matrix.astype(dtype, copy=False)
            names = tuple(columns)
        elif matrix is not None and tuple(columns) == names:
            return matrix.astype(dtype, copy=False)
        missing = [name for name in names if name not in columns]
        if missing:
            raise ChainruleError(
                f"the model reads input {', '.join(map(repr, missing))}, but {where} has: "
                f"{', '.join(map(str, columns))}"
            )
        try:
            return np.column_stack([np.asarray(columns[name], dtype=dtype) for name in names])
        except (TypeError, ValueError) as exc:
            raise ChainruleError(
                f"the inputs in {where} are not numbers of one length ({exc})"
            ) from None

    def at(self, values: Mapping[str, float] | None = None) -> Self:
        """The same model with the named scalars set to ``values``; this one is untouched.

        >>> from chainrule import nn
        >>> layer = nn.Linear(1, 1).at({"bias[0]": 0.0})
        >>> float(layer.at({"bias[0]": 2.0}).bias.data[0]), float(layer.bias.data[0])
        (2.0, 0.0)
        """
        twin = copy.deepcopy(self)
        for name, value in (values or {}).items():
            twin.scalar(name).set(float(value))
        return twin

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The outputs for the rows of the (m, d) matrix ``X``, no graph recorded: shape
        (m,) for one output, (m, k) for k.

        >>> from chainrule import nn
        >>> line = nn.Linear(1, 1).at({"weight[0,0]": 2.0, "bias[0]": 0.0})
        >>> line.predict(np.array([[1.0], [2.0]]))
        array([2., 4.])
        """
        with no_grad():
            out = self(Tensor(np.asarray(X, dtype=self.dtype)))
        values = np.asarray(out.data, dtype=np.float64)
        return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values

    def output_graph(self, data: Dataset, record_inputs: bool = False) -> Tensor:
        """The output for every row of ``data`` as a graph whose input leaves carry the
        data's names (one leaf ``dosage`` for a single input, ``x`` for a matrix).

        ``record_inputs``: the inputs are leaves that need a gradient, so operations on
        the inputs alone are recorded too (a formula's ``dosage ** 2``).
        """
        names = data.input_names
        leaf = Tensor(self.feed(data), name=names[0] if len(names) == 1 else "x")
        if record_inputs:
            leaf.requires_grad = True
        return self(leaf)

    def loss_graph(
        self,
        data: Dataset,
        loss: Callable[[Tensor, Any], Tensor],
        name: str,
        record_inputs: bool = False,
    ) -> Tensor:
        """The loss on ``data`` as a graph node called ``name`` (``SSR``), every named node
        of the model recorded on the way (see :meth:`output_graph`).

        >>> from chainrule import nn
        >>> from chainrule.datasets import dosage
        >>> from chainrule.losses import ssr
        >>> flat = nn.Linear(1, 1).at({"weight[0,0]": 0.0, "bias[0]": 0.0})
        >>> flat.loss_graph(dosage(), ssr, "SSR").item()
        1.0
        """
        out = loss(self.output_graph(data, record_inputs), data.target)
        if not out.name:
            out.name = name
        return out

    def named_nodes(self, data: Dataset) -> dict[str, Tensor]:
        """Every named value of one forward pass on ``data`` (a formula's lines); empty for
        a model whose inner values have no names."""
        return {}

    # -- finding parameters ------------------------------------------------------------

    def children(self) -> Iterator[tuple[str, Any]]:
        """The Parameters and Modules in the attributes, by name (``name``, ``name.0``,
        ``name.key`` inside lists, tuples and dicts), in the order the attributes were set."""
        for name, value in vars(self).items():
            if not name.startswith("_"):
                yield from _held(self, name, value)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name, in the order the attributes were set.

        Each parameter comes once, under the first name that reaches it (a layer assigned
        to two attributes does not give its parameters twice).
        """
        return self._named_parameters(prefix, {id(self)})

    def _named_parameters(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Parameter]]:
        # ``seen``: the ids of the modules and parameters met so far (they stay alive, held
        # by the model, while this runs), so repeats and cycles are skipped.
        for name, value in self.children():
            if id(value) in seen:
                continue
            seen.add(id(value))
            full = f"{prefix}{name}"
            if isinstance(value, Parameter):
                yield full, value
            else:
                yield from value._named_parameters(f"{full}.", seen)

    def label_parameters(self) -> None:
        """Name every parameter by its dotted path, so graphs read ``hidden.weight``."""
        for name, p in self.named_parameters():
            p.name = name

    def parameters(self) -> list[Parameter]:
        """Every parameter, frozen ones included."""
        return [p for _, p in self.named_parameters()]

    def trainable_parameters(self) -> list[Parameter]:
        """The parameters that are not frozen."""
        return [p for _, p in self.named_parameters() if not p.frozen]

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``; an unknown name lists the ones that exist."""
        name = normal_name(name)
        for n, p in self.named_parameters():
            if n == name:
                return p
        known = ", ".join(n for n, _ in self.named_parameters())
        raise ChainruleError(f"the model has no parameter {name!r}; it has: {known}")

    # -- single scalars ----------------------------------------------------------------

    def scalar(self, name: str) -> ScalarRef:
        """One scalar by name: ``"b3"``, ``"hidden.weight[0,1]"`` or ``"hidden.bias[1]"``."""
        name = normal_name(name)
        match = _SCALAR_NAME.match(name.replace(" ", ""))
        if match is None or not all(map(_name_part, match["param"].split("."))):
            raise ChainruleError(
                f"{name!r} is not a parameter name (expected e.g. 'b3' or 'hidden.weight[0,1]')"
            )
        p = self.parameter(match["param"])
        text = match["index"]
        index = tuple(int(i) for i in text.split(",") if i) if text else ()
        if len(index) != p.ndim or any(not 0 <= i < n for i, n in zip(index, p.shape, strict=True)):
            example = scalar_name(match["param"], tuple(0 for _ in p.shape))
            raise ChainruleError(
                f"{name!r}: parameter {match['param']!r} has shape {p.shape}; "
                f"name one entry with {p.ndim} index(es) inside its shape, e.g. {example!r}"
            )
        return ScalarRef(scalar_name(match["param"], index), p, index)

    def scalars(self, trainable_only: bool = False) -> list[ScalarRef]:
        """Every scalar of every parameter, e.g. for a ledger of a small layer model."""
        refs = []
        for name, p in self.named_parameters():
            if trainable_only and p.frozen:
                continue
            for index in np.ndindex(p.shape):
                refs.append(ScalarRef(scalar_name(name, index), p, index))
        return refs

    # -- freezing ----------------------------------------------------------------------

    def _matching(self, patterns: tuple[str, ...]) -> list[Parameter]:
        named = list(self.named_parameters())
        if not patterns:
            return [p for _, p in named]
        chosen = []
        for pattern in patterns:
            hits = [p for n, p in named if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                known = ", ".join(n for n, _ in named)
                raise ChainruleError(f"no parameter matches {pattern!r}; the model has: {known}")
            chosen.extend(hits)
        return chosen

    def freeze(self, *names: str) -> None:
        """Freeze the named parameters (globs allowed, e.g. ``"hidden.*"``); all if none."""
        for p in self._matching(names):
            p.frozen = True

    def unfreeze(self, *names: str) -> None:
        """Unfreeze the named parameters (globs allowed); all if none."""
        for p in self._matching(names):
            p.frozen = False

    def zero_grad(self) -> None:
        """Clear every parameter's accumulated gradient."""
        for p in self.parameters():
            p.grad = None

    # -- state -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Name -> a copy of each parameter's values."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def state_mismatch(self, state: dict[str, Any], source: str | None = None) -> str | None:
        """Why ``state`` cannot be loaded: its names, shapes or dtypes differ; else None.

        ``source`` names where the values come from (e.g. ``"the file"``) in the message.

        >>> from chainrule import nn
        >>> model = nn.Linear(1, 1)
        >>> model.state_mismatch({"weight": model.weight.data})
        'the weights do not fit the model (missing bias); the model has: weight, bias'
        >>> model.state_mismatch(model.state_dict()) is None
        True
        """
        named = dict(self.named_parameters())
        missing = [name for name in named if name not in state]
        extra = sorted(name for name in state if name not in named)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(extra)}")
            return (
                f"the weights do not fit the model ({'; '.join(parts)}); "
                f"the model has: {', '.join(named)}"
            )
        found = f" in {source}" if source else ""
        for name, p in named.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                return f"{name} has shape {value.shape}{found}, the model needs {p.shape}"
            if value.dtype != p.dtype:
                return f"{name} has dtype {value.dtype}{found}, the model needs {p.dtype}"
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Set every parameter from ``state``; names, shapes and dtypes must match exactly."""
        problem = self.state_mismatch(state)
        if problem:
            raise ChainruleError(f"load_state_dict: {problem}")
        named = dict(self.named_parameters())
        with no_grad():
            for name, p in named.items():
                p.data = np.array(state[name], dtype=p.dtype, copy=True)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}{tuple(p.shape)}" for n, p in self.named_parameters())
        return f"{type(self).__name__}({inner})"
