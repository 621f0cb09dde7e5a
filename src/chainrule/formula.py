"""Formula models: a network written in the learner's own notation.

One assignment per line; the last assignment is the output::

    x1 = w1 * dosage + b1
    y1 = softplus(x1)
    x2 = w2 * dosage + b2
    y2 = softplus(x2)
    predicted = w3 * y1 + w4 * y2 + b3

Names that the data provides are the *inputs* (``dosage``); every other name that is used
but never assigned is a *parameter* (``w1`` ... ``b3``). The text is read by the formula
language (:mod:`chainrule.formula_lang`) in two steps:

1. **Parse.** Python's :mod:`ast` reads the text, and :func:`~chainrule.formula_lang.parse`
   turns each right-hand side into a tiny intermediate form (``Number``, ``Name``,
   ``Negate``, ``Binary``, ``Call``). Anything outside that whitelist is refused with the
   line and column where it is written. The text is never given to ``eval``, ``exec`` or
   ``compile``: a formula can only compute numbers.
2. **Build.** The intermediate form is turned once into small functions (closures) that
   apply the engine's Tensor operators and functions; every call of the model runs them.
   The node computed for ``x1 = ...`` gets the name ``"x1"``, so graphs and derivations
   read in the learner's own words.

>>> import chainrule as cr
>>> model = cr.Formula("y = softplus(w * dosage + b)", values={"w": 1.0}, init="random")
>>> model({"dosage": [0.0, 1.0]}).data.round(4)
array([0.6931, 1.3133])
>>> model.inputs, model.parameter_names
(('dosage',), ('w', 'b'))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import AnomalyError, ChainruleError
from chainrule.formula_lang import (
    FUNCTIONS,
    Assignment,
    Call,
    Name,
    Number,
    compile_expression,
    free_names,
    parse,
)
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor, anomaly_context, broadcast_to, is_anomaly_enabled
from chainrule.text import closest, did_you_mean, normal_name

#: A matrix of at most this many numbers passed again to a formula reuses its input
#: nodes (small data, many steps: where making them is a noticeable part of a step).
_REUSE_INPUTS_UP_TO = 4096


def _numbers(data: Any, what: str, dtype: np.dtype) -> np.ndarray:
    """``data`` as an array of the model's float ``dtype``."""
    if isinstance(data, Tensor):
        data = data.data
    if type(data) is np.ndarray and data.dtype == dtype:
        return data  # already numbers (every training step passes such an array)
    try:
        array = np.asarray(data)
    except ValueError as e:  # ragged lists
        raise ChainruleError(f"{what}: cannot read the values as an array ({e})") from None
    if array.dtype.kind not in "iuf":
        raise ChainruleError(f"{what}: must hold numbers, got values of type {array.dtype}")
    return array.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


#: What a copy of a Formula shares with it (read-only after parsing).
_SHARED_WHEN_COPIED = frozenset({"_text", "_assignments", "_plan", "_first_use", "_free"})


