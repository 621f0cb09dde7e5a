"""Formula models: a network written in the learner's own notation.

One assignment per line; the last assignment is the output::

    x1 = w1 * dosage + b1
    y1 = softplus(x1)
    x2 = w2 * dosage + b2
    y2 = softplus(x2)
    predicted = w3 * y1 + w4 * y2 + b3

Names that the data provides are the *inputs* (``dosage``); every other name that is used
but never assigned is a *parameter* (``w1`` ... ``b3``). The text is read in two steps:

1. **Parse.** Python's :mod:`ast` reads the text, and :class:`_Parser` turns each right-hand
   side into a tiny intermediate form (:class:`Number`, :class:`Name`, :class:`Negate`,
   :class:`Binary`, :class:`Call`). Anything outside that whitelist is refused with the line
   and column where it is written. The text is never given to ``eval``, ``exec`` or
   ``compile``: a formula can only compute numbers.
2. **Build.** The intermediate form is turned once into small functions (closures) that
   apply the engine's Tensor operators and functions; every call of the model runs them.
   The node computed for ``x1 = ...`` gets the name ``"x1"``, so graphs and derivations
   read in the learner's own words.

>>> import chainrule as cr
>>> model = cr.Formula("y = softplus(w * dosage + b)", values={"w": 1.0})
>>> model({"dosage": [0.0, 1.0]}).data.round(4)
array([0.6931, 1.3133])
>>> model.inputs, model.parameter_names
(('dosage',), ('w', 'b'))
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.nn.module import Module, Parameter
from chainrule.ops import OPS
from chainrule.tensor import FUNCTIONS as TENSOR_FUNCTIONS
from chainrule.tensor import Tensor, broadcast_to

# ---------------------------------------------------------------------------------------
# The functions a formula may call
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Function:
    """A function that formulas may call: how many arguments it takes and what it does."""

    name: str
    arity: int
    apply: Callable[..., Tensor]


#: A matrix of at most this many numbers passed again to a formula reuses its input
#: nodes (small data, many steps: where making them is a noticeable part of a step).
_REUSE_INPUTS_UP_TO = 4096

#: The functions a formula may call, by the name written in the formula: the op table's
#: entries that have ``formula_names`` (one-input functions first, then two-input ones).
FUNCTIONS: dict[str, Function] = {
    name: Function(name, op.arity or 1, TENSOR_FUNCTIONS[op.name])
    for op in sorted(OPS.values(), key=lambda op: op.arity or 0)
    for name in op.formula_names
}

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}

# ---------------------------------------------------------------------------------------
# The intermediate form: what a right-hand side may be
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    """A number written in the formula, e.g. ``2`` or ``-1.43``."""

    value: float


@dataclass(frozen=True, slots=True)
class Name:
    """A name: an input, a parameter or an earlier assignment."""

    name: str


@dataclass(frozen=True, slots=True)
class Negate:
    """``-operand``."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right`` with ``op`` one of ``+ - * / **``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Call:
    """``function(arg, ...)``; ``function`` is a key of :data:`FUNCTIONS`."""

    function: str
    args: tuple[Expr, ...]


Expr = Number | Name | Negate | Binary | Call


@dataclass(frozen=True, slots=True)
class Assignment:
    """One line ``name = expression`` of a formula.

    ``expression`` is the right-hand side as written, ``line`` and ``column`` (1-based)
    where the name is written, ``uses`` the names it reads (in order of first appearance)
    and ``tree`` its parsed form.
    """

    name: str
    expression: str
    line: int
    column: int
    uses: tuple[str, ...]
    tree: Expr


# ---------------------------------------------------------------------------------------
# Parsing: text -> list of Assignments, refusing anything outside the whitelist
# ---------------------------------------------------------------------------------------

_KNOWN = ", ".join(FUNCTIONS)
_ALLOWED = f"numbers, names, + - * / **, parentheses and the functions {_KNOWN}"

