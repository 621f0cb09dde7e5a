"""Text shared by every layer: the number formats."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule.text import (
    closest,
    constant,
    decimals,
    did_you_mean,
    loss_unreached,
    parameter_value,
    significant,
)

finite = st.floats(min_value=-1e300, max_value=1e300)  # rounding up stays finite


@given(finite)
def test_decimals_read_back_within_half_a_unit_of_the_last_digit(x):
    text = decimals(x)
    back = float(text)
    if x != 0 and (abs(x) < 1e-4 or abs(x) >= 1e6):
        assert "e" in text and back == pytest.approx(x, rel=0.5e-3)
    else:
        assert text.split(".")[1].isdigit() and len(text.split(".")[1]) == 4
        assert abs(back - x) <= 0.5e-4 * (1 + 1e-9)


@given(finite, st.integers(1, 8))
def test_significant_keeps_that_many_digits(x, digits):
    back = float(significant(x, digits))
    assert back == pytest.approx(x, rel=0.5 * 10.0 ** (1 - digits) * (1 + 1e-9), abs=0)


@pytest.mark.parametrize("write", [decimals, significant, parameter_value, constant])
def test_no_format_writes_minus_zero_and_each_names_what_is_not_a_number(write):
    assert not write(-0.0).startswith("-")
    assert not write(-1e-300 * 1e-300).startswith("-")  # -0.0 reached by underflow
    assert write(math.nan) == "nan"
    assert (write(math.inf), write(-math.inf)) == ("inf", "-inf")


def test_a_learning_rate_keeps_its_decimal_point():
    assert [significant(x, point=True) for x in (1.0, 10.0, 0.1, 3e-5, 1e308)] == [
        "1.0",
        "10.0",
        "0.1",
        "3e-05",
        "1e+308",
    ]
    assert significant(1.0) == "1"


def test_parameter_values_read_as_statquest_writes_them():
    values = [3.34, -2.3, 0.0, 0.01, 999.994, 0.009, 1234.5]
    assert [parameter_value(v) for v in values] == [
        "3.34",
        "-2.30",
        "0.00",
        "0.01",
        "999.99",
        "0.009",
        "1.23e+03",
    ]


def test_constants_in_a_formula_are_whole_numbers_or_six_digits():
    assert [constant(v) for v in (2.0, -3.0, 1e14, 0.5, 1 / 3, 1e15)] == [
        "2",
        "-3",
        "100000000000000",
        "0.5",
        "0.333333",
        "1e+15",
    ]


def test_the_closest_name_is_suggested_and_a_far_one_is_not():
    assert closest("sofplus", ("softplus", "sigmoid", "relu")) == "softplus"
    assert closest("xyz", ("softplus", "sigmoid")) is None
    assert closest("w1", {"w1": 0, "w2": 1}) == "w1"  # a dict offers its keys
    assert did_you_mean("leraning_rate", ["learning_rate", "loss"]) == (
        "; did you mean 'learning_rate'?"
    )
    assert did_you_mean("xyz", ["learning_rate"]) == ""


def test_a_loss_that_no_trained_parameter_reaches_is_one_sentence_in_number():
    one, two = loss_unreached(["w1"]), loss_unreached(["w1", "b1"])
    assert one.startswith("the loss does not depend on any trained parameter (w1): ")
    assert "does not use it," in one and "does not use them," in two and "(w1, b1)" in two
    assert one.endswith("so training cannot change the loss")
