"""A tiny symbolic tree, so that derivative formulas read like StatQuest writes them.

The op table (:mod:`chainrule.ops`) holds each local derivative as short text with
placeholders, e.g. ``{b} {a}^({b} - 1)`` for a power's base. :func:`template` reads such a
text into a tree (numbers, names, sums, products, quotients, powers, calls), :func:`fill`
puts sub-expressions into the placeholders, and the constructors :func:`add`, :func:`mul`,
:func:`div`, :func:`power` and :func:`neg` simplify lightly as they build: numbers are
folded, ``1 x`` and ``+ 0`` disappear, ``x^(2 - 1)`` becomes ``x``, signs move to the front.
This is not a computer algebra system: it only tidies what the chain rule multiplies.

Text the small grammar cannot read (``1 if {x} > 0 else 0``) is kept as a :class:`Phrase`,
with the placeholders still filled in.

>>> square = fill("{b} {a}^({b} - 1)", a=add(Sym("observed"), neg(Sym("predicted"))), b=Num(2))
>>> text(mul(Num(1), square, Num(-1)))
'-2 (observed - predicted)'
>>> text(fill("e^{x} / (1 + e^{x})", x=Sym("x1")))
'e^x1 / (1 + e^x1)'
>>> latex(fill("e^{x} / (1 + e^{x})", x=Sym("x1")))
'\\\\frac{e^{x_1}}{1 + e^{x_1}}'
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.explain.notation import escape_latex, latex_name
from chainrule.ops import OPS
from chainrule.text import constant

# Binding strength, weakest first: how tightly each kind of expression holds together.
_PHRASE, _ADD, _MUL, _POW, _ATOM = range(5)


class Expr:
    """A node of a formula. Build with the constructors below, not the classes."""

    __slots__ = ()

    @property
    def precedence(self) -> int:
        return _ATOM


@dataclass(frozen=True, slots=True)
class Num(Expr):
    """A number (kept as a float)."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))

    @property
    def precedence(self) -> int:
        return _ATOM if self.value >= 0 else _MUL


@dataclass(frozen=True, slots=True)
class Sym(Expr):
    """A name: a node of the graph (``x1``, ``observed``) or a symbol (``e``, ``n``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Hole(Expr):
    """A placeholder of the op table's text (``{a}``), filled by :func:`fill`."""

    key: str


@dataclass(frozen=True, slots=True)
class Add(Expr):
    terms: tuple[Expr, ...]

    @property
    def precedence(self) -> int:
        return _ADD


@dataclass(frozen=True, slots=True)
class Mul(Expr):
    """A product; a numeric coefficient, if any, comes first."""

    factors: tuple[Expr, ...]

    @property
    def precedence(self) -> int:
        return _MUL


@dataclass(frozen=True, slots=True)
class Div(Expr):
    num: Expr
    den: Expr

    @property
    def precedence(self) -> int:
        return _MUL


@dataclass(frozen=True, slots=True)
class Pow(Expr):
    base: Expr
    exponent: Expr

    @property
    def precedence(self) -> int:
        return _POW


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    operand: Expr

    @property
    def precedence(self) -> int:
        return _MUL


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """``function(args)``; ``abs`` prints as ``|x|``."""

    function: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Phrase(Expr):
    """Words with expressions in between, for text the grammar does not read."""

    parts: tuple[str | Expr, ...]

    @property
    def precedence(self) -> int:
        return _PHRASE


# ---------------------------------------------------------------------------------------
# Constructors that simplify
# ---------------------------------------------------------------------------------------

ZERO, ONE = Num(0.0), Num(1.0)


def _is_num(e: Expr, value: float | None = None) -> bool:
    return isinstance(e, Num) and (value is None or e.value == value)


def add(*terms: Expr) -> Expr:
    """``a + b + ...``: nested sums flattened, numbers summed (in the first number's place),
    equal terms counted.

    >>> text(add(Num(2), Sym("x"), Num(-2))), text(add(Sym("w"), Num(1), Sym("w")))
    ('x', '2 w + 1')
    """
    flat: list[Expr] = []
    constant, where = 0.0, None
    queue = list(terms)
    while queue:
        t = queue.pop(0)
        if isinstance(t, Add):
            queue[0:0] = t.terms
        elif isinstance(t, Num):
            constant += t.value
            where = len(flat) if where is None else where
        else:
            flat.append(t)
    counts: dict[Expr, int] = {}
    for t in flat:  # equal terms are counted once: w + w is 2 w
        counts[t] = counts.get(t, 0) + 1
    flat = [t if k == 1 else mul(Num(k), t) for t, k in counts.items()]
    if constant != 0 and where is not None:
        flat.insert(min(where, len(flat)), Num(constant))
    if not flat:
        return ZERO
    return flat[0] if len(flat) == 1 else Add(tuple(flat))


