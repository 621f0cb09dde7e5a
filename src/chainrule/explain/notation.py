"""The learner's notation: names, derivative labels and numbers, as text and as LaTeX.

One place decides how a name is written, so that a ledger's header, a chain-rule factor
and a scan's column all read the same: ``b3`` is ``b_3`` in LaTeX and ``dSSR/db3`` is
``\\frac{d\\,\\mathrm{SSR}}{d\\,b_3}``. Numbers show :data:`~chainrule.text.DIGITS`
decimals, written by :func:`chainrule.text.decimals` (tiny and huge ones switch to
powers of ten).

>>> latex_name("b3"), latex_name("hidden.weight[0,1]")
('b_3', '\\\\mathrm{hidden.weight}_{0,1}')
>>> derivative("SSR", "b3"), latex_number(6.42138e-05)
('dSSR/db3', '6.421 \\\\times 10^{-5}')
"""

from __future__ import annotations

import math
import re

import numpy as np

from chainrule.losses import LOSSES
from chainrule.text import DIGITS, decimals

_NAME = re.compile(
    r"^(?P<base>[A-Za-z](?:[\w.]*[A-Za-z_.])?)(?P<digits>\d*)(?:\[(?P<index>[\d,\s]*)\])?$"
)
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def escape_latex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, for use outside math.

    >>> escape_latex("w_out & 50%")
    'w\\\\_out \\\\& 50\\\\%'
    """
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def latex_name(name: str) -> str:
    """A name in LaTeX math: trailing digits and ``[i,j]`` indices become subscripts.

    One-letter names stay italic (``w1`` -> ``w_1``); longer ones are upright
    (``SSR`` -> ``\\mathrm{SSR}``, ``hidden.a[1]`` -> ``\\mathrm{hidden.a}_{1}``).

    >>> latex_name("w1"), latex_name("b12"), latex_name("SSR")
    ('w_1', 'b_{12}', '\\\\mathrm{SSR}')
    """
    match = _NAME.match(name)
    if match is None:
        return rf"\mathrm{{{escape_latex(name)}}}"
    base, digits, index = match["base"], match["digits"], match["index"]
    text = base if len(base) == 1 else rf"\mathrm{{{escape_latex(base)}}}"
    sub = ",".join(part for part in (digits, (index or "").replace(" ", "")) if part)
    if not sub:
        return text
    return f"{text}_{sub}" if len(sub) == 1 else f"{text}_{{{sub}}}"


def derivative(numerator: str, denominator: str) -> str:
    """``dSSR/db3``: the plain-text label of a derivative."""
    return f"d{numerator}/d{denominator}"


def latex_derivative(numerator: str, denominator: str) -> str:
    """``\\frac{d\\,\\mathrm{SSR}}{d\\,b_3}``: the LaTeX label of a derivative."""
    return rf"\frac{{d\,{latex_name(numerator)}}}{{d\,{latex_name(denominator)}}}"


def latex_number(x: float, digits: int = DIGITS) -> str:
    """A number as LaTeX math (:func:`~chainrule.text.decimals`): ``6.421 \\times 10^{-5}``
    rather than ``6.421e-05``.

    >>> latex_number(-1.5), latex_number(6.42138e-05)
    ('-1.5000', '6.421 \\\\times 10^{-5}')
    """
    text = decimals(x, digits)
    if "e" not in text or not math.isfinite(float(x)):
        return {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}.get(text, text)
    mantissa, exponent = text.split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def full(x: float | int) -> float | int | None:
    """``x`` at full precision for CSV and JSON (None for a number that is not finite)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def loss_display_name(name: str) -> str:
    """A loss as the learner reads it (``"ssr"`` -> ``"SSR"``), from its record; a loss of
    the user's own is read by its own name.

    >>> loss_display_name("ssr"), loss_display_name("binary_cross_entropy")
    ('SSR', 'BCE')
    >>> loss_display_name("half_ssr")
    'half_ssr'
    """
    spec = LOSSES.get(name)
    return name if spec is None else spec.display
