"""Scenario files: a teaching example written once, in TOML, and run anywhere.

A scenario says which data, which model and which training settings an example uses.
The command line (``chainrule run main-ideas``), the Python API
(:func:`load_scenario`) and the web page all read the same file, so the numbers a class
sees are the same everywhere. The format (see ``docs/scenarios.md``)::

    title = "Backpropagation main ideas: estimate b3"

    [data]
    dosage = [0.0, 0.5, 1.0]       # inputs by name ...
    observed = [0.0, 1.0, 0.0]     # ... and the one remaining array is the target

    [model]
    formula = '''
    x1 = w1 * dosage + b1
    ...
    predicted = w3 * y1 + w4 * y2 + b3
    '''

    [parameters]                   # starting values
    b3 = 0.0

    [train]
    loss = "ssr"
    optimize = ["b3"]              # the others stay frozen
    learning_rate = 0.1
    stop = { step_size = 0.001, max_steps = 1000 }

Every mistake in a file (an unknown key, a wrong type, a parameter the model does not
have, a bad formula line or CSV cell) raises one :class:`~chainrule.errors.ChainruleError`
that names the file, the line and the key, and says what was expected.

>>> scenario = load_scenario("main-ideas")
>>> scenario.optimize, scenario.learning_rate
(['b3'], 0.1)
>>> run = scenario.run()
>>> round(run.model.scalar("b3").value, 2), run.history.stop_reason
(2.61, 'step_size')
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.datasets import DATASETS, Dataset, load_csv, load_dataset
from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.history import Stop
from chainrule.losses import LOSSES, loss_for_task
from chainrule.nn import ACTIVATIONS, MLP, Module
from chainrule.optim import OPTIMIZERS
from chainrule.run import Run
from chainrule.text import closest, did_you_mean

__all__ = [
    "TEMPLATE",
    "Scenario",
    "ScenarioInfo",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
]

#: The keys each part of a scenario file may hold.
TOP_KEYS = ("title", "description", "data", "model", "parameters", "train")
MODEL_KEYS = ("formula", "layers", "activation", "output", "inputs")
TRAIN_KEYS = ("loss", "optimize", "optimizer", "learning_rate", "stop", "batch_size", "seed")
STOP_KEYS = ("step_size", "loss", "max_steps")
CSV_KEYS = ("csv", "inputs", "target")

#: The largest sizes a scenario may ask for: a teaching example is small, and a typo such
#: as ``n = 1000000000`` should be an error, not a machine out of memory.
MAX_DATA_POINTS = 100_000
MAX_PARAMETERS = 1_000_000
MAX_STEPS = 1_000_000

#: Training settings a file may leave out.
DEFAULT_OPTIMIZER = "gradient_descent"
DEFAULT_LEARNING_RATE = 0.1
DEFAULT_STOP: dict[str, float | int] = {"step_size": 0.001, "max_steps": 1000}


# ---------------------------------------------------------------------------------------
# Where things are in the file: lines of keys, for error messages
# ---------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+))\s*(?:\.[^=]*)?=""")