_OPERATOR_SYMBOLS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
}

#: Why each kind of Python expression outside the whitelist is refused.
_REFUSED_EXPRESSIONS: dict[type, str] = {
    ast.Attribute: "attribute access (a '.' after a name) is not allowed",
    ast.Subscript: "indexing with [...] is not allowed",
    ast.Compare: "comparisons (==, <, >, ...) are not allowed: a formula computes numbers",
    ast.BoolOp: "'and' / 'or' are not allowed: a formula computes numbers",
    ast.IfExp: "'... if ... else ...' is not allowed (relu, maximum and minimum make kinks)",
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "':=' is not allowed: write one assignment per line",
    ast.Starred: "'*' unpacking is not allowed",
    ast.JoinedStr: "strings are not allowed: a formula computes numbers",
    ast.Tuple: "a tuple (values separated by commas) is not allowed: one value per line",
    ast.List: "lists are not allowed: one value per line",
    ast.Set: "sets are not allowed: one value per line",
    ast.Dict: "dictionaries are not allowed: one value per line",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
}

#: What to call a statement that is not ``name = expression``.
_STATEMENT_KINDS: dict[type, str] = {
    ast.Import: "an import",
    ast.ImportFrom: "an import",
    ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition",
    ast.ClassDef: "a class definition",
    ast.If: "an if statement",
    ast.For: "a for loop",
    ast.While: "a while loop",
    ast.With: "a with statement",
    ast.Return: "a return statement",
    ast.Delete: "a del statement",
    ast.Pass: "pass",
}


def _constant_problem(value: object) -> str | None:
    """Why a literal cannot be used, or None for a plain (real) number."""
    if isinstance(value, bool):
        return "True and False are not allowed: write 1 or 0"
    if isinstance(value, int | float):
        return None
    if isinstance(value, str | bytes):
        return "strings are not allowed: a formula computes numbers"
    if isinstance(value, complex):
        return "complex numbers are not allowed"
    return f"{value!r} is not allowed: a formula computes numbers"