class Formula(Module):
    """A model written as formulas, one assignment per line; the last one is the output.

    ``inputs`` names the values that the data provides (the others are parameters); when
    None, the model takes them from the keys of the first dict it is called with (or from
    :meth:`bind`). ``values`` sets parameters' starting values. Without ``values`` every
    parameter starts at random: 0 when its name starts with ``b`` (biases), else from a
    standard normal seeded by ``seed``. With ``values``, every parameter needs one (a name
    left out is usually a typo that would otherwise start at random and be trained),
    unless ``init="random"`` asks for random starts for the ones left out. ``dtype``
    (float64, or float32) is the float type of the parameters and of the data read.

    >>> model = Formula('''
    ... x1 = w1 * dosage + b1
    ... y1 = softplus(x1)
    ... predicted = w2 * y1 + b2
    ... ''', inputs=["dosage"], values={"w1": 1.0, "w2": 2.0}, init="random")
    >>> model.parameter_names
    ('w1', 'b1', 'w2', 'b2')
    >>> model({"dosage": [0.0, 1.0]}).data.round(4)
    array([1.3863, 2.6265])
    >>> Formula("p = w * dosage + b", inputs=["dosage"], values={"w": 1.0})
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: values: no starting value for the parameter 'b' \
(line 1, column 18); give every parameter a value, or pass init='random' to start the \
others at random (seeded by seed=)
    """

    def __init__(
        self,
        text: str,
        inputs: Sequence[str] | None = None,
        values: Mapping[str, float] | None = None,
        seed: int = 0,
        init: str | None = None,
        dtype: Any = np.float64,
    ) -> None:
        if not isinstance(text, str):
            raise ChainruleError(f"Formula: the text must be a string, not {type(text).__name__}")
        if init not in (None, "random"):
            raise ChainruleError(f"Formula: init must be None or 'random', got {init!r}")
        try:
            self._dtype = np.dtype(dtype)
        except TypeError:
            self._dtype = None
        if self._dtype not in (np.float64, np.float32):
            raise ChainruleError(f"Formula: dtype must be float64 or float32, not {dtype!r}")
        # Random starts for parameters that ``values`` leaves out: asked for, or no values.
        self._init_random = init == "random" or values is None
        self._text = text
        parsed = parse(text)
        self._assignments = parsed.assignments
        last = len(self._assignments) - 1
        # Each line's right-hand side as a function of the named nodes, read once here,
        # and whether its value is used as it comes (not the output, a copy of a name or
        # a line of numbers only, which trace finishes).
        self._plan = [
            (a, compile_expression(a.tree), i != last and not isinstance(a.tree, Name | Number))
            for i, a in enumerate(self._assignments)
        ]
        self._output = self._assignments[-1].name
        self._input_nodes: tuple[Any, ...] | None = None
        self._first_use = parsed.first_use
        self._free = free_names(self._assignments)
        self._values = _starting_values(values)
        self._seed = seed
        self._inputs: tuple[str, ...] | None = None
        self._parameters: dict[str, Parameter] = {}
        if inputs is not None:
            self.bind(inputs)
        else:
            self._check_values(self._free, "names the formula uses (inputs and parameters)")

    def __deepcopy__(self, memo: dict[int, Any]) -> Formula:
        """A copy with its own parameters that shares the parsed text: the lines, their
        compiled functions and the names never change after parsing, and copying them
        was most of the time of :meth:`at` (which the explainer, the scan and each run
        of the web page call)."""
        twin = copy.copy(self)
        memo[id(self)] = twin
        for key, value in vars(self).items():
            if key not in _SHARED_WHEN_COPIED:
                setattr(twin, key, copy.deepcopy(value, memo))
        twin._input_nodes = None  # the cache of input nodes is this model's own
        return twin

    # -- introspection -----------------------------------------------------------------

    @property
    def text(self) -> str:
        """The formula as written."""
        return self._text

    @property
    def assignments(self) -> list[Assignment]:
        """One record per line: name, expression as written, line number, names used.

        >>> [(a.name, a.uses) for a in Formula("z = w * x + b\\ny = relu(z)").assignments]
        [('z', ('w', 'x', 'b')), ('y', ('z',))]
        """
        return list(self._assignments)

    @property
    def dtype(self) -> np.dtype:
        """The float type of the parameters and of the data the formula reads (``dtype=``).

        >>> Formula("y = w * x", inputs=["x"], dtype="float32")([1.0, 2.0]).dtype
        dtype('float32')
        """
        return self._dtype

    @property
    def output_sigmoid(self) -> bool | None:
        """True when the last line is ``sigmoid(...)``; otherwise None (a formula may compute
        a sigmoid in other words, so it cannot tell).

        >>> Formula("p = sigmoid(w * x)").output_sigmoid, Formula("z = w * x").output_sigmoid
        (True, None)
        """
        tree = self._assignments[-1].tree
        return True if isinstance(tree, Call) and tree.function == "sigmoid" else None

    @property
    def output_name(self) -> str:
        """The name of the last assignment: the model's output."""
        return self._assignments[-1].name

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names used but never assigned (inputs and parameters), in order of appearance."""
        return self._free

    @property
    def is_bound(self) -> bool:
        """Whether the inputs (and so the parameters) are known."""
        return self._inputs is not None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names that the data provides, in the order of a matrix's columns.

        >>> Formula("y = w * dosage", inputs=["dosage"]).inputs
        ('dosage',)
        """
        self._require_bound()
        assert self._inputs is not None
        return self._inputs

    # -- the model protocol (see Module): a formula reads its inputs by name ---------------

    @property
    def input_names(self) -> tuple[str, ...] | None:
        """The inputs' names once known (:attr:`inputs`), else None."""
        return self._inputs

    @property
    def formula_lines(self) -> tuple[Assignment, ...]:
        """The formula's lines (:attr:`assignments`)."""
        return tuple(self._assignments)

    def bind_to(self, input_names: Sequence[str]) -> None:
        """Bind a formula written without ``inputs=`` to the data's names (see
        :meth:`bind_to_data`: a column the formula does not use is refused)."""
        if self._inputs is None:
            self.bind_to_data(list(input_names))

    def output_graph(self, data: Dataset, record_inputs: bool = False) -> Tensor:
        """The output on ``data``, its input leaves named after the data's columns; with
        ``record_inputs`` they need a gradient, so that operations on the inputs alone
        are recorded too and a derivation reads ``dosage^2`` rather than a constant.

        >>> from chainrule.datasets import dosage
        >>> out = Formula("p = w * dosage ** 2", inputs=["dosage"]).output_graph(
        ...     dosage(), record_inputs=True)
        >>> out.op.name, [t.name or t.op.name for t in out.inputs], out.inputs[1].inputs[0].name
        ('mul', ['w', 'pow'], 'dosage')
        """
        self.feed(data)  # binds the inputs and checks that the data has them
        columns = {name: np.asarray(data.inputs[name]) for name in self.inputs}
        if not record_inputs:
            return self(columns)
        return self({name: Tensor(c, requires_grad=True, name=name) for name, c in columns.items()})

    def named_nodes(self, data: Dataset) -> dict[str, Tensor]:
        """Every named node of a forward pass on ``data`` (:meth:`trace`)."""
        self.feed(data)
        return self.trace(dict(data.inputs))

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The parameters, in order of first appearance in the text.

        >>> Formula("y = w2 * x + w1", inputs=["x"]).parameter_names
        ('w2', 'w1')
        """
        self._require_bound()
        return tuple(self._parameters)

    def children(self) -> Iterator[tuple[str, Any]]:
        """The parameters by name (so a parameter called e.g. ``forward`` is fine)."""
        self._require_bound()
        yield from self._parameters.items()

    def config(self) -> dict[str, Any]:
        """What rebuilds this model (parameter values travel in :meth:`state_dict`).

        >>> Formula("y = w * x", inputs=["x"]).config()
        {'kind': 'formula', 'text': 'y = w * x', 'inputs': ['x']}
        """
        inputs = None if self._inputs is None else list(self._inputs)
        return {"kind": "formula", "text": self._text, "inputs": inputs}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Formula:
        """The model that :meth:`config` describes (``values`` and ``seed`` may be added).

        >>> Formula.from_config({"kind": "formula", "text": "y = w * x", "inputs": ["x"]})
        Formula(inputs=('x',), parameters=('w',), output='y')
        """
        if not isinstance(config, Mapping) or config.get("kind") != "formula":
            raise ChainruleError("Formula.from_config: needs a dict with kind = 'formula'")
        unknown = sorted(set(config) - {"kind", "text", "inputs", "values", "seed", "init"})
        if unknown:
            raise ChainruleError(
                f"Formula.from_config: unknown keys {', '.join(unknown)} "
                "(known: kind, text, inputs, values, seed, init)"
            )
        if "text" not in config:
            raise ChainruleError("Formula.from_config: the config has no 'text'")
        return cls(
            config["text"],
            inputs=config.get("inputs"),
            values=config.get("values"),
            seed=config.get("seed", 0),
            init=config.get("init"),
        )

    def __repr__(self) -> str:
        if self._inputs is None:
            return f"Formula(inputs=<not bound yet>, output={self.output_name!r})"
        return (
            f"Formula(inputs={self._inputs}, parameters={tuple(self._parameters)}, "
            f"output={self.output_name!r})"
        )

    # -- inputs and parameters ---------------------------------------------------------

    def bind(self, input_names: Iterable[str]) -> None:
        """Say which names the data provides; the other free names become parameters.

        Calling a model with a dict binds it to the dict's keys if it is not bound yet.

        >>> model = Formula("y = w * dosage + b")
        >>> model.bind(["dosage"])
        >>> model.parameter_names
        ('w', 'b')
        """
        if isinstance(input_names, str) or not isinstance(input_names, Iterable):
            raise ChainruleError(
                f"Formula inputs: give a list of names, e.g. ['dosage'], not {input_names!r}"
            )
        names = tuple(normal_name(n) if isinstance(n, str) else n for n in input_names)
        if self._inputs is not None:
            if names == self._inputs:
                return
            raise ChainruleError(
                f"Formula inputs are already {list(self._inputs)}; cannot bind {list(names)}"
            )
        self._check_inputs(names)
        parameters = tuple(name for name in self._free if name not in names)
        self._check_values(parameters, "parameters", inputs=names)
        self._check_all_valued(parameters)
        rng = np.random.default_rng(self._seed)
        created = {}
        for name in parameters:
            # Every non-bias parameter draws, even when ``values`` sets it: fixing one
            # starting value does not shift the others.
            start = 0.0 if name.startswith("b") else float(rng.standard_normal())
            created[name] = Parameter(self._values.get(name, start), name=name, dtype=self._dtype)
        self._inputs, self._parameters = names, created

    def _check_inputs(self, names: tuple[str, ...]) -> None:
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise ChainruleError(f"Formula inputs: {name!r} is not a name")
            if names.count(name) > 1:
                raise ChainruleError(f"Formula inputs: {name!r} is listed twice")
            if name in FUNCTIONS:
                raise ChainruleError(f"Formula inputs: {name!r} is a function's name")
            assignment = next((a for a in self._assignments if a.name == name), None)
            if assignment is not None:
                raise ChainruleError(
                    f"formula line {assignment.line}, column {assignment.column}: "
                    f"{name!r} is an input (the data provides it), so the formula cannot "
                    "assign it"
                )
            if name not in self._free:
                raise ChainruleError(self._unused_input(name))

    def bind_to_data(self, columns: Sequence[str]) -> None:
        """Bind to the input columns of a data set: every column must be a name it uses.

        :func:`chainrule.train` calls this for a formula whose inputs are not known yet.
        A column that the formula does not use is refused, pointing at a free name close
        to it: a typo such as ``x_2`` for the column ``x2`` would otherwise become a
        parameter and be trained, while the column is ignored.

        >>> model = Formula("p = w1 * x1 + w2 * x_2 + b")
        >>> model.bind_to_data(["x1", "x2"])
        Traceback (most recent call last):
        ...
        chainrule.errors.ChainruleError: the data has an input 'x2' that the formula does \
