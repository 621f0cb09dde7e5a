"""The formula language: text -> a checked intermediate form -> engine operations.

A formula is one assignment per line; the last assignment is the output::

    x1 = w1 * dosage + b1
    y1 = softplus(x1)
    predicted = w3 * y1 + b3

The text is read in two steps:

1. **Parse.** Python's :mod:`ast` reads the text, and :func:`parse` turns each right-hand
   side into a tiny intermediate form (:class:`Number`, :class:`Name`, :class:`Negate`,
   :class:`Binary`, :class:`Call`). Anything outside that whitelist is refused with the line
   and column where it is written. The text is never given to ``eval``, ``exec`` or
   ``compile``: a formula can only compute numbers.
2. **Build.** :func:`compile_expression` turns the intermediate form once into small
   functions (closures) that apply the engine's Tensor operators and functions.

The model that runs a formula is :class:`chainrule.formula.Formula`.

>>> parsed = parse("y = softplus(w * dosage + b)")
>>> [(a.name, a.uses) for a in parsed.assignments]
[('y', ('w', 'dosage', 'b'))]
>>> free_names(parsed.assignments)
('w', 'dosage', 'b')
"""

from __future__ import annotations

import ast
import operator
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chainrule.errors import ChainruleError
from chainrule.ops import OPS
from chainrule.tensor import FUNCTIONS as TENSOR_FUNCTIONS
from chainrule.tensor import Tensor
from chainrule.text import closest

# ---------------------------------------------------------------------------------------
# The functions a formula may call
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Function:
    """A function that formulas may call: how many arguments it takes and what it does."""

    name: str
    arity: int
    apply: Callable[..., Tensor]


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


#: The deepest nesting of operations one right-hand side may have (``a + b + c`` is 2
#: deep). Reading and building a formula follow the nesting, so a bound keeps them far
#: from Python's recursion limit; a longer computation is split over several lines.
MAX_DEPTH = 200

_LARGEST = 1.7976931348623157e308  # the largest float


def _constant_problem(value: object) -> str | None:
    """Why a literal cannot be used, or None for a plain (real) number."""
    if isinstance(value, bool):
        return "True and False are not allowed: write 1 or 0"
    if isinstance(value, int) and not -_LARGEST <= value <= _LARGEST:  # (``abs`` is an op)
        return "this number is too large: a float holds at most about 1.8e308"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "this number is too large: a float holds at most about 1.8e308"
    if isinstance(value, int | float):
        return None
    if isinstance(value, str | bytes):
        return "strings are not allowed: a formula computes numbers"
    if isinstance(value, complex):
        return "complex numbers are not allowed"
    return f"{value!r} is not allowed: a formula computes numbers"


class Parser:
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
        self.encoded: list[bytes] | None = None  # the lines in UTF-8 (ast counts bytes)
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
        except (RecursionError, MemoryError):  # e.g. 10,000 signs or parentheses in a row
            raise ChainruleError(
                "formula: cannot read the text: it nests too deeply (thousands of "
                "parentheses or signs in a row); write one step per line"
            ) from None
        except ValueError as e:  # null bytes, a number of more than 4300 digits
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
            self.check_depth(statement.value)
            tree = self.expression(statement.value)
            text = self.segment(statement.value)
            uses = tuple(dict.fromkeys(self.uses))
            column = self.column(target.lineno, target.col_offset)
            assignments.append(Assignment(name, text, target.lineno, column, uses, tree))
        return assignments

    def check_depth(self, node: ast.expr) -> None:
        """Refuse a right-hand side nested more than :data:`MAX_DEPTH` deep (read without
        recursion, so that the check itself cannot hit the recursion limit)."""
        stack = [(node, 1)]
        while stack:
            current, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.error(
                    node,
                    f"this expression nests more than {MAX_DEPTH} operations deep: split it "
                    "over several lines (e.g. 's1 = a + b' then 's2 = s1 + c')",
                )
            for child in ast.iter_child_nodes(current):
                if isinstance(child, ast.expr):  # (not operators or contexts)
                    stack.append((child, depth + 1))

    def segment(self, node: ast.expr) -> str:
        """The text of ``node`` as written (``ast.get_source_segment`` reads the whole text
        again for each call, which made parsing quadratic in the number of lines)."""
        if self.encoded is None:
            self.encoded = [line.encode("utf-8") for line in self.lines]
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        start, end = node.col_offset, node.end_col_offset
        if first == last:
            return self.encoded[first][start:end].decode("utf-8")
        parts = [self.encoded[first][start:], *self.encoded[first + 1 : last]]
        parts.append(self.encoded[last][:end])
        return b"\n".join(parts).decode("utf-8")

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


@dataclass(frozen=True, slots=True)
class ParsedFormula:
    """A formula's text read and checked: its lines, and where each free name is first
    used (line, 1-based column), for messages that point at a likely typo."""

    assignments: list[Assignment]
    first_use: dict[str, tuple[int, int]]


def parse(text: str) -> ParsedFormula:
    """Read a formula's text into :class:`Assignment` records, refusing anything outside
    the whitelist with the line and column where it is written.

    >>> parse("y = 2 * x").assignments[0].tree
    Binary(op='*', left=Number(value=2.0), right=Name(name='x'))
    >>> parse("y = x.real")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: formula line 1, column 5: attribute access (a '.' after \
a name) is not allowed
    """
    parser = Parser(text)
    assignments = parser.parse()
    problem = unused_line(assignments, parser.first_use)
    if problem is not None:
        raise ChainruleError(problem)
    return ParsedFormula(assignments, parser.first_use)