class _Parser:
    """Turns formula text into :class:`Assignment` records (see the module docstring).

    Errors name the line and the 1-based column, counted in characters as a learner counts.
    """

    def __init__(self, text: str) -> None:
        # A formula written inside an indented triple-quoted string is read as if it
        # started at the left margin; columns still count from the original margin.
        self.text = textwrap.dedent(text)
        first = next((line for line in text.splitlines() if line.strip()), "")
        self.indent = len(first) - len(first.lstrip()) if self.text != text else 0
        self.lines = self.text.splitlines()
        self.assigned: dict[str, tuple[int, ast.Name]] = {}  # name -> (statement index, target)
        self.current = 0  # index of the statement being read
        self.uses: list[str] = []  # names read by the current right-hand side
        self.first_use: dict[str, tuple[int, int]] = {}  # name -> (line, column)

    # -- positions and errors ----------------------------------------------------------

    def column(self, line: int, byte_offset: int) -> int:
        """``ast`` counts columns in UTF-8 bytes from 0; learners count characters from 1."""
        source = self.lines[line - 1].encode("utf-8") if line <= len(self.lines) else b""
        return len(source[:byte_offset].decode("utf-8", errors="replace")) + 1 + self.indent

    def error(self, node: ast.AST, problem: str) -> ChainruleError:
        line, offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
        return ChainruleError(f"formula line {line}, column {self.column(line, offset)}: {problem}")

    def operator_error(self, node: ast.BinOp, problem: str) -> ChainruleError:
        """An error pointing at the operator of ``left OP right`` rather than at ``left``."""
        line, offset = node.left.end_lineno or node.lineno, node.left.end_col_offset or 0
        while line <= (node.right.lineno or line):
            source = self.lines[line - 1].encode("utf-8")
            while offset < len(source) and source[offset : offset + 1] in b" \t)":
                offset += 1  # skip spaces and the parentheses that close ``left``
            if offset < len(source) and source[offset : offset + 1] not in b"#\\":
                return ChainruleError(
                    f"formula line {line}, column {self.column(line, offset)}: {problem}"
                )
            line, offset = line + 1, 0  # the operator is on a continuation line
        return self.error(node, problem)

    # -- statements --------------------------------------------------------------------

    def parse(self) -> list[Assignment]:
        try:
            module = ast.parse(self.text, mode="exec")
        except SyntaxError as e:
            raise _syntax_error(e, self.indent) from None
        except (ValueError, RecursionError, MemoryError) as e:  # null bytes, deep nesting
            raise ChainruleError(f"formula: cannot read the text: {e}") from None
        if not module.body:
            raise ChainruleError(
                "the formula is empty: write one assignment per line, "
                "e.g. 'predicted = w * dosage + b'"
            )
        # First pass: where each name is (first) assigned, so that a name used too early
        # can be told where its assignment is.
        for index, statement in enumerate(module.body):
            if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
                self.assigned.setdefault(statement.targets[0].id, (index, statement.targets[0]))
        # Second pass, top to bottom: check each line and read its right-hand side into
        # the intermediate form. The first mistake in reading order is the one reported.
        assignments = []
        for index, statement in enumerate(module.body):
            target = self.target(statement)
            assert isinstance(statement, ast.Assign)
            name = target.id
            if name in FUNCTIONS:
                raise self.error(target, f"{name!r} is a function's name: choose another name")
            first_index, first_target = self.assigned[name]
            if first_index != index:
                raise self.error(
                    target,
                    f"{name!r} is assigned twice (first on line {first_target.lineno}): "
                    "give each step its own name",
                )
            self.current, self.uses = index, []
            try:
                tree = self.expression(statement.value)
            except RecursionError:
                raise self.error(statement, "this expression is too deeply nested") from None
            text = ast.get_source_segment(self.text, statement.value) or ""
            uses = tuple(dict.fromkeys(self.uses))
            column = self.column(target.lineno, target.col_offset)
            assignments.append(Assignment(name, text, target.lineno, column, uses, tree))
        return assignments

    def target(self, statement: ast.stmt) -> ast.Name:
        """The name assigned by ``name = expression``; any other statement is refused."""
        if isinstance(statement, ast.Assign):
            if len(statement.targets) > 1:
                raise self.error(statement, "one name per line: 'a = b = ...' is not allowed")
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                return target
            if isinstance(target, ast.Tuple | ast.List):
                raise self.error(target, "assign one name per line, not several at once")
            raise self.error(target, "the left side of '=' must be a plain name, e.g. 'y1'")
        if isinstance(statement, ast.Expr):
            problem = (
                "this line is an expression, not an assignment: give it a name, "
                "e.g. 'predicted = ...'"
            )
        elif isinstance(statement, ast.AugAssign):
            problem = "'+=' and the like are not allowed: give each step its own name"
        elif isinstance(statement, ast.AnnAssign):
            problem = "annotations (':') are not allowed: write 'name = expression'"
        else:
            kind = _STATEMENT_KINDS.get(type(statement), "this statement")
            problem = f"each line must be 'name = expression', not {kind}"
        raise self.error(statement, problem)

    # -- expressions -------------------------------------------------------------------

    def expression(self, node: ast.expr) -> Expr:
        """One node of a right-hand side, checked against the whitelist."""
        if isinstance(node, ast.Constant):
            problem = _constant_problem(node.value)
            if problem is not None:
                raise self.error(node, problem)
            return Number(float(node.value))
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.expression(node.operand)
            if isinstance(node.op, ast.USub):
                operand = self.expression(node.operand)
                return Number(-operand.value) if isinstance(operand, Number) else Negate(operand)
            symbol = "not" if isinstance(node.op, ast.Not) else "~"
            raise self.error(node, f"{symbol!r} is not allowed; use {_ALLOWED}")
        if isinstance(node, ast.BinOp):
            left = self.expression(node.left)
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), "?")
            if symbol == "^":
                raise self.operator_error(node, "'^' is not a power here: use ** for powers")
            if symbol not in _BINARY:
                raise self.operator_error(
                    node, f"the operator {symbol!r} is not allowed: use + - * / **"
                )
            return Binary(symbol, left, self.expression(node.right))
        if isinstance(node, ast.Call):
            return self.call(node)
        default = f"{type(node).__name__} is not allowed; a formula uses {_ALLOWED}"
        raise self.error(node, _REFUSED_EXPRESSIONS.get(type(node), default))

    def name(self, node: ast.Name) -> Name:
        """A name read on the right-hand side: it must not be assigned later (or here)."""
        name = node.id
        if name in FUNCTIONS:
            raise self.error(node, f"{name!r} is a function: call it, e.g. {name}(x)")
        if name in self.assigned:
            index, target = self.assigned[name]
            if index == self.current:
                raise self.error(node, f"{name!r} is used in its own definition")
            if index > self.current:
                raise self.error(
                    node,
                    f"{name!r} is used before it is assigned (it is assigned on line "
                    f"{target.lineno}): move that line up",
                )
        self.uses.append(name)
        self.first_use.setdefault(name, (node.lineno, self.column(node.lineno, node.col_offset)))
        return Name(name)

    def call(self, node: ast.Call) -> Call:
        """``function(arg, ...)``: a known function, positional arguments only."""
        if isinstance(node.func, ast.Attribute):
            hint = f" write {node.func.attr}(...)" if node.func.attr in FUNCTIONS else ""
            raise self.error(
                node.func, f"attribute access (a '.' after a name) is not allowed;{hint}"
            )
        if not isinstance(node.func, ast.Name):
            raise self.error(node.func, "only named functions can be called, e.g. softplus(x)")
        name = node.func.id
        function = FUNCTIONS.get(name)
        if function is None:
            raise self.error(node.func, _unknown_function(name))
        if node.keywords:
            raise self.error(
                node.keywords[0],
                f"keyword arguments are not allowed: write {name}(...) with plain arguments",
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(arg, "'*' unpacking is not allowed")
        if len(node.args) != function.arity:
            wanted = "1 argument" if function.arity == 1 else f"{function.arity} arguments"
            raise self.error(node, f"{name} takes {wanted}, got {len(node.args)}")
        return Call(name, tuple(self.expression(arg) for arg in node.args))


def _syntax_error(e: SyntaxError, indent: int = 0) -> ChainruleError:
    """Python's syntax error, told with the formula's line, column and text."""
    line, column = e.lineno or 1, (e.offset or 1) + indent
    text = (e.text or "").strip()
    hint = ""
    if isinstance(e, IndentationError):
        hint = " (every line starts at the same margin)"
    return ChainruleError(
        f"formula line {line}, column {column}: syntax error: {e.msg}{hint}: {text!r}"
    )


def _unknown_function(name: str) -> str:
    close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
    if close:
        return f"unknown function {name!r}: did you mean {close[0]!r}? (known: {_KNOWN})"
    message = f"unknown function {name!r} (known: {_KNOWN})"
    if not name.startswith("_"):
        message += f"; to multiply, write {name} * (...)"
    return message


def _free_names(assignments: list[Assignment]) -> tuple[str, ...]:
    """Names used but never assigned, in order of first appearance."""
    assigned = {a.name for a in assignments}
    used = (name for a in assignments for name in a.uses)
    return tuple(dict.fromkeys(name for name in used if name not in assigned))


# ---------------------------------------------------------------------------------------
# Building: intermediate form -> Tensors
# ---------------------------------------------------------------------------------------


def _compile(expr: Expr) -> Callable[[Mapping[str, Tensor]], Any]:
    """``expr`` as a function of the named nodes that applies the engine's operators.

    The tree is walked once, when the formula is read, rather than at every call: each
    node becomes a small closure, and an operator or a function whose operands are names
    or numbers reads them directly (most of a formula is ``w1 * dosage + b1``). Numbers
    stay Python floats, except that an operator between two numbers still makes one
    engine op (its left side becomes a Tensor).

    >>> _compile(Binary("*", Number(2.0), Name("x")))({"x": Tensor([1.0, 3.0])}).data
    array([2., 6.])
    """
    if isinstance(expr, Number):
        value = expr.value
        return lambda env: value
    if isinstance(expr, Name):
        return operator.itemgetter(expr.name)
    if isinstance(expr, Negate):
        operand = _compile(expr.operand)
        return lambda env: -operand(env)
    if isinstance(expr, Binary):
        return _compile_binary(_BINARY[expr.op], expr.left, expr.right)
    function = FUNCTIONS[expr.function].apply
    if len(expr.args) == 1:
        (arg,) = expr.args
        if isinstance(arg, Name):
            name = arg.name
            return lambda env: function(env[name])
        only = _compile(arg)
        return lambda env: function(only(env))
    args = [_compile(arg) for arg in expr.args]
    return lambda env: function(*[arg(env) for arg in args])


def _compile_binary(
    apply: Callable[[Any, Any], Any], left: Expr, right: Expr
) -> Callable[[Mapping[str, Tensor]], Any]:
    """``left op right`` as a closure; names and numbers are read in place, not called."""
    if isinstance(left, Number) and isinstance(right, Number):
        a, b = left.value, right.value
        return lambda env: apply(Tensor(a), b)  # two numbers: still one engine op
    if isinstance(left, Name) and isinstance(right, Name):
        a, b = left.name, right.name
        return lambda env: apply(env[a], env[b])
    if isinstance(left, Name) and isinstance(right, Number):
        a, b = left.name, right.value
        return lambda env: apply(env[a], b)
    if isinstance(left, Number) and isinstance(right, Name):
        a, b = left.value, right.name
        return lambda env: apply(a, env[b])
    if isinstance(right, Name):
        f, b = _compile(left), right.name
        return lambda env: apply(f(env), env[b])
    if isinstance(left, Name):
        a, g = left.name, _compile(right)
        return lambda env: apply(env[a], g(env))
    f, g = _compile(left), _compile(right)
    return lambda env: apply(f(env), g(env))


def _numbers(data: Any, what: str) -> np.ndarray:
    """``data`` as a float array (float32 kept, everything else float64)."""
    if isinstance(data, Tensor):
        data = data.data
    if type(data) is np.ndarray and (data.dtype == np.float64 or data.dtype == np.float32):
        return data  # already numbers (every training step passes such an array)
    try:
        array = np.asarray(data)
    except ValueError as e:  # ragged lists
        raise ChainruleError(f"{what}: cannot read the values as an array ({e})") from None
    if array.dtype.kind not in "iuf":
        raise ChainruleError(f"{what}: must hold numbers, got values of type {array.dtype}")
    return array if array.dtype == np.float32 else array.astype(np.float64, copy=False)


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


class Formula(Module):
    """A model written as formulas, one assignment per line; the last one is the output.

    ``inputs`` names the values that the data provides (the others are parameters); when
    None, the model takes them from the keys of the first dict it is called with (or from
    :meth:`bind`). ``values`` sets parameters' starting values; the others start at 0 when
    their name starts with ``b`` (biases), else from a standard normal seeded by ``seed``.

    >>> model = Formula('''
    ... x1 = w1 * dosage + b1
    ... y1 = softplus(x1)
    ... predicted = w2 * y1 + b2
    ... ''', inputs=["dosage"], values={"w1": 1.0, "w2": 2.0})
    >>> model.parameter_names
    ('w1', 'b1', 'w2', 'b2')
    >>> model({"dosage": [0.0, 1.0]}).data.round(4)
    array([1.3863, 2.6265])
    """

    def __init__(
        self,
        text: str,
        inputs: Sequence[str] | None = None,
        values: Mapping[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(text, str):
            raise ChainruleError(f"Formula: the text must be a string, not {type(text).__name__}")
        self._text = text
        parser = _Parser(text)
        self._assignments = parser.parse()
        last = len(self._assignments) - 1
        # Each line's right-hand side as a function of the named nodes, read once here,
        # and whether its value is used as it comes (not the output, a copy of a name or
        # a line of numbers only, which trace finishes).
        self._plan = [
            (a, _compile(a.tree), i != last and not isinstance(a.tree, Name | Number))
            for i, a in enumerate(self._assignments)
        ]
        self._output = self._assignments[-1].name
        self._input_nodes: tuple[Any, ...] | None = None
        self._first_use = parser.first_use
        self._free = _free_names(self._assignments)
        self._values = _starting_values(values)
        self._seed = seed
        self._inputs: tuple[str, ...] | None = None
        self._parameters: dict[str, Parameter] = {}
        if inputs is not None:
            self.bind(inputs)
        else:
            self._check_values(self._free, "names the formula uses (inputs and parameters)")

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
        unknown = sorted(set(config) - {"kind", "text", "inputs", "values", "seed"})
        if unknown:
            raise ChainruleError(
                f"Formula.from_config: unknown keys {', '.join(unknown)} "
                "(known: kind, text, inputs, values, seed)"
            )
        if "text" not in config:
            raise ChainruleError("Formula.from_config: the config has no 'text'")
        return cls(
            config["text"],
            inputs=config.get("inputs"),
            values=config.get("values"),
            seed=config.get("seed", 0),
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
        names = tuple(input_names)
        if self._inputs is not None:
            if names == self._inputs:
                return
            raise ChainruleError(
                f"Formula inputs are already {list(self._inputs)}; cannot bind {list(names)}"
            )
        self._check_inputs(names)
        parameters = tuple(name for name in self._free if name not in names)
        self._check_values(parameters, "parameters", inputs=names)
        rng = np.random.default_rng(self._seed)
        created = {}
        for name in parameters:
            # Every non-bias parameter draws, even when ``values`` sets it: fixing one
            # starting value does not shift the others.
            start = 0.0 if name.startswith("b") else float(rng.standard_normal())
            created[name] = Parameter(self._values.get(name, start), name=name)
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
        names = tuple(columns)
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
        close = difflib.get_close_matches(name, self._free, n=1)
        if not close:
            return None, ""
        line, column = self._first_use[close[0]]
        return close[0], f"line {line}, column {column}"

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
                    f"values: the formula has no parameter {name!r}; "
                    f"the {what} are: {', '.join(allowed) or 'none'}"
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
        n = len(next(iter(nodes.values()))) if nodes else 1
        nodes = {**nodes, **self._parameters}
        for assignment, compute, plain in self._plan:
            try:
                value = compute(nodes)
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
        if cached is None or cached[0] is not x or cached[1] != x.shape or cached[2] != x.dtype:
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
            and x.dtype == np.float64
            and inputs is not None
            and x.ndim == 2
            and x.shape[1] == len(inputs)
        ):  # the matrix that training passes at every step: its columns, as they are
            return {name: x[:, j] for j, name in enumerate(inputs)}
        if isinstance(x, Mapping):
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
                columns[name] = _numbers(x[name], f"input {name!r}")
        else:
            if self._inputs is None:
                raise ChainruleError(
                    "the formula's inputs are not known yet and an array has no column "
                    "names: call the model with a dict such as {'dosage': [...]}, "
                    "or pass inputs=[...] to Formula"
                )
            array = _numbers(x, "the data")
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
        checked[name] = number
    return checked
