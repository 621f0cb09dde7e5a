"""Bad input of every kind gets one ChainruleError naming the problem, never a traceback."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.formula_lang import MAX_DEPTH
from chainrule.scenario import parse_scenario

# -- formula texts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, problem",
    [
        ("y = " + "9" * 309, "column 5: this number is too large"),
        ("y = -" + "9" * 400 + " * x", "this number is too large"),
        ("y = 1e999 * x", "this number is too large"),
        ("y = " + "9" * 5000, "a number of more than 4300 digits"),
        ("y = " + " + ".join(f"x{i}" for i in range(600)), f"more than {MAX_DEPTH} operations"),
        ("y = " + " * ".join(["x"] * 999), f"more than {MAX_DEPTH} operations"),
        ("y = " + "-" * 10_000 + "x", "nests too deeply"),
        ("y = " + "(" * 300 + "x" + ")" * 300, "too many nested parentheses"),
        ("y = " + "softplus(" * 150 + "-" * 60 + "x" + ")" * 150, f"more than {MAX_DEPTH} op"),
    ],
)
def test_formula_texts_that_once_gave_tracebacks(text, problem):
    with pytest.raises(ChainruleError, match=problem) as info:
        Formula(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_long_chain_within_the_bound_works():
    terms = [f"x{i}" for i in range(MAX_DEPTH)]
    model = Formula("y = " + " + ".join(terms), inputs=terms)
    assert float(model({name: [1.0] for name in terms}).data[0]) == MAX_DEPTH


_PIECES = st.sampled_from(
    [
        "x",
        "w",
        "1",
        "9" * 320,
        "1e999",
        "+",
        "-",
        "*",
        "/",
        "**",
        "(",
        ")",
        "softplus(",
        "log(",
        ",",
        " ",
        "\n",
        "=",
        "y",
        "-" * 50,
        "[",
        "'",
        "#",
        "\\",
        "lambda",
        "\x00",
        ".real",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_any_formula_text_is_a_model_or_one_chainrule_error(body):
    try:
        Formula("y = " + body)
    except ChainruleError as exc:
        assert str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("lines", [1_000, 4_000])
def test_parsing_is_linear_in_the_number_of_lines(lines):
    def text(n):
        return "\n".join(f"a{i} = w{i} * x + a{i - 1}" if i else "a0 = w * x" for i in range(n))

    start = time.perf_counter()
    Formula(text(lines // 4))
    quarter = time.perf_counter() - start
    start = time.perf_counter()
    Formula(text(lines))
    whole = time.perf_counter() - start
    assert whole < 10 * quarter + 0.5  # quadratic would be 16x


# -- scenario files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["x = " + "[" * 5000 + "]" * 5000, "x = " + "{a=" * 3000 + "1" + "}" * 3000],
)
def test_toml_nested_thousands_deep(text):
    with pytest.raises(ChainruleError, match="values nest too deeply"):
        parse_scenario(text)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["seed", "n", "noise"]),
    st.one_of(
        st.integers(-(10**6), -1).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(
            lambda v: "nan" if v != v else ("inf" if v == float("inf") else repr(v))
        ),
        st.sampled_from(['"1"', "true", "[1]", "{a = 1}", "-inf"]),
    ),
)
def test_dataset_options_of_the_wrong_kind(option, value):
    text = f'[data]\ndataset = "moons"\n{option} = {value}\n[model]\nlayers = [2, 1]\n'
    try:
        parse_scenario(text)
    except ChainruleError as exc:
        assert option in str(exc) and "\n" not in str(exc)