def unused_line(
    assignments: list[Assignment], first_use: Mapping[str, tuple[int, int]]
) -> str | None:
    """Why a line whose result no later line uses is a mistake, or None if every line but
    the last (the output) is used. Such a line is almost always a typo elsewhere: the
    misspelled name would silently become a parameter, and the line would be computed for
    nothing, so the message names the free name it was probably meant to be.

    >>> print(unused_line(parse("z = w * x\\ny = relu(z)").assignments, {}))
    None
    >>> text = "y1 = softplus(w1 * x)\\npredicted = w3 * y + b3"
    >>> parse(text)
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: formula line 1, column 1: y1 is computed on line 1 but \
never used; line 2 uses y, which no line computes: did you mean y1?
    """
    for i, assignment in enumerate(assignments[:-1]):
        name = assignment.name
        if any(name in later.uses for later in assignments[i + 1 :]):
            continue
        where = f"formula line {assignment.line}, column {assignment.column}"
        close = closest(name, free_names(assignments))
        if close is not None:
            line = first_use[close][0]
            return (
                f"{where}: {name} is computed on line {assignment.line} but never used; "
                f"line {line} uses {close}, which no line computes: did you mean {name}?"
            )
        output = assignments[-1].name
        return (
            f"{where}: {name} is computed on line {assignment.line} but no later line uses "
            f"it (the last line, {output}, is the output): use {name} or remove the line"
        )
    return None


def _syntax_error(e: SyntaxError, indent: int = 0) -> ChainruleError:
    """Python's syntax error, told with the formula's line, column and text."""
    line, column = e.lineno or 1, (e.offset or 1) + indent
    text = (e.text or "").strip()
    if len(text) > 60:  # a line of thousands of characters is not repeated whole
        text = text[:57] + "..."
    hint = ""
    if isinstance(e, IndentationError):
        hint = " (every line starts at the same margin)"
    message = e.msg
    if "Exceeds the limit" in message:  # Python's long advice on integer conversion
        message = "a number of more than 4300 digits"
    return ChainruleError(
        f"formula line {line}, column {column}: syntax error: {message}{hint}: {text!r}"
    )


def _unknown_function(name: str) -> str:
    close = closest(name, FUNCTIONS)
    if close is not None:
        return f"unknown function {name!r}: did you mean {close!r}? (known: {_KNOWN})"
    message = f"unknown function {name!r} (known: {_KNOWN})"
    if not name.startswith("_"):
        message += f"; to multiply, write {name} * (...)"
    return message


def free_names(assignments: list[Assignment]) -> tuple[str, ...]:
    """Names used but never assigned, in order of first appearance.

    >>> free_names(parse("z = w * x\\ny = z + b").assignments)
    ('w', 'x', 'b')
    """
    assigned = {a.name for a in assignments}
    used = (name for a in assignments for name in a.uses)
    return tuple(dict.fromkeys(name for name in used if name not in assigned))


# ---------------------------------------------------------------------------------------
# Building: intermediate form -> Tensors
# ---------------------------------------------------------------------------------------


def compile_expression(
    expr: Expr,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    constant: Callable[[float], Any] = Tensor,
) -> Callable[[Mapping[str, Any]], Any]:
    """``expr`` as a function of the named values that applies the engine's operators.

    The tree is walked once, when the formula is read, rather than at every call: each
    node becomes a small closure, and an operator or a function whose operands are names
    or numbers reads them directly (most of a formula is ``w1 * dosage + b1``). Numbers
    stay Python floats, except that an operator between two numbers still makes one
    value with ``constant`` (an engine op: its left side becomes a Tensor).

    ``functions`` maps each function name to what computes it: the engine's ops by
    default; the hand-over to PyTorch passes torch's, so that one compiler serves both.

    >>> compile_expression(Binary("*", Number(2.0), Name("x")))({"x": Tensor([1.0, 3.0])}).data
    array([2., 6.])
    """
    table = {name: f.apply for name, f in FUNCTIONS.items()} if functions is None else functions
    return _Compiler(table, constant).compile(expr)


class _Compiler:
    """Turns a formula's tree into closures over one table of functions."""

    def __init__(
        self, functions: Mapping[str, Callable[..., Any]], constant: Callable[[float], Any]
    ) -> None:
        self.functions, self.constant = functions, constant

    def compile(self, expr: Expr) -> Callable[[Mapping[str, Any]], Any]:
        if isinstance(expr, Number):
            value = expr.value
            return lambda env: value
        if isinstance(expr, Name):
            return operator.itemgetter(expr.name)
        if isinstance(expr, Negate):
            operand = self.compile(expr.operand)
            return lambda env: -operand(env)
        if isinstance(expr, Binary):
            return self.binary(_BINARY[expr.op], expr.left, expr.right)
        function = self.functions[expr.function]
        if len(expr.args) == 1:
            (arg,) = expr.args
            if isinstance(arg, Name):
                name = arg.name
                return lambda env: function(env[name])
            only = self.compile(arg)
            return lambda env: function(only(env))
        args = [self.compile(arg) for arg in expr.args]
        return lambda env: function(*[arg(env) for arg in args])

    def binary(
        self, apply: Callable[[Any, Any], Any], left: Expr, right: Expr
    ) -> Callable[[Mapping[str, Any]], Any]:
        """``left op right`` as a closure; names and numbers are read in place, not called."""
        if isinstance(left, Number) and isinstance(right, Number):
            a, b, constant = left.value, right.value, self.constant
            return lambda env: apply(constant(a), b)  # two numbers: still one op
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
            f, b = self.compile(left), right.name
            return lambda env: apply(f(env), env[b])
        if isinstance(left, Name):
            a, g = left.name, self.compile(right)
            return lambda env: apply(env[a], g(env))
        f, g = self.compile(left), self.compile(right)
        return lambda env: apply(f(env), g(env))