def neg(e: Expr) -> Expr:
    """``-e``, with the sign folded into a number or a product's coefficient."""
    if isinstance(e, Num):
        return Num(-e.value + 0.0)
    if isinstance(e, Neg):
        return e.operand
    if isinstance(e, Mul) and isinstance(e.factors[0], Num):
        return mul(Num(-e.factors[0].value), *e.factors[1:])
    return Neg(e)


def mul(*factors: Expr) -> Expr:
    """``a b ...``: numbers multiplied into one leading coefficient; quotients gathered.

    >>> text(mul(Num(1), Sym("w3"), Num(1))), text(mul(Num(-2), neg(Sym("x")), Sym("y")))
    ('w3', '2 x y')
    """
    coefficient, rest = 1.0, []
    queue = list(factors)
    while queue:
        f = queue.pop(0)
        if isinstance(f, Num):
            coefficient *= f.value
        elif isinstance(f, Neg):
            coefficient, queue[0:0] = -coefficient, [f.operand]
        elif isinstance(f, Mul):
            queue[0:0] = f.factors
        else:
            rest.append(f)
    if coefficient == 0:
        return ZERO
    if any(isinstance(f, Div) for f in rest):
        nums = [f.num if isinstance(f, Div) else f for f in rest]
        dens = [f.den for f in rest if isinstance(f, Div)]
        return div(mul(Num(coefficient), *nums), mul(*dens))
    if not rest:
        return Num(coefficient)
    body = rest[0] if len(rest) == 1 else Mul(tuple(rest))
    if coefficient == 1:
        return body
    if coefficient == -1:
        return Neg(body)
    return Mul((Num(coefficient), *rest))


def div(num: Expr, den: Expr) -> Expr:
    """``num / den``, one fraction bar, the sign in front.

    >>> text(div(Num(-1), Sym("n"))), text(div(Num(6), Num(3)))
    ('-1 / n', '2')
    """
    if isinstance(num, Div):
        return div(num.num, mul(num.den, den))
    if isinstance(den, Div):
        return div(mul(num, den.den), den.num)
    if _is_num(den, 1.0) or _is_num(num, 0.0):
        return num
    if _is_num(den, -1.0):
        return neg(num)
    if isinstance(num, Num) and isinstance(den, Num) and den.value != 0:
        if (num.value / den.value).is_integer():
            return Num(num.value / den.value)
    if isinstance(den, Neg) or (isinstance(den, Num) and den.value < 0):
        return neg(div(num, neg(den)))
    if isinstance(num, Neg) or (isinstance(num, Mul) and _negative_coefficient(num)):
        if not isinstance(num, Num):
            return Neg(div(neg(num), den))
    return Div(num, den)


def power(base: Expr, exponent: Expr) -> Expr:
    """``base^exponent``; numeric exponents 0 and 1 vanish, numbers are evaluated.

    >>> text(power(Sym("x"), add(Num(2), Num(-1)))), text(power(Num(3), Num(2)))
    ('x', '9')
    """
    if _is_num(exponent, 1.0):
        return base
    if _is_num(exponent, 0.0) or _is_num(base, 1.0):
        return ONE
    if isinstance(base, Num) and isinstance(exponent, Num):
        if base.value > 0 or exponent.value.is_integer():
            with_value = base.value**exponent.value
            if math.isfinite(with_value):
                return Num(with_value)
    return Pow(base, exponent)


def call(function: str, *args: Expr) -> Expr:
    """``function(args)``."""
    return Call(function, tuple(args))


def _negative_coefficient(e: Mul) -> bool:
    first = e.factors[0]
    return isinstance(first, Num) and first.value < 0


# ---------------------------------------------------------------------------------------
# Reading the op table's text
# ---------------------------------------------------------------------------------------

#: Functions the op table's text may call (its ops, ``ln`` and ``sign``), and the names it
#: may use as symbols.
_FUNCTIONS = frozenset(OPS) | {"ln", "sign"}
_SYMBOLS = frozenset({"e", "n", "T", "ddof"})
_TOKEN = re.compile(r"\s*(?:\{(\w+)\}|(\d+(?:\.\d+)?)|([A-Za-z_]\w*)|(\S))")


class _Unreadable(Exception):
    """The text is outside the small grammar: it is kept as a Phrase."""


