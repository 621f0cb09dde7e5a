"""The explainer's small symbolic tree: reading the op table's formulas, tidying, printing."""

from __future__ import annotations

import pytest

from chainrule.explain import symbolic as s
from chainrule.ops import OPS

x1, observed, predicted = s.Sym("x1"), s.Sym("observed"), s.Sym("predicted")


def test_the_seed_formulas_read_like_statquest():
    residual = s.fill(OPS["sub"].expr, a=observed, b=predicted)
    square = s.fill(OPS["pow"].formulas[0], a=residual, b=s.Num(2))
    slope = s.mul(s.fill(OPS["sum"].formulas[0]), square, s.fill(OPS["sub"].formulas[1]))
    assert s.text(slope) == "-2 (observed - predicted)"
    assert s.text(s.fill(OPS["softplus"].formulas[0], x=x1)) == "e^x1 / (1 + e^x1)"
    weight_slope = s.mul(
        s.fill(OPS["add"].formulas[0]), s.fill(OPS["mul"].formulas[0], b=s.Sym("dosage"))
    )
    assert s.text(weight_slope) == "dosage"


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (s.mul(s.Num(1), s.Sym("w3")), "w3"),
        (s.mul(s.Num(2), s.Num(-1), s.Sym("a")), "-2 a"),
        (s.mul(s.Num(-1), s.neg(s.Sym("a"))), "a"),
        (s.add(s.Sym("a"), s.Num(0)), "a"),
        (s.add(s.Num(2), s.Num(-1)), "1"),
        (s.power(x1, s.add(s.Num(2), s.Num(-1))), "x1"),
        (s.power(x1, s.Num(0)), "1"),
        (s.power(s.Num(2), s.Num(3)), "8"),
        (s.div(s.Num(0), x1), "0"),
        (s.div(x1, s.Num(1)), "x1"),
        (s.mul(s.div(s.Num(1), s.Sym("n")), s.Num(-2), s.Sym("r")), "-2 r / n"),
        (s.add(s.Sym("a"), s.mul(s.Num(-3), s.Sym("b"))), "a - 3 b"),
        (s.add(s.Sym("a"), s.neg(s.add(s.Sym("b"), s.Sym("c")))), "a - (b + c)"),
        (s.power(s.add(s.Sym("a"), s.Sym("b")), s.Num(2)), "(a + b)^2"),
        (s.power(s.Sym("e"), s.add(s.Sym("a"), s.Sym("b"))), "e^(a + b)"),
        (s.neg(s.div(s.Sym("a"), s.power(s.Sym("b"), s.Num(2)))), "-a / b^2"),
        (s.call("abs", s.Sym("a")), "|a|"),
    ],
)
def test_constructors_simplify_lightly(built, expected):
    assert s.text(built) == expected


def test_every_elementwise_rule_of_the_op_table_is_read_or_kept_as_words():
    for op in OPS.values():
        for formula in op.formulas:
            tree = s.template(formula)
            holes = {key: s.Sym(key.upper()) for key in ("a", "b", "x", "p", "out")}
            text = s.text(s.substitute(tree, holes))
            assert "{" not in text, (op.name, formula, text)
            worded = any(word in formula.split() for word in ("if", "where"))
            if op.elementwise and not worded:
                assert not isinstance(tree, s.Phrase), (op.name, formula)


def test_words_keep_their_filled_places():
    relu = s.fill(OPS["relu"].formulas[0], x=s.Sym("hidden.z[1]"))
    assert isinstance(relu, s.Phrase)
    assert s.text(relu) == "1 if hidden.z[1] > 0 else 0"
    assert s.text(s.mul(relu, s.Sym("w"))) == "(1 if hidden.z[1] > 0 else 0) w"
    assert s.latex(relu) == r"\text{1 if }\mathrm{hidden.z}_1\text{ \textgreater{} 0 else 0}"


def test_latex_printing():
    sigmoid = s.fill(OPS["softplus"].formulas[0], x=x1)
    assert s.latex(sigmoid) == r"\frac{e^{x_1}}{1 + e^{x_1}}"
    slope = s.mul(s.Num(-2), s.add(observed, s.neg(predicted)))
    assert s.latex(slope) == r"-2 \, \left(\mathrm{observed} - \mathrm{predicted}\right)"
    assert s.latex(s.call("sqrt", x1)) == r"\sqrt{x_1}"
    assert s.latex(s.call("ln", x1)) == r"\ln\left(x_1\right)"
