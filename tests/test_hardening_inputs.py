"""Bad input of every kind gets one ChainruleError naming the problem, never a traceback."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
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


def test_parsing_reads_the_text_once_not_once_per_line(monkeypatch):
    # Reading one line's source text from the whole formula (ast.get_source_segment per
    # line) made parsing quadratic: 4,000 lines took 27-48 s. The work is counted, not
    # timed: the text may be split into lines once, however many lines there are.
    import ast

    calls = []
    real = ast.get_source_segment
    monkeypatch.setattr(ast, "get_source_segment", lambda *a, **k: calls.append(1) or real(*a, **k))
    text = "\n".join(f"a{i} = w{i} * x + a{i - 1}" if i else "a0 = w * x" for i in range(2_000))
    model = Formula(text)
    assert len(model.assignments) == 2_000
    assert len(calls) == 0, f"get_source_segment called {len(calls)} times"


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
@example("noise", "4.765540848589749e+307")  # overflowed the points to -inf: noise is bounded
def test_dataset_options_of_the_wrong_kind(option, value):
    text = f'[data]\ndataset = "moons"\n{option} = {value}\n[model]\nlayers = [2, 1]\n'
    try:
        parse_scenario(text)
    except ChainruleError as exc:
        assert option in str(exc) and "\n" not in str(exc)


# -- model files and the API's paths ----------------------------------------------------------


def _model():
    return Formula("y = w * x", inputs=["x"])


@pytest.mark.parametrize("path", [None, 3, b"x", ""])
def test_save_and_load_say_what_a_path_is(path):
    from chainrule import io

    with pytest.raises(ChainruleError, match="expected a file path"):
        io.save(_model(), path)
    with pytest.raises(ChainruleError, match="expected a file path"):
        io.load(path)


def test_a_name_longer_than_the_system_allows(tmp_path):
    from chainrule import io

    with pytest.raises(ChainruleError, match="cannot write"):
        io.save(_model(), tmp_path / ("a" * 300))
    with pytest.raises(ChainruleError, match="cannot read the file"):
        io.load(tmp_path / ("a" * 300))


def test_non_regular_files_are_refused_at_once(tmp_path):
    import os

    from chainrule import io

    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    start = time.perf_counter()
    for path in (fifo, "/dev/zero"):
        with pytest.raises(ChainruleError, match="is not a regular file"):
            io.load(path)
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    "meta",
    [
        {"version": 1},
        {"version": "1", "config": "[" * 100_000 + "]" * 100_000},
        {"version": "99999999999999999999"},
        {"version": None},
    ],
)
def test_metadata_of_the_wrong_type(tmp_path, meta):
    import json

    from chainrule import io

    path = tmp_path / "m.safetensors"
    io.save(_model(), path)
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    header["__metadata__"].update(meta)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size :])
    with pytest.raises(ChainruleError, match="m.safetensors: the file's metadata is corrupted"):
        io.load(path)


def test_a_save_removes_what_interrupted_saves_left(tmp_path):
    import os

    from chainrule import io

    target = tmp_path / "m.safetensors"
    stale = tmp_path / ".m.safetensors.chainrule-partial-0123abcd.safetensors"
    fresh = tmp_path / ".m.safetensors.chainrule-partial-fedc.safetensors"
    other = tmp_path / ".n.safetensors.chainrule-partial-0123.safetensors"
    for leftover in (stale, fresh, other):
        leftover.write_bytes(b"x" * 100)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    io.save(_model(), target)
    assert not stale.exists() and fresh.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, fresh.name, other.name]
    )