class _Source:
    """The text of one scenario file, to say on which line a key is written.

    ``tomllib`` gives values without positions, so the line of a key is found by reading
    the text again: table headers, ``key =`` lines, and multi-line strings skipped.

    >>> source = _Source("x.toml", 'title = "t"\\n[train]\\nlearning_rate = 2\\n')
    >>> source.line_of("train", "learning_rate")
    3
    >>> str(source.error("train", "learning_rate", "too big"))
    'x.toml:3: [train] learning_rate: too big'
    """

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        self.lines = text.splitlines()
        self.keys: dict[tuple[str | None, str], int] = {}
        self.headers: dict[str, int] = {}
        table: str | None = None
        quote: str | None = None  # the delimiter of an open multi-line string
        for number, line in enumerate(self.lines, start=1):
            if quote is not None:
                if line.count(quote) % 2 == 1:
                    quote = None
                continue
            header = _HEADER.match(line)
            if header and not line.lstrip().startswith("[["):
                table = header[1].strip().strip("\"'")
                self.headers.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                name = next(group for group in key.groups() if group is not None)
                self.keys.setdefault((table, name), number)
            for delimiter in ('"""', "'''"):
                if line.count(delimiter) % 2 == 1:
                    quote = delimiter
                    break

    def line_of(self, table: str | None, key: str | None = None) -> int | None:
        """The line of ``key`` in ``[table]`` (or of the table's header), if written."""
        if key is not None and (table, key) in self.keys:
            return self.keys[(table, key)]
        if table is None and key is not None and key.strip("[]") in self.headers:
            return self.headers[key.strip("[]")]  # a [table] written at the top level
        return self.headers.get(table) if table is not None else None

    def where(self, table: str | None, key: str | None = None, line: int | None = None) -> str:
        """``file:line: [table] key``: the place an error message starts with."""
        line = line if line is not None else self.line_of(table, key)
        place = f"{self.label}:{line}" if line is not None else self.label
        what = " ".join(part for part in (f"[{table}]" if table else "", key or "") if part)
        return f"{place}: {what}" if what else place

    def error(
        self, table: str | None, key: str | None, message: str, line: int | None = None
    ) -> ChainruleError:
        """A ChainruleError that starts with where the problem is."""
        return ChainruleError(f"{self.where(table, key, line)}: {message}")