class _Reader:
    """Recursive descent over: sums, products (juxtaposition or ``/``), ``-``, ``^``, calls."""

    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        for hole, number, name, other in _TOKEN.findall(source):
            if hole:
                self.tokens.append(("hole", hole))
            elif number:
                self.tokens.append(("number", number))
            elif name:
                self.tokens.append(("name", name))
            elif other:
                self.tokens.append(("op", other))
        self.i = 0
        self.in_bars = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _Unreadable
        self.i += 1
        return token

    def expect(self, op: str) -> None:
        if self.take() != ("op", op):
            raise _Unreadable

    def at(self, op: str) -> bool:
        return self.peek() == ("op", op)

    def starts_factor(self) -> bool:
        token = self.peek()
        if token is None:
            return False
        kind, value = token
        return kind != "op" or value == "(" or (value == "|" and not self.in_bars)

    def read(self) -> Expr:
        e = self.sum()
        if self.peek() is not None:
            raise _Unreadable
        return e

    def sum(self) -> Expr:
        terms = [neg(self.product()) if self.at("-") and self.take() else self.product()]
        while self.at("+") or self.at("-"):
            sign = self.take()[1]
            term = self.product()
            terms.append(term if sign == "+" else neg(term))
        return add(*terms)

    def product(self) -> Expr:
        e = self.unary()
        while True:
            if self.at("/"):
                self.take()
                e = div(e, self.unary())
            elif self.starts_factor():
                e = mul(e, self.power())
            else:
                return e

    def unary(self) -> Expr:
        if self.at("-"):
            self.take()
            return neg(self.unary())
        return self.power()

    def power(self) -> Expr:
        base = self.atom()
        if not self.at("^"):
            return base
        self.take()
        if self.at("-"):
            self.take()
            return power(base, neg(self.atom()))
        return power(base, self.atom())

    def atom(self) -> Expr:
        kind, value = self.take()
        if kind == "hole":
            return Hole(value)
        if kind == "number":
            return Num(float(value))
        if kind == "name":
            if value in _FUNCTIONS and self.at("("):
                self.take()
                args = [self.sum()]
                while self.at(","):
                    self.take()
                    args.append(self.sum())
                self.expect(")")
                return call(value, *args)
            if value in ("ln", "log") and self.starts_factor():
                return call("ln", self.power())
            if value in _SYMBOLS:
                return Sym(value)
            raise _Unreadable
        if value == "(":
            e = self.sum()
            self.expect(")")
            return e
        if value == "|" and not self.in_bars:
            self.in_bars += 1
            e = self.sum()
            self.expect("|")
            self.in_bars -= 1
            return call("abs", e)
        raise _Unreadable


@functools.cache
def template(source: str) -> Expr:
    """The op table's text as a tree with :class:`Hole` placeholders.

    >>> template("{b} {a}^({b} - 1)")
    Mul(factors=(Hole(key='b'), Pow(base=Hole(key='a'), exponent=Add(terms=(Hole(key='b'), Num(value=-1.0))))))
    >>> template("1 if {x} > 0 else 0")
    Phrase(parts=('1 if ', Hole(key='x'), ' > 0 else 0'))
    """  # noqa: E501 (a repr)
    try:
        return _Reader(source).read()
    except _Unreadable:
        pieces = re.split(r"\{(\w+)\}", source)
        parts = [Hole(p) if i % 2 else p for i, p in enumerate(pieces) if p]
        return Phrase(tuple(parts))


def substitute(e: Expr, values: dict[str, Expr]) -> Expr:
    """``e`` with every :class:`Hole` replaced by ``values[key]``, simplified again."""
    if isinstance(e, Hole):
        return values[e.key]
    if isinstance(e, Add):
        return add(*(substitute(t, values) for t in e.terms))
    if isinstance(e, Mul):
        return mul(*(substitute(f, values) for f in e.factors))
    if isinstance(e, Div):
        return div(substitute(e.num, values), substitute(e.den, values))
    if isinstance(e, Pow):
        return power(substitute(e.base, values), substitute(e.exponent, values))
    if isinstance(e, Neg):
        return neg(substitute(e.operand, values))
    if isinstance(e, Call):
        return call(e.function, *(substitute(a, values) for a in e.args))
    if isinstance(e, Phrase):
        return Phrase(tuple(p if isinstance(p, str) else substitute(p, values) for p in e.parts))
    return e


def fill(source: str, **values: Expr) -> Expr:
    """The op table's ``source`` text with its placeholders filled (see :func:`template`)."""
    return substitute(template(source), values)


# ---------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------


def _positive_form(e: Expr) -> Expr | None:
    """``p`` when ``e`` reads as ``-p`` (so a sum can print ``a - p``), else None."""
    if isinstance(e, Neg):
        return e.operand
    if isinstance(e, Num) and e.value < 0:
        return Num(-e.value)
    if isinstance(e, Mul) and _negative_coefficient(e):
        return neg(e)
    return None


