"""The PyTorch modules that chainrule models become (imported only when torch is used).

The helpers and layer classes here are also copied, as written, into the Python source
that :func:`chainrule.export.to_torch_source` generates, so the module a user keeps is
the module that the tests compare with chainrule. They use only ``torch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

# ---------------------------------------------------------------------------------------
# Functions that differ from torch's nearest one (copied into generated source)
# ---------------------------------------------------------------------------------------


def softplus(z: torch.Tensor) -> torch.Tensor:
    """ln(1 + e^z) for every z, as chainrule computes it (torch.nn.functional.softplus
    returns z itself above z = 20, which is 2e-9 away)."""
    return torch.logaddexp(z, torch.zeros_like(z))


def maximum(a: Any, b: Any) -> torch.Tensor:
    """The larger of a and b, either of which may be a number written in the formula;
    at a tie each gets half the gradient, as in chainrule."""
    like = a if isinstance(a, torch.Tensor) else b
    return torch.maximum(torch.as_tensor(a, dtype=like.dtype), torch.as_tensor(b, dtype=like.dtype))


def minimum(a: Any, b: Any) -> torch.Tensor:
    """The smaller of a and b (numbers allowed); at a tie each gets half the gradient."""
    like = a if isinstance(a, torch.Tensor) else b
    return torch.minimum(torch.as_tensor(a, dtype=like.dtype), torch.as_tensor(b, dtype=like.dtype))


class Softplus(torch.nn.Module):
    """The softplus activation as chainrule computes it (see :func:`softplus`)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return softplus(z)


# ---------------------------------------------------------------------------------------
# Layer models (copied into generated source)
# ---------------------------------------------------------------------------------------


class MLP(torch.nn.Module):
    """chainrule's MLP in PyTorch: one torch.nn.Linear per layer, under the same names
    (``hidden``, ``output``, or ``hidden1``, ``hidden2``, ...), an activation after each
    hidden layer and ``output_activation`` after the last."""

    def __init__(
        self,
        sizes: Sequence[int],
        layer_names: Sequence[str],
        activation: torch.nn.Module,
        output_activation: torch.nn.Module,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        self.layer_names = list(layer_names)
        for name, n_in, n_out in zip(self.layer_names, sizes[:-1], sizes[1:], strict=True):
            setattr(self, name, torch.nn.Linear(n_in, n_out, dtype=dtype))
        self.activation = activation
        self.output_activation = output_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, inputs) -> (n, outputs)
        for name in self.layer_names:
            x = getattr(self, name)(x)
            x = self.output_activation(x) if name == "output" else self.activation(x)
        return x


class Sequential(torch.nn.Module):
    """chainrule's Sequential: its layers under ``layers.0``, ``layers.1``, ..."""

    def __init__(self, *layers: torch.nn.Module) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ---------------------------------------------------------------------------------------
# Formula models (evaluated from the formula's parsed lines; to_torch_source writes them
# out as Python instead)
# ---------------------------------------------------------------------------------------


class Formula(torch.nn.Module):
    """A chainrule formula evaluated with torch operations, line by line.

    ``lines`` are ``(name, compute)`` pairs in the formula's order, where ``compute``
    maps the values computed so far (inputs, parameters and earlier lines, by the
    learner's names) to the line's value. :meth:`trace` returns all of them by name;
    ``forward`` returns the last line, one value per data point.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        parameters: dict[str, torch.nn.Parameter],
        lines: Sequence[tuple[str, Callable[[dict[str, Any]], Any], str]],
    ) -> None:
        super().__init__()
        for name, parameter in parameters.items():
            self.register_parameter(name, parameter)
        self._chainrule_inputs = tuple(inputs)
        self._chainrule_lines = list(lines)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The names of the data's columns, in the order ``forward`` takes them."""
        return self._chainrule_inputs

    def trace(self, *columns: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every named value of one forward pass: inputs, parameters, then each line."""
        if len(columns) != len(self._chainrule_inputs):
            raise TypeError(
                f"the formula takes {len(self._chainrule_inputs)} input(s) "
                f"({', '.join(self._chainrule_inputs)}), got {len(columns)}"
            )
        values: dict[str, Any] = dict(zip(self._chainrule_inputs, columns, strict=True))
        values.update(self.named_parameters())
        for name, compute, _ in self._chainrule_lines:
            values[name] = compute(values)
        output = self._chainrule_lines[-1][0]
        values[output] = torch.broadcast_to(
            torch.as_tensor(values[output], dtype=columns[0].dtype), columns[0].shape
        )
        return values

    def forward(self, *columns: torch.Tensor) -> torch.Tensor:
        """The output for n data points: one 1-D tensor of length n per input."""
        return self.trace(*columns)[self._chainrule_lines[-1][0]]

    def extra_repr(self) -> str:
        lines = [f"inputs: {', '.join(self._chainrule_inputs)}"]
        lines += [f"{name} = {text}" for name, _, text in self._chainrule_lines]
        return "\n".join(lines)


#: The helpers of this file by name: what a name in the tables of ``_common``
#: (TORCH_FUNCTIONS, ACTIVATION_CLASSES, a Construct's callee) stands for when it is not
#: torch's own. Their source is what to_torch_source copies.
HELPERS: dict[str, Any] = {
    "softplus": softplus,
    "maximum": maximum,
    "minimum": minimum,
    "Softplus": Softplus,
    "MLP": MLP,
    "Sequential": Sequential,
}


def resolve(written: str) -> Any:
    """The object that ``written`` names: ``torch.relu``, ``torch.nn.Tanh`` or a helper.

    >>> resolve("torch.nn.Tanh") is torch.nn.Tanh
    True
    """
    if not written.startswith("torch."):
        return HELPERS[written]
    found: Any = torch
    for part in written.split(".")[1:]:
        found = getattr(found, part)
    return found