def _describe(value: Any) -> str:
    """A value as a learner wrote it, for 'got ...' in a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# ---------------------------------------------------------------------------------------
# Reading values of the right type
# ---------------------------------------------------------------------------------------


class _Table:
    """One table of the file: its values, and errors that say where a key is."""

    def __init__(self, source: _Source, name: str | None, values: Mapping[str, Any]) -> None:
        self.source, self.name, self.values = source, name, dict(values)

    def error(self, key: str | None, message: str) -> ChainruleError:
        return self.source.error(self.name, key, message)

    def check_keys(self, allowed: tuple[str, ...], what: str = "") -> None:
        """Refuse a key that is not in ``allowed``, suggesting the nearest."""
        for key, value in self.values.items():
            if key in allowed:
                continue
            known = ", ".join(allowed)
            if self.name is None and isinstance(value, dict):  # a misspelled [table]
                close = closest(key, allowed)
                hint = f"; did you mean [{close}]?" if close is not None else ""
                raise self.source.error(
                    None, f"[{key}]", f"unknown table{hint} ({what or 'keys'}: {known})"
                )
            raise self.error(
                key, f"unknown key {key!r}{did_you_mean(key, allowed)} ({what or 'keys'}: {known})"
            )

    def string(self, key: str, default: str | None = None, choices: Any = None) -> str | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"expected a string in quotes, got {_describe(value)}")
        if choices is not None and value not in choices:
            known = ", ".join(choices)
            hint = did_you_mean(value, choices)
            raise self.error(key, f"unknown value {value!r}{hint} (choose one of {known})")
        return value

    def number(
        self, key: str, default: float | None = None, positive: bool = False
    ) -> float | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise self.error(key, f"expected a finite number, got {value}")
        if positive and value <= 0:
            raise self.error(key, f"expected a number greater than 0, got {value}")
        return float(value)

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {_describe(value)}")
        if value < minimum:
            raise self.error(key, f"expected a whole number >= {minimum}, got {value}")
        return value

    def strings(self, key: str) -> list[str] | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            raise self.error(key, f'expected a list of names, e.g. ["{value}"], got {value!r}')
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of names in quotes, got {_describe(value)}")
        if not value:
            raise self.error(key, "the list is empty")
        for i, name in enumerate(value):
            if name in value[:i]:
                raise self.error(key, f"{name!r} is listed twice")
        return list(value)

    def column(self, key: str) -> list[float]:
        """An array of numbers (a data column)."""
        value = self.values[key]
        if not isinstance(value, list):
            raise self.error(
                key,
                f"expected an array of numbers (a data column), got {_describe(value)}"
                f"{did_you_mean(key, ('csv', 'dataset', 'target'))}",
            )
        if not value:
            raise self.error(key, "the array is empty")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise self.error(key, f"value {i + 1} is {_describe(v)}, expected a finite number")
        return [float(v) for v in value]


# ---------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """A loaded scenario: data, a model at its starting values, and training settings.

    ``model`` is built at the starting values when the file is loaded;
    :meth:`build_model` makes a fresh one (with only ``optimize`` left unfrozen) each
    time, so :meth:`run` can be called again and gives the same numbers.

    >>> scenario = load_scenario("three-parameters")
    >>> scenario.optimize, scenario.model.scalar("w3").value
    (['w3', 'w4', 'b3'], 0.36)
    """

    title: str
    path: Path | None
    data: Dataset
    model: Module
    loss: str
    optimizer: str
    learning_rate: float
    optimize: list[str]
    stop: Stop
    seed: int = 0
    batch_size: int | None = None
    description: str = ""
    name: str = ""
    _factory: Callable[[], Module] = field(default=lambda: Module(), repr=False, compare=False)

    def build_model(self) -> Module:
        """A fresh model at the starting values; parameters not in ``optimize`` are frozen.

        >>> model = load_scenario("main-ideas").build_model()
        >>> [name for name, p in model.named_parameters() if not p.frozen]
        ['b3']
        """
        model = self._factory()
        model.freeze()
        model.unfreeze(*self.optimize)
        return model

    def run(self, detail: bool | None = None) -> Run:
        """Train a fresh model as the file says; return the :class:`~chainrule.run.Run`.

        ``detail`` is passed to :func:`chainrule.training.train` (whether every step records
        the values, slopes and step sizes; by default it does for small models).

        >>> run = load_scenario("main-ideas").run()
        >>> len(run.history.steps), run.history.stop_reason
        (10, 'step_size')
        """
        options: dict[str, Any] = {}
        if detail is not None:
            options["detail"] = detail
        return Run.train(
            self.build_model(),
            self.data,
            label=self.label,
            loss=self.loss,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            stop=self.stop,
            batch_size=self.batch_size,
            seed=self.seed,
            **options,
        )

    @property
    def label(self) -> str:
        """The scenario as messages name it: its file as given, or its built-in name.

        >>> load_scenario("main-ideas").label
        'main-ideas'
        """
        if self.path is None:
            return self.name or "<scenario>"
        if self.path.parent == _builtin_dir():
            return self.path.stem
        return str(self.path)

    @property
    def parameter_names(self) -> list[str]:
        """Every parameter of the model, trained or not.

        >>> load_scenario("main-ideas").parameter_names
        ['w1', 'b1', 'w2', 'b2', 'w3', 'w4', 'b3']
        """
        return [name for name, _ in self.model.named_parameters()]


@dataclass(frozen=True)
class ScenarioInfo:
    """A built-in scenario: its name (for ``chainrule run NAME``), title and description."""

    name: str
    title: str
    description: str
    path: Path


# ---------------------------------------------------------------------------------------
# Finding and reading files
# ---------------------------------------------------------------------------------------


def _builtin_dir() -> Path:
    return Path(str(resources.files("chainrule") / "scenarios"))


#: The built-in scenarios in teaching order (others follow by name).
_TEACHING_ORDER = ("main-ideas", "three-parameters", "all-parameters", "circles", "moons")


def _teaching_order(path: Path) -> tuple[int, str]:
    name = path.stem
    rank = _TEACHING_ORDER.index(name) if name in _TEACHING_ORDER else len(_TEACHING_ORDER)
    return rank, name


def builtin_scenarios() -> list[ScenarioInfo]:
    """The scenarios that ship with chainrule, in teaching order.

    >>> [info.name for info in builtin_scenarios()][:3]
    ['main-ideas', 'three-parameters', 'all-parameters']
    """
    infos = []
    for path in sorted(_builtin_dir().glob("*.toml"), key=_teaching_order):
        text = path.read_text(encoding="utf-8")
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError:  # pragma: no cover (the tests load every file)
            values = {}
        title = values.get("title", path.stem)
        description = values.get("description") or _leading_comment(text)
        infos.append(ScenarioInfo(path.stem, str(title), description, path))
    return infos


def _leading_comment(text: str) -> str:
    """The comment lines at the top of a file, without their ``#``: its description."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        lines.append(stripped.lstrip("#").strip())
    return "\n".join(lines).strip()