class _Printer:
    """Prints a tree as plain text (``latex=False``) or as LaTeX math."""

    def __init__(self, latex: bool) -> None:
        self.latex = latex

    def wrap(self, e: Expr, needed: int) -> str:
        s = self(e)
        if e.precedence >= needed:
            return s
        return rf"\left({s}\right)" if self.latex else f"({s})"

    def __call__(self, e: Expr) -> str:
        latex = self.latex
        if isinstance(e, Num):
            return constant(e.value)
        if isinstance(e, Sym):
            return latex_name(e.name) if latex else e.name
        if isinstance(e, Hole):
            return f"{{{e.key}}}"
        if isinstance(e, Add):
            out = self.wrap(e.terms[0], _ADD)
            for t in e.terms[1:]:
                positive = _positive_form(t)
                if positive is not None:
                    out += " - " + self.wrap(positive, _MUL)
                else:
                    out += " + " + self.wrap(t, _MUL)
            return out
        if isinstance(e, Mul):
            parts = []
            for i, f in enumerate(e.factors):
                first_number = i == 0 and isinstance(f, Num)
                parts.append(self(f) if first_number else self.wrap(f, _POW))
            return (r" \, " if latex else " ").join(parts)
        if isinstance(e, Div):
            if latex:
                return rf"\frac{{{self(e.num)}}}{{{self(e.den)}}}"
            return f"{self.wrap(e.num, _MUL)} / {self.wrap(e.den, _POW)}"
        if isinstance(e, Pow):
            base = self.wrap(e.base, _ATOM)
            if latex:
                return f"{base}^{{{self(e.exponent)}}}"
            return f"{base}^{self.wrap(e.exponent, _ATOM)}"
        if isinstance(e, Neg):
            return "-" + self.wrap(e.operand, _MUL)
        if isinstance(e, Call):
            return self.call(e)
        assert isinstance(e, Phrase)
        parts = []
        for p in e.parts:
            if isinstance(p, str):
                parts.append(rf"\text{{{escape_latex(p)}}}" if latex else p)
            else:
                parts.append(self.wrap(p, _POW))
        return "".join(parts)

    def call(self, e: Call) -> str:
        args = ", ".join(self(a) for a in e.args)
        if e.function == "abs":
            return rf"\left|{args}\right|" if self.latex else f"|{args}|"
        if not self.latex:
            return f"{e.function}({args})"
        if e.function == "sqrt":
            return rf"\sqrt{{{args}}}"
        name = {"ln": r"\ln", "log": r"\ln", "exp": r"\exp", "tanh": r"\tanh"}.get(
            e.function, rf"\operatorname{{{escape_latex(e.function)}}}"
        )
        return rf"{name}\left({args}\right)"


def text(e: Expr) -> str:
    """``e`` as plain text, e.g. ``-2 (observed - predicted)``."""
    return _Printer(latex=False)(e)


def latex(e: Expr) -> str:
    """``e`` as LaTeX math, e.g. ``-2 \\, \\left(\\mathrm{observed} - ...\\right)``."""
    return _Printer(latex=True)(e)


# ---------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------


class Unevaluable(ValueError):
    """The expression holds words (a :class:`Phrase`) or a name without a value."""


def evaluate(e: Expr, values: dict[str, Any]) -> Any:
    """The value of ``e``, elementwise over ndarrays: holes and names from ``values``.

    Calls run the op table's forwards (``ln`` is ``log``; ``sign`` is numpy's), so the
    printed derivative of an op can be checked numerically against its backward rule. No
    text is ever ``eval``-ed: only the tree that :func:`template` read is walked.

    >>> evaluate(template("e^{x} / (1 + e^{x})"), {"x": np.array([0.0])})
    array([0.5])
    """
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Hole):
        if e.key not in values:
            raise Unevaluable(f"no value for the placeholder {{{e.key}}}")
        return values[e.key]
    if isinstance(e, Sym):
        if e.name in values:
            return values[e.name]
        if e.name == "e":
            return math.e
        raise Unevaluable(f"no value for the name {e.name!r}")
    if isinstance(e, Add):
        total = evaluate(e.terms[0], values)
        for t in e.terms[1:]:
            total = total + evaluate(t, values)
        return total
    if isinstance(e, Mul):
        product = evaluate(e.factors[0], values)
        for f in e.factors[1:]:
            product = product * evaluate(f, values)
        return product
    if isinstance(e, Div):
        return evaluate(e.num, values) / evaluate(e.den, values)
    if isinstance(e, Pow):
        return np.power(evaluate(e.base, values), evaluate(e.exponent, values))
    if isinstance(e, Neg):
        return -evaluate(e.operand, values)
    if isinstance(e, Call):
        args = [np.asarray(evaluate(a, values), dtype=np.float64) for a in e.args]
        if e.function == "sign":
            return np.sign(*args)
        return OPS["log" if e.function == "ln" else e.function].forward(*args)
    raise Unevaluable(f"words cannot be evaluated: {text(e)!r}")
