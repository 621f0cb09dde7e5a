"""Text that every layer writes alike: numbers, "did you mean", and shared sentences.

Training's messages, the explainer's tables and sentences, the symbolic derivatives and
the figures all show numbers; each kind of number is written by one function here, so
that the same number reads the same wherever it appears. A misspelt name gets its
suggestion from :func:`closest` (or :func:`did_you_mean`), and a sentence said by more
than one layer lives here too. This module imports nothing of chainrule's, so that any
layer may use it.

- :func:`decimals`: a fixed count of decimals, as in the ledger (``-15.6551``).
- :func:`significant`: a few significant digits, as in a message or a figure (``2.61``).
- :func:`parameter_value`: a parameter as StatQuest writes it (``3.34``, ``-2.30``).
- :func:`constant`: a number inside a formula (``2``, ``0.5``).
- :func:`normal_name`: a name as Python reads it (NFKC), for every name from outside.

None of them writes ``-0``; a number that is not finite reads ``nan``, ``inf`` or ``-inf``.

>>> decimals(-15.65510838), significant(-15.65510838), parameter_value(-2.3)
('-15.6551', '-15.7', '-2.30')
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Iterable, Sequence

#: Decimals in the explainer's tables and sentences (text, Markdown, LaTeX).
DIGITS = 4


def _not_finite(x: float) -> str | None:
    """``nan``, ``inf`` or ``-inf`` for a number that is not finite, else None."""
    if math.isfinite(x):
        return None
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def decimals(x: float, digits: int = DIGITS) -> str:
    """``x`` with ``digits`` decimals; powers of ten for tiny (< 1e-4) or huge (>= 1e6) sizes.

    Tables and derivations line up on the decimal point, and 0.0000642 does not print
    as 0.0001.

    >>> decimals(2.0), decimals(-0.00041038927), decimals(1e30), decimals(float("nan"))
    ('2.0000', '-0.0004', '1.000e+30', 'nan')
    >>> decimals(6.42138e-05), decimals(-0.0)
    ('6.421e-05', '0.0000')
    """
    x = float(x) + 0.0  # no "-0.0000"
    odd = _not_finite(x)
    if odd is not None:
        return odd
    size = abs(x)
    if size != 0 and (size < 10.0**-digits or size >= 1e6):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def significant(x: float, digits: int = 3, point: bool = False) -> str:
    """``x`` to ``digits`` significant digits, in powers of ten when tiny or huge.

    ``point=True`` keeps a decimal point on a whole number (``1.0``), for a value that
    the learner wrote as a decimal, such as a learning rate.

    >>> significant(2.6089111), significant(-15.6551083806, 4), significant(0.000123)
    ('2.61', '-15.66', '0.000123')
    >>> significant(3.1e12), significant(-0.0), significant(float("-inf"))
    ('3.1e+12', '0', '-inf')
    >>> significant(1.0, point=True), significant(0.1, point=True), significant(1e308, point=True)
    ('1.0', '0.1', '1e+308')
    """
    x = float(x) + 0.0  # no "-0"
    odd = _not_finite(x)
    if odd is not None:
        return odd
    text = f"{x:.{digits}g}"
    if point and not any(c in text for c in ".e"):
        return f"{text}.0"
    return text


def parameter_value(x: float) -> str:
    """A parameter's value as StatQuest writes it: two decimals, else 3 significant digits.

    >>> parameter_value(3.34), parameter_value(-2.3), parameter_value(0.000123)
    ('3.34', '-2.30', '0.000123')
    >>> parameter_value(0.0), parameter_value(12345.6)
    ('0.00', '1.23e+04')
    """
    x = float(x) + 0.0
    if x == 0 or 0.01 <= abs(x) < 1000:
        return f"{x:.2f}"
    return significant(x)


def constant(x: float) -> str:
    """A number inside a formula: a whole number without a point, else 6 significant digits.

    >>> constant(2.0), constant(-0.5), constant(1 / 3), constant(0.0)
    ('2', '-0.5', '0.333333', '0')
    """
    x = float(x) + 0.0
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return significant(x, 6)


# ---------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------


def normal_name(name: str) -> str:
    """A name as Python reads it: in Unicode's NFKC form, so names that look alike match.

    Python normalises every identifier it reads to NFKC (PEP 3131): a formula's ``µ``
    (MICRO SIGN, U+00B5) is the name ``μ`` (GREEK SMALL LETTER MU, U+03BC), and a
    full-width ``ｗ`` is ``w``. Every name that comes from outside (a formula, a CSV
    header, a scenario key, ``--param``, ``Module.scalar``) passes through here once, so
    a name the learner typed matches the name the engine holds.

    >>> normal_name("\u00b5") == "\u03bc", normal_name("\uff57\uff11"), normal_name("β")
    (True, 'w1', 'β')
    """
    return unicodedata.normalize("NFKC", name)


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice closest to ``word`` (a likely typo of it), or None if none is close;
    ``cutoff`` (0 to 1) is how alike they must be (lower: a looser "nearest").

    >>> closest("leraning_rate", ["learning_rate", "loss"]), closest("zzz", ["loss"])
    ('learning_rate', None)
    """
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` to end a message about ``word``, or ``""`` if none is close.

    >>> "unknown loss 'sr'" + did_you_mean("sr", ["ssr", "mse"])
    "unknown loss 'sr'; did you mean 'ssr'?"
    """
    found = closest(word, choices)
    return f"; did you mean {found!r}?" if found is not None else ""


# ---------------------------------------------------------------------------------------
# Sentences said by more than one layer
# ---------------------------------------------------------------------------------------


def loss_unreached(names: Sequence[str]) -> str:
    """Why training cannot start: the loss depends on none of the trained ``names``.

    >>> loss_unreached(["w1"])
    "the loss does not depend on any trained parameter (w1): the model's output does not \
use it, directly or through other values, so training cannot change the loss"
    >>> loss_unreached(["w1", "b1"]).split(": ")[1]
    "the model's output does not use them, directly or through other values, so training \
cannot change the loss"
    """
    them = "it" if len(names) == 1 else "them"
    return (
        f"the loss does not depend on any trained parameter ({', '.join(names)}): the "
        f"model's output does not use {them}, directly or through other values, so training "
        "cannot change the loss"
    )