def _resolve(source: str | os.PathLike[str]) -> Path:
    """The file for ``source``: a path to a TOML file, or the name of a built-in scenario."""
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        raise ChainruleError(f"{path}: is a directory, not a scenario file")
    names = [info.name for info in builtin_scenarios()]
    text = os.fspath(source)
    if text in names:
        return _builtin_dir() / f"{text}.toml"
    if path.suffix or os.sep in text or "/" in text:
        raise ChainruleError(f"{text}: no such file")
    raise ChainruleError(
        f"{text!r} is neither a file nor a built-in scenario{did_you_mean(text, names)} "
        f"(built-in: {', '.join(names)})"
    )


def load_scenario(source: str | os.PathLike[str]) -> Scenario:
    """Read a scenario from a TOML file, or a built-in one by name (``chainrule scenarios``).

    >>> scenario = load_scenario("main-ideas")
    >>> scenario.title
    'Backpropagation main ideas: estimate b3'
    >>> scenario.data.input_names, scenario.data.target_name
    (('dosage',), 'observed')
    """
    path = _resolve(source)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ChainruleError(f"{path}: is not UTF-8 text") from None
    except OSError as exc:
        raise ChainruleError(f"{path}: cannot read the file ({exc.strerror})") from None
    builtin = path.parent == _builtin_dir()
    return parse_scenario(text, path=path, label=path.name if builtin else os.fspath(path))


def parse_scenario(
    text: str, path: str | os.PathLike[str] | None = None, label: str = ""
) -> Scenario:
    """A scenario from the text of a TOML file (e.g. typed into the web page).

    ``path`` is where the file is (CSV files are found relative to it; without it,
    relative to the working directory); ``label`` names the file in error messages.

    >>> scenario = parse_scenario('''
    ... [data]
    ... x = [0.0, 1.0, 2.0]
    ... y = [1.0, 3.0, 5.0]
    ... [model]
    ... formula = "y_hat = w * x + b"
    ... ''')
    >>> scenario.parameter_names, scenario.loss
    (['w', 'b'], 'ssr')
    >>> parse_scenario('[data]\\nx = [1.0]\\n[model]\\nformula = "p = w * x"')
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: <scenario>:1: [data]: no array for the target: ...
    """
    path = Path(path) if path is not None else None
    label = label or (os.fspath(path) if path is not None else "<scenario>")
    source = _Source(label, text)
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        place = f"{label}:{found[1]}" if found else label
        raise ChainruleError(f"{place}: not valid TOML: {exc}") from None
    return _Reader(source, values, path).scenario()


# ---------------------------------------------------------------------------------------
# From TOML values to a Scenario
# ---------------------------------------------------------------------------------------