not use; did you mean 'x_2' (line 1, column 20)? (the formula's free names: w1, x1, w2, \
x_2, b; pass inputs=[...] to Formula to name only the data it reads)
        >>> model.bind_to_data(["x2", "x1"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        chainrule.errors.ChainruleError: the data has an input 'x2' ...
        >>> Formula("p = w * dosgae + b").bind_to_data(["dosage"])
        Traceback (most recent call last):
        ...
        chainrule.errors.ChainruleError: the formula uses none of the data's inputs (dosage): \
its free names are w, dosgae, b; did you mean 'dosgae' (line 1, column 9) for 'dosage'? \
Write the inputs' names in the formula, or pass inputs=[...] to Formula
        """
        names = tuple(normal_name(n) for n in columns)
        if not any(name in self._free for name in names):
            hint = next(
                (
                    f"; did you mean {close!r} ({where}) for {name!r}?"
                    for name in names
                    for close, where in [self._close_free_name(str(name))]
                    if close is not None
                ),
                "",
            )
            raise ChainruleError(
                f"the formula uses none of the data's inputs ({', '.join(map(str, names))}): "
                f"its free names are {', '.join(self._free) or 'none'}{hint} Write the "
                "inputs' names in the formula, or pass inputs=[...] to Formula"
            )
        for name in names:
            if name not in self._free:
                raise ChainruleError(self._unused_input(name, in_data=True))
        self.bind(names)

    def _close_free_name(self, name: str) -> tuple[str | None, str]:
        """The free name closest to ``name`` (a likely typo) and where it is first used."""
        close = closest(name, self._free)
        if close is None:
            return None, ""
        line, column = self._first_use[close]
        return close, f"line {line}, column {column}"

    def _unused_input(self, name: str, in_data: bool = False) -> str:
        """Why ``name`` cannot be an input: the formula never uses it (given to :meth:`bind`,
        or a column of the data, ``in_data``), and the free name it may stand for."""
        close, where = self._close_free_name(name)
        if in_data:
            message = f"the data has an input {name!r} that the formula does not use"
            if close is not None:
                message += f"; did you mean {close!r} ({where})?"
            to = " to Formula"
        else:
            message = f"the input {name!r} is never used by the formula"
            if close is not None:
                message += f"; did you mean it at {where}, where {close!r} is?"
            to = ""
        free = ", ".join(self._free) or "none"
        return (
            f"{message} (the formula's free names: {free}; "
            f"pass inputs=[...]{to} to name only the data it reads)"
        )

    def _check_values(
        self, allowed: tuple[str, ...], what: str, inputs: tuple[str, ...] = ()
    ) -> None:
        for name in self._values:
            if name in inputs:
                raise ChainruleError(
                    f"values: {name!r} is an input, not a parameter; "
                    f"the {what} are: {', '.join(allowed) or 'none'}"
                )
            if name not in allowed:
                raise ChainruleError(
                    f"values: the formula has no parameter {name!r}"
                    f"{did_you_mean(name, allowed) or ';'} "
                    f"the {what} are: {', '.join(allowed) or 'none'}"
                )

    def _check_all_valued(self, parameters: tuple[str, ...]) -> None:
        """Refuse a parameter without a starting value unless random starts were asked for."""
        if self._init_random:
            return
        for name in parameters:
            if name in self._values:
                continue
            line, column = self._first_use[name]
            hint = did_you_mean(name, [a.name for a in self._assignments] + list(self._values))
            raise ChainruleError(
                f"values: no starting value for the parameter {name!r} (line {line}, column "
                f"{column}){hint}{' G' if hint else '; g'}ive every parameter a value, or pass "
                "init='random' to start the others at random (seeded by seed=)"
            )

    def _require_bound(self) -> None:
        if self._inputs is None:
            raise ChainruleError(
                "the formula's inputs are not known yet, so neither are its parameters: "
                "pass inputs=[...] to Formula (e.g. inputs=['dosage']) or call the model "
                "with data first (a dict such as {'dosage': [...]}); "
                f"its free names are: {', '.join(self._free) or 'none'}"
            )

    # -- forward -----------------------------------------------------------------------

    def forward(self, x: Any) -> Tensor:
        """The output for ``n`` data points, shape (n,).

        ``x`` is a dict name -> values (1-D of length n, or scalars), an (n, d) array or
        Tensor with columns in :attr:`inputs` order, or a 1-D array for a single input.

        >>> Formula("y = 2 * x + 1", inputs=["x"])([0.0, 1.0]).data
        array([1., 3.])
        """
        return self.trace(x)[self._output]

    def trace(self, x: Any) -> dict[str, Tensor]:
        """Every named node of one forward pass: inputs, parameters, then each assignment.

        >>> nodes = Formula("z = w * x\\ny = relu(z)", values={"w": -1.0}).trace({"x": [2.0]})
        >>> {name: node.data.tolist() for name, node in nodes.items()}
        {'x': [2.0], 'w': -1.0, 'z': [-2.0], 'y': [0.0]}

        An input given as a Tensor that requires a gradient is used as it is, so every
        operation on it is recorded too (``x ** 2`` becomes a node, not a constant).
        """
        nodes = self._reused_inputs(x)
        if nodes is None:
            columns = self._columns(x)
            nodes = {name: Tensor(data, name=name) for name, data in columns.items()}
            if isinstance(x, Mapping):  # inputs that need a gradient stay in the graph
                for name, node in nodes.items():
                    given = x[name]
                    if isinstance(given, Tensor) and given.requires_grad:
                        if given.shape == node.shape:
                            given.name = given.name or name
                            nodes[name] = given
            if type(x) is np.ndarray and x.ndim == 2 and x.size <= _REUSE_INPUTS_UP_TO:
                self._input_nodes = (x, x.shape, x.dtype, nodes)
            elif type(x) is dict:
                self._input_nodes = _dict_of_arrays(x, columns, nodes)
        n = len(next(iter(nodes.values()))) if nodes else 1
        nodes = {**nodes, **self._parameters}
        anomaly = is_anomaly_enabled()
        for assignment, compute, plain in self._plan:
            try:
                if anomaly:  # anomaly mode names the formula line of each op
                    line = f"formula line {assignment.line}: {assignment.name} = "
                    with anomaly_context(line + assignment.expression):
                        value = compute(nodes)
                else:
                    value = compute(nodes)
            except AnomalyError:
                raise
            except ChainruleError as e:  # e.g. log of a negative number
                where = f"formula line {assignment.line} ({assignment.name} = ...)"
                raise type(e)(f"{where}: {e}") from e
            if not plain:
                if not isinstance(value, Tensor):
                    value = Tensor(value)  # a line of numbers only
                if assignment.name == self._output and value.shape != (n,):
                    value = broadcast_to(value, (n,))  # e.g. an output without inputs
                elif isinstance(assignment.tree, Name):
                    value = value.reshape(value.shape)  # ``y = x1``: y gets its own node
            value.name = assignment.name
            nodes[assignment.name] = value
        return nodes

    def _reused_inputs(self, x: Any) -> dict[str, Tensor] | None:
        """The input nodes made from the matrix ``x`` last time, when ``x`` is that same
        small matrix again (as at every step of full-batch training) and they are still
        plain constants. They wrap views of ``x``, so they hold its current numbers."""
        cached = self._input_nodes
        if cached is None or cached[0] is not x:
            return None
        if type(x) is dict:  # the same dict: the same values, and the same arrays in them
            if len(x) != len(cached[1]):
                return None
            for name, given, array in cached[1]:
                if x.get(name) is not given or _array_in(given) is not array:
                    return None
        elif cached[1] != x.shape or cached[2] != x.dtype:
            return None
        nodes: dict[str, Tensor] = cached[3]
        for name, node in nodes.items():
            if node.requires_grad or node.name != name or node.op is not None:
                return None
        return nodes

    def _columns(self, x: Any) -> dict[str, np.ndarray]:
        """One 1-D float array of the same length per input."""
        inputs = self._inputs
        if (
            type(x) is np.ndarray
            and x.dtype == self._dtype
            and inputs is not None
            and x.ndim == 2
            and x.shape[1] == len(inputs)
        ):  # the matrix that training passes at every step: its columns, as they are
            return {name: x[:, j] for j, name in enumerate(inputs)}
        if isinstance(x, Mapping):
            x = {normal_name(k) if isinstance(k, str) else k: v for k, v in x.items()}
            if self._inputs is None:
                self.bind(list(x))
            assert self._inputs is not None
            columns = {}
            for name in self._inputs:
                if name not in x:
                    raise ChainruleError(
                        f"the data has no input {name!r} (the formula's inputs: "
                        f"{', '.join(self._inputs)}; the data has: {', '.join(map(str, x))})"
                    )
                columns[name] = _numbers(x[name], f"input {name!r}", self._dtype)
        else:
            if self._inputs is None:
                raise ChainruleError(
                    "the formula's inputs are not known yet and an array has no column "
                    "names: call the model with a dict such as {'dosage': [...]}, "
                    "or pass inputs=[...] to Formula"
                )
            array = _numbers(x, "the data", self._dtype)
            inputs = self._inputs
            if array.ndim == 2 and array.shape[1] == len(inputs):
                # The columns of one matrix have one length: no check needed.
                return {name: array[:, j] for j, name in enumerate(inputs)}
            elif array.ndim <= 1 and len(inputs) == 1:
                columns = {inputs[0]: array}
            else:
                raise ChainruleError(
                    f"the data has shape {array.shape}; the formula has {len(inputs)} "
                    f"input(s) ({', '.join(inputs)}): pass an (n, {len(inputs)}) array "
                    "with columns in that order, or a dict name -> values"
                )
        return _same_length(columns)


def _array_in(given: Any) -> Any:
    """The array that an input value holds: a Tensor's data, or the value itself."""
    return given.data if isinstance(given, Tensor) else given


def _dict_of_arrays(
    x: dict[Any, Any], columns: dict[str, np.ndarray], nodes: dict[str, Tensor]
) -> tuple[Any, ...] | None:
    """What :meth:`Formula._reused_inputs` compares to reuse the input nodes made from
    the dict ``x`` when the same dict comes again (a training loop passes one dict at
    every step): each input's value and the array it holds. Only when every column IS
    that array (no conversion, no copy), so the nodes see any change made in place to
    it, and the data is small."""
    entries = []
    size = 0
    for name, column in columns.items():
        given = x.get(name)
        if given is None or _array_in(given) is not column or nodes[name].data is not column:
            return None
        size += column.size
        entries.append((name, given, column))
    if len(entries) != len(x) or size > _REUSE_INPUTS_UP_TO:
        return None
    return (x, tuple(entries), None, nodes)


def _same_length(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check that every column is 1-D (or a scalar) of one length n; repeat the scalars."""
    lengths = {}
    for name, column in columns.items():
        if column.ndim > 1:
            raise ChainruleError(
                f"input {name!r}: needs one value per data point (1-D), got shape {column.shape}"
            )
        if column.ndim == 1:
            lengths[name] = len(column)
    if len(set(lengths.values())) > 1:
        told = ", ".join(f"{name} has {k}" for name, k in lengths.items())
        raise ChainruleError(f"the inputs have different numbers of values: {told}")
    n = next(iter(lengths.values()), 1)
    return {name: np.full(n, c, dtype=c.dtype) if c.ndim == 0 else c for name, c in columns.items()}


def _starting_values(values: Mapping[str, float] | None) -> dict[str, float]:
    """``values`` checked: names -> finite floats."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ChainruleError(f"values: give a dict name -> number, not {type(values).__name__}")
    checked = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ChainruleError(f"values: {name!r} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise ChainruleError(f"values: {name!r} must be a finite number, got {value!r}")
        checked[normal_name(name) if isinstance(name, str) else name] = number
    return checked
