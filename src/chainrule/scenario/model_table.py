"""Reading ``[model]`` and ``[parameters]``: a formula or layers, checked against the data
and the loss, and a function that builds the model at its starting values."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.nn import ACTIVATIONS, MLP, Module
from chainrule.scenario.keys import MAX_PARAMETERS
from chainrule.scenario.source import Source, Table, describe
from chainrule.tensor import inplace
from chainrule.text import did_you_mean


class ModelReader:
    """Reads the model's tables of one file; errors name the file's lines."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def formula(self, table: Table) -> Formula | None:
        """The formula, read (not yet bound to inputs), or None for a layer model."""
        has_formula, has_layers = "formula" in table.values, "layers" in table.values
        if has_formula and has_layers:
            raise table.error("layers", "give either formula or layers, not both")
        if not has_formula and not has_layers:
            raise table.error(
                None, 'needs formula = """...""" or layers = [...] (e.g. layers = [2, 8, 1])'
            )
        if has_layers:
            return None
        for key in ("activation", "output"):
            if key in table.values:
                raise table.error(key, f"{key!r} belongs to a layer model, not to a formula")
        text = table.string("formula")
        assert text is not None
        return self.build_formula(table, text)

    def check_formula_loss(self, table: Table, formula: Formula, data: Dataset, loss: str) -> None:
        """Refuse a loss that a formula's one output cannot feed: cross_entropy needs one
        output per class. ``table`` is [train] when the file names the loss, else [data]
        (whose task chose it)."""
        if loss != "cross_entropy":
            return
        d, k = len(data.input_names), data.num_classes or 2
        fits = (
            f"a formula has one output ({formula.output_name}): with it use ssr, mse, mae "
            f"or, for 0/1 targets, binary_cross_entropy_with_logits; for cross_entropy use a layer "
            f"model with one output per class, e.g. layers = [{d}, 8, {k}]"
        )
        if table.name == "train":
            raise table.error("loss", f"'cross_entropy' needs one output per class, but {fits}")
        key = "dataset" if "dataset" in table.values else None
        raise table.error(
            key,
            f"the data has {k} classes, so its loss is cross_entropy, which needs one output "
            f"per class, but {fits}",
        )

    def build_formula(self, table: Table, text: str, **options: Any) -> Formula:
        """``Formula(text, **options)``, its errors told with the line of this file."""
        try:
            return Formula(text, **options)
        except ChainruleError as exc:
            raise self.formula_error(table, str(exc)) from None

    def formula_error(self, table: Table, message: str) -> ChainruleError:
        """Move 'formula line K' in ``message`` to the line of the file it is on."""
        start = self.source.line_of(table.name, "formula")
        match = re.search(r"formula line (\d+)", message)
        if start is None or match is None:
            return table.error("formula", message)
        # A multi-line string that starts with a newline begins on the next line.
        first = start + 1 if self.formula_starts_on_next_line(start) else start
        line = first + int(match[1]) - 1
        return self.source.error(table.name, "formula", message, line=line)

    def formula_starts_on_next_line(self, start: int) -> bool:
        line = self.source.lines[start - 1] if start <= len(self.source.lines) else ""
        after = line.split("=", 1)[1].strip() if "=" in line else ""
        return after in ('"""', "'''")

    def model_factory(
        self,
        table: Table,
        formula: Formula | None,
        data: Dataset,
        loss: str,
        parameters: Table,
        seed: int,
    ) -> Callable[[], Module]:
        """A function that builds the model at its starting values (checked once here)."""
        if formula is not None:
            return self.formula_factory(table, formula, data, parameters, seed)
        return self.layers_factory(table, data, loss, parameters, seed)

    def formula_factory(
        self, table: Table, formula: Formula, data: Dataset, parameters: Table, seed: int
    ) -> Callable[[], Module]:
        text = formula.text
        inputs = list(data.input_names)
        names = [name for name in formula.free_names if name not in inputs]
        values = {}
        init = self.init(parameters)
        for key in parameters.values:
            if key == "init" and init is not None:
                continue
            if key not in names:
                hint = did_you_mean(key, names)
                what = "an input, not a parameter" if key in inputs else "not a parameter"
                raise parameters.error(
                    key,
                    f"{key!r} is {what} of the model{hint} (its parameters: {', '.join(names)})",
                )
            values[key] = parameters.number(key)
        if init is None:
            self.check_all_valued(table, parameters, formula, names, values)
        self.build_formula(table, text, inputs=inputs, values=values, seed=seed, init=init)

        def build() -> Module:
            return Formula(text, inputs=inputs, values=values, seed=seed, init=init)

        return build

    def init(self, parameters: Table) -> str | None:
        """``init = "random"`` in [parameters]: the file asks for random starting values
        (seeded by [train] seed) for the parameters it does not list."""
        if not isinstance(parameters.values.get("init"), str):
            return None  # absent, or a number: a parameter called init
        return parameters.string("init", choices=("random",))

    def check_all_valued(
        self,
        table: Table,
        parameters: Table,
        formula: Formula,
        names: list[str],
        values: dict[str, float],
    ) -> None:
        """Refuse a parameter that [parameters] does not list: without ``init = "random"``
        it would start at a random value, which is how a typo in the formula trains."""
        missing = [name for name in names if name not in values]
        if not missing:
            return
        listed = ", ".join(values) or "none"
        hint = did_you_mean(missing[0], values)
        then = " Give" if hint else "; give"
        message = (
            f"no starting value for {', '.join(missing)} (the formula's parameters: "
            f"{', '.join(names)}; [parameters] lists: {listed}){hint}{then} each a value in "
            '[parameters], or write init = "random" there for random starts (seeded by '
            "[train] seed)"
        )
        where = parameters if parameters.values or self.source.line_of("parameters") else table
        raise where.error(None if where is parameters else "formula", message)

    def layers_factory(
        self, table: Table, data: Dataset, loss: str, parameters: Table, seed: int
    ) -> Callable[[], Module]:
        layers = table.values["layers"]
        if (
            not isinstance(layers, list)
            or len(layers) < 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layers)
        ):
            raise table.error(
                "layers",
                f"expected a list of at least two whole numbers >= 1 (inputs, hidden..., "
                f"outputs), e.g. [2, 8, 1], got {describe(layers)}",
            )
        size = sum((a + 1) * b for a, b in zip(layers[:-1], layers[1:], strict=True))
        if size > MAX_PARAMETERS:
            raise table.error(
                "layers",
                f"these layers have {size:,} weights and biases; at most {MAX_PARAMETERS:,}",
            )
        d = len(data.input_names)
        if layers[0] != d:
            raise table.error(
                "layers",
                f"the first size is the number of inputs: the data has {d} "
                f"({', '.join(data.input_names)}), so layers must start with {d}, not {layers[0]}",
            )
        outputs = data.num_classes if loss == "cross_entropy" else 1
        if layers[-1] != outputs:
            why = (
                f"one per class ({outputs} classes)"
                if loss == "cross_entropy"
                else f"one output for the loss {loss!r}"
            )
            raise table.error("layers", f"the last size must be {outputs}: {why}, not {layers[-1]}")
        activation = table.string("activation", "tanh", choices=ACTIVATIONS)
        output = table.string("output", "identity", choices=ACTIVATIONS)
        sizes = list(layers)

        def fresh() -> Module:
            return MLP(sizes, activation=activation, output_activation=output, seed=seed)

        model = fresh()
        starts: dict[str, Any] = {}
        names = [name for name, _ in model.named_parameters()]
        for key, value in parameters.values.items():
            starts[key] = self.layer_value(parameters, model, names, key, value)

        def build() -> Module:
            model = fresh()
            for key, value in starts.items():
                if "[" in key:
                    model.scalar(key).set(value)
                else:
                    inplace(model.parameter(key))[...] = value
            return model

        return build

    def layer_value(
        self, table: Table, model: Module, names: list[str], key: str, value: Any
    ) -> Any:
        """A starting value of a layer model: a scalar entry, or a whole parameter's array."""
        base = key.split("[", 1)[0]
        if base not in names:
            raise table.error(
                key,
                f"the model has no parameter {base!r}{did_you_mean(base, names)} "
                f"(its parameters: {', '.join(names)})",
            )
        if "[" in key:
            try:
                model.scalar(key)
            except ChainruleError as exc:
                raise table.error(key, str(exc)) from None
            return table.number(key)
        shape = model.parameter(key).shape
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
        if array is None or array.shape != shape or not np.isfinite(array).all():
            raise table.error(
                key, f"expected an array of finite numbers of shape {shape}, got {describe(value)}"
            )
        return array