class _Reader:
    """Reads one scenario's values, part by part, checking each key as it goes."""

    def __init__(self, source: _Source, values: dict[str, Any], path: Path | None) -> None:
        self.source = source
        self.path = path
        self.top = _Table(source, None, values)

    def table(self, key: str, required: bool = True) -> _Table:
        value = self.top.values.get(key)
        if value is None:
            if required:
                raise self.source.error(None, None, f"the [{key}] table is missing")
            value = {}
        if not isinstance(value, dict):
            raise self.top.error(key, f"expected a table [{key}], got {_describe(value)}")
        return _Table(self.source, key, value)

    def scenario(self) -> Scenario:
        self.top.check_keys(TOP_KEYS, "a scenario has")
        title = self.top.string("title") or (self.path.stem if self.path else "scenario")
        description = self.top.string("description") or ""
        data_table = self.table("data")
        model_table = self.table("model")
        parameters = self.table("parameters", required=False)
        train_table = self.table("train", required=False)
        train_table.check_keys(TRAIN_KEYS, "[train] has")
        model_table.check_keys(MODEL_KEYS, "[model] has")

        seed = train_table.integer("seed", 0)
        assert seed is not None
        loss = train_table.string("loss", choices=LOSSES)
        formula = self.formula(model_table)
        data = self.data(data_table, model_table, formula, loss)
        given = loss is not None
        loss = loss or loss_for_task(data.task).name  # the data set's task chose it
        if formula is not None:
            self.check_formula_loss(train_table if given else data_table, formula, data, loss)
        factory = self.model_factory(model_table, formula, data, loss, parameters, seed)
        model = factory()
        optimize = self.optimize(train_table, model)
        stop = self.stop(train_table)
        return Scenario(
            title=title,
            path=self.path,
            data=data,
            model=model,
            loss=loss,
            optimizer=train_table.string("optimizer", DEFAULT_OPTIMIZER, choices=OPTIMIZERS)
            or DEFAULT_OPTIMIZER,
            learning_rate=train_table.number("learning_rate", DEFAULT_LEARNING_RATE, positive=True)
            or DEFAULT_LEARNING_RATE,
            optimize=optimize,
            stop=stop,
            seed=seed,
            batch_size=train_table.integer("batch_size", None, minimum=1),
            description=description,
            name=self.path.stem if self.path else "",
            _factory=factory,
        )

    # -- the model ---------------------------------------------------------------------

    def formula(self, table: _Table) -> Formula | None:
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

    def check_formula_loss(self, table: _Table, formula: Formula, data: Dataset, loss: str) -> None:
        """Refuse a loss that a formula's one output cannot feed: cross_entropy needs one
        output per class. ``table`` is [train] when the file names the loss, else [data]
        (whose task chose it)."""
        if loss != "cross_entropy":
            return
        d, k = len(data.input_names), data.num_classes or 2
        fits = (
            f"a formula has one output ({formula.output_name}): with it use ssr, mse, mae "
            f"or, for 0/1 targets, binary_cross_entropy; for cross_entropy use a layer "
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

    def build_formula(self, table: _Table, text: str, **options: Any) -> Formula:
        """``Formula(text, **options)``, its errors told with the line of this file."""
        try:
            return Formula(text, **options)
        except ChainruleError as exc:
            raise self.formula_error(table, str(exc)) from None

    def formula_error(self, table: _Table, message: str) -> ChainruleError:
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
        table: _Table,
        formula: Formula | None,
        data: Dataset,
        loss: str,
        parameters: _Table,
        seed: int,
    ) -> Callable[[], Module]:
        """A function that builds the model at its starting values (checked once here)."""
        if formula is not None:
            return self.formula_factory(table, formula, data, parameters, seed)
        return self.layers_factory(table, data, loss, parameters, seed)

    def formula_factory(
        self, table: _Table, formula: Formula, data: Dataset, parameters: _Table, seed: int
    ) -> Callable[[], Module]:
        text = formula.text
        inputs = list(data.input_names)
        names = [name for name in formula.free_names if name not in inputs]
        values = {}
        for key in parameters.values:
            if key not in names:
                hint = did_you_mean(key, names)
                what = "an input, not a parameter" if key in inputs else "not a parameter"
                raise parameters.error(
                    key,
                    f"{key!r} is {what} of the model{hint} (its parameters: {', '.join(names)})",
                )
            values[key] = parameters.number(key)
        self.build_formula(table, text, inputs=inputs, values=values, seed=seed)

        def build() -> Module:
            return Formula(text, inputs=inputs, values=values, seed=seed)

        return build

    def layers_factory(
        self, table: _Table, data: Dataset, loss: str, parameters: _Table, seed: int
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
                f"outputs), e.g. [2, 8, 1], got {_describe(layers)}",
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
        if output == "sigmoid" and loss == "binary_cross_entropy":
            raise table.error(
                "output",
                "binary_cross_entropy takes logits (the sigmoid is inside the loss): "
                'leave output out (or write output = "identity")',
            )
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
                    model.parameter(key).data[...] = value
            return model

        return build

    def layer_value(
        self, table: _Table, model: Module, names: list[str], key: str, value: Any
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
                key, f"expected an array of finite numbers of shape {shape}, got {_describe(value)}"
            )
        return array

    # -- the data ----------------------------------------------------------------------

    def data(
        self, table: _Table, model: _Table, formula: Formula | None, loss: str | None
    ) -> Dataset:
        """The data set: a built-in one, a CSV file, or arrays written in the file."""
        explicit_inputs = model.strings("inputs")
        if "dataset" in table.values:
            return self.builtin_data(table, formula, explicit_inputs)
        wanted = self.model_inputs(formula, explicit_inputs)
        exact = explicit_inputs is not None  # every name listed must be a column
        if "csv" in table.values:
            data = self.csv_data(table, formula, wanted, exact)
        else:
            data = self.inline_data(table, wanted, exact)
        if data.n > MAX_DATA_POINTS:
            raise table.error(
                "csv" if "csv" in table.values else None,
                f"at most {MAX_DATA_POINTS:,} data points, got {data.n:,}",
            )
        task = LOSSES[loss].task if loss is not None else "regression"
        if task != data.task:
            try:
                data = Dataset(data.inputs, data.target, data.target_name, data.name, task)
            except ChainruleError as exc:
                raise self.source.error(
                    "data", data.target_name, f"{exc} (the loss {loss!r} needs it)"
                ) from None
        return data

    def model_inputs(self, formula: Formula | None, explicit: list[str] | None) -> list[str] | None:
        """The input names the model asks for: ``[model] inputs``, or the formula's names."""
        if explicit is not None:
            return explicit
        return list(formula.free_names) if formula is not None else None

    def builtin_data(
        self, table: _Table, formula: Formula | None, explicit: list[str] | None
    ) -> Dataset:
        name = table.string("dataset", choices=DATASETS)
        assert name is not None
        options = [p for p in inspect.signature(DATASETS[name]).parameters]
        table.check_keys(("dataset", *options), f"data set {name!r} has the options")
        for key, value in table.values.items():
            if key != "dataset" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise table.error(key, f"expected a number, got {_describe(value)}")
        settings = {k: v for k, v in table.values.items() if k != "dataset"}
        n = settings.get("n")
        if n is not None and n > MAX_DATA_POINTS:
            raise table.error("n", f"at most {MAX_DATA_POINTS:,} data points, got {n:,}")
        try:
            data = load_dataset(name, **settings)
        except ChainruleError as exc:
            raise table.error("dataset", str(exc)) from None
        used = explicit or (
            [n for n in formula.free_names if n in data.inputs] if formula is not None else None
        )
        if used is not None:
            missing = [n for n in used if n not in data.inputs]
            if missing:
                raise table.error(
                    "dataset",
                    f"data set {name!r} has no input {missing[0]!r} "
                    f"(its inputs: {', '.join(data.input_names)})",
                )
            if list(used) != list(data.input_names):
                columns = {n: data.inputs[n] for n in used}
                data = Dataset(
                    columns, data.target, data.target_name, data.name, data.task, data.num_classes
                )
        return data

    def csv_data(
        self, table: _Table, formula: Formula | None, wanted: list[str] | None, exact: bool
    ) -> Dataset:
        table.check_keys(CSV_KEYS, "CSV data has the keys")
        relative = table.string("csv")
        assert relative is not None
        base = self.path.parent if self.path is not None else Path()
        file = base / relative
        explicit = table.strings("inputs")
        target = table.string("target")
        inputs = explicit
        header = _csv_header(file)
        if inputs is None and exact:
            inputs = wanted  # load_csv names a missing column
        elif inputs is None and wanted is not None and header is not None:
            inputs = [name for name in wanted if name in header]
            if not inputs:
                raise table.error(
                    "csv",
                    f"{file}: none of its columns ({', '.join(header)}) is a name the model "
                    f"uses ({', '.join(wanted)})",
                )
        if target is None and inputs is not None and header is not None and formula is not None:
            rest = [name for name in header if name not in inputs]
            if len(rest) == 1:
                target = rest[0]
            elif rest:
                raise table.error(
                    "csv",
                    f"{file}: the columns {', '.join(rest)} are not inputs of the model; "
                    'say which one is the target with target = "..."',
                )
        try:
            return load_csv(file, inputs=inputs, target=target)
        except ChainruleError as exc:
            raise table.error("csv", str(exc)) from None

    def inline_data(self, table: _Table, wanted: list[str] | None, exact: bool) -> Dataset:
        target = table.string("target")
        columns = {key: table.column(key) for key in table.values if key != "target"}
        if not columns:
            raise table.error(
                None,
                "no data: write arrays (e.g. dosage = [0.0, 0.5, 1.0]), "
                'csv = "file.csv" or dataset = "moons"',
            )
        names = list(columns)
        if target is not None and target not in columns:
            raise table.error(
                "target",
                f"no array named {target!r}{did_you_mean(target, names)} "
                f"(arrays: {', '.join(names)})",
            )
        if wanted is not None:
            inputs = [name for name in names if name in wanted]
            if exact:  # [model] inputs: every name is an array, in the order given
                missing = [name for name in wanted if name not in columns]
                if missing:
                    raise table.error(
                        None,
                        f"[model] inputs names {missing[0]!r}, which is not an array here"
                        f"{did_you_mean(missing[0], names)} (arrays: {', '.join(names)})",
                    )
                inputs = list(wanted)
            if target is not None and target in inputs:
                raise table.error(
                    "target", f"{target!r} is the target, so the model cannot use it as an input"
                )
            rest = [name for name in names if name not in inputs and name != target]
            if target is None:
                if len(rest) == 1:
                    target = rest[0]
                elif not rest:
                    raise table.error(
                        None,
                        f"no array for the target: the model uses every array "
                        f"({', '.join(names)}) as an input",
                    )
                else:
                    raise table.error(
                        None,
                        f"the model does not use the arrays {', '.join(rest)}; one can be the "
                        'target: say which with target = "..."',
                    )
            elif rest:
                raise table.error(
                    rest[0],
                    f"the model does not use {rest[0]!r} and it is not the target "
                    f"({target!r}){did_you_mean(rest[0], wanted)}",
                )
            if not inputs:
                raise table.error(
                    None,
                    f"the model uses none of the arrays ({', '.join(names)}) as an input",
                )
        else:  # a layer model without [model] inputs: every array but the target
            if target is None:
                if len(names) > 2:
                    raise table.error(
                        None,
                        'say which array is the target with target = "...", or list the '
                        "inputs in [model] inputs = [...]",
                    )
                target = names[-1]
            inputs = [name for name in names if name != target]
            if not inputs:
                raise table.error(None, "needs at least one input array besides the target")
        lengths = {name: len(columns[name]) for name in names}
        n = lengths[target]
        for name in names:
            if lengths[name] != n:
                raise table.error(
                    name,
                    f"has {lengths[name]} values but the target {target!r} has {n}: "
                    "every array needs one value per data point",
                )
        label = self.path.stem if self.path else "data"
        try:
            return Dataset(
                {name: columns[name] for name in inputs},
                columns[target],
                target,
                label,
                "regression",
            )
        except ChainruleError as exc:
            raise table.error(None, str(exc)) from None

    # -- training ----------------------------------------------------------------------

    def optimize(self, table: _Table, model: Module) -> list[str]:
        names = [name for name, _ in model.named_parameters()]
        chosen = table.strings("optimize")
        if chosen is None:
            return names
        result: list[str] = []
        for pattern in chosen:
            if "[" in pattern:
                raise table.error(
                    "optimize",
                    f"{pattern!r}: a whole parameter is trained or frozen, not one entry; "
                    f"write {pattern.split('[', 1)[0]!r}",
                )
            try:
                model.freeze(pattern)
            except ChainruleError:
                raise table.error(
                    "optimize",
                    f"the model has no parameter {pattern!r}{did_you_mean(pattern, names)} "
                    f"(its parameters: {', '.join(names)})",
                ) from None
            result.extend(n for n, p in model.named_parameters() if p.frozen and n not in result)
            model.unfreeze()
        return [name for name in names if name in result]

    def stop(self, table: _Table) -> Stop:

        value = table.values.get("stop", DEFAULT_STOP)
        if not isinstance(value, dict):
            raise table.error(
                "stop",
                "expected a table, e.g. stop = { step_size = 0.001, max_steps = 1000 }, "
                f"got {_describe(value)}",
            )
        for key in value:
            if key not in STOP_KEYS:
                raise table.error(
                    "stop",
                    f"unknown key {key!r}{did_you_mean(key, STOP_KEYS)} "
                    f"(stop has: {', '.join(STOP_KEYS)})",
                )
        settings: dict[str, Any] = {}
        for key in ("step_size", "loss"):
            if key in value:
                if isinstance(value[key], bool) or not isinstance(value[key], int | float):
                    raise table.error(
                        "stop", f"{key}: expected a number, got {_describe(value[key])}"
                    )
                if not value[key] > 0:
                    raise table.error("stop", f"{key}: expected a number > 0, got {value[key]}")
                settings[key] = float(value[key])
        if "max_steps" in value:
            steps = value["max_steps"]
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise table.error(
                    "stop", f"max_steps: expected a whole number >= 1, got {_describe(steps)}"
                )
            if steps > MAX_STEPS:
                raise table.error("stop", f"max_steps: at most {MAX_STEPS:,}, got {steps:,}")
            settings["max_steps"] = steps
        try:
            return Stop(**settings)
        except ChainruleError as exc:
            raise table.error("stop", str(exc)) from None


def _csv_header(path: Path) -> list[str] | None:
    """The column names of a CSV file, or None when it cannot be read (load_csv will say)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for row in csv.reader(handle):
                if row and any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


#: The commented scenario that ``chainrule new FILE`` writes: the seed's example, with
#: every other choice shown in comments. It loads and runs as it is.
TEMPLATE = '''\
# A chainrule scenario: the data, the model and how to train it, in one file.
# Run it with:      chainrule run THIS_FILE
# Explain a slope:  chainrule explain THIS_FILE --param b3
# Lines starting with # are comments; the file format is TOML.
# Write what this example teaches here, for the next teacher who opens it.
title = "My scenario"

[data]
# Arrays written here: the names the formula uses are its inputs, the one remaining
# array is the target (or say it: target = "observed"). One value per data point.
dosage = [0.0, 0.5, 1.0]
observed = [0.0, 1.0, 0.0]
# Or a CSV file with a header row, relative to this file:
#   csv = "doses.csv"
#   inputs = ["dosage"]
#   target = "efficacy"
# Or a built-in data set (dosage, moons, circles, spirals, xor, digits) and its options:
#   dataset = "moons"
#   n = 200
#   noise = 0.1

[model]
# One assignment per line, the last is the output. Names the data provides are inputs,
# every other name that is used but never assigned is a parameter. Functions: softplus,
# relu, sigmoid, tanh, exp, log, sqrt, abs, maximum, minimum.
formula = """
x1 = w1 * dosage + b1
y1 = softplus(x1)
x2 = w2 * dosage + b2
y2 = softplus(x2)
predicted = w3 * y1 + w4 * y2 + b3
"""
# Or layers (inputs, hidden..., outputs) instead of a formula:
#   layers = [2, 8, 8, 1]
#   activation = "tanh"      # relu, tanh, sigmoid, softplus, identity
#   output = "identity"      # the output layer's activation

[parameters]
# Starting values. Parameters left out start at 0 (names starting with b) or at a
# random number drawn with the seed below.
w1 = 3.34
b1 = -1.43
w2 = -3.53
b2 = 0.57
w3 = -1.22
w4 = -2.30
b3 = 0.0

[train]
loss = "ssr"                     # ssr, mse, mae, binary_cross_entropy, cross_entropy
optimize = ["b3"]                # the others stay frozen; leave out to train them all
optimizer = "gradient_descent"   # gradient_descent, sgd, momentum, adam, adamw
learning_rate = 0.1
stop = { step_size = 0.001, max_steps = 1000 }   # also: loss = 0.0001
seed = 0
# batch_size = 32                # leave out to use every data point in each step
'''
