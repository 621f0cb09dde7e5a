"""Tables that fit the terminal: ``run``, ``explain`` and ``scan`` at 80 and 100 columns.

A table too wide for the width turns (the ledger: one row per step and parameter) or
leaves out columns from the right, and one line below it says what was left out and how
to ask for it; prose wraps. Every number shown is the run's: the tests compare the
fitted rendering with the JSON of the same command.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from seed import START

from chainrule import cli
from chainrule.explain.document import (
    Column,
    Fitted,
    Table,
    fit_table,
    render_document,
    table_width,
)
from chainrule.text import decimals

FORMATS = ["table", "text"]


def run_main(capsys, *args: str) -> str:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def longest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def header_of(text: str, first: str) -> list[str]:
    """The cells of the first line that starts with ``first`` (a table's header)."""
    for line in text.splitlines():
        if line.split()[:1] == [first]:
            return line.split("   ") if "   " in line else line.split()
    raise AssertionError(f"no header starting with {first!r} in:\n{text}")


def note_of(text: str) -> str:
    """The note below a fitted table (it may wrap onto several lines)."""
    lines = text.split("\n\n")
    notes = [" ".join(block.split()) for block in lines if block.lstrip().startswith("(")]
    assert len(notes) == 1, text
    return notes[0]


# ---------------------------------------------------------------------------------------
# run: the ledger turns
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("scenario", "width", "extra"),
    [("all-parameters", 100, ["--every", "300"]), ("three-parameters", 80, [])],
)
def test_run_fits_the_width_with_one_row_per_step_and_parameter(
    capsys, fmt, scenario, width, extra
):
    args = ["run", scenario, *extra]
    wide = run_main(capsys, *args, "--format", fmt, "--width", "0")
    assert longest(wide) > width  # the problem: the wide table wraps in such a terminal
    out = run_main(capsys, *args, "--format", fmt, "--width", str(width))
    assert longest(out) <= width
    note = note_of(out)
    assert f"one row per step and parameter, to fit {width} columns" in note
    assert "--width 0" in note and "--columns" in note
    # every parameter of every shown step is a row holding its own numbers
    run = json.loads(run_main(capsys, *args, "--format", "json"))
    if scenario == "all-parameters":
        assert run["trained"] == list(START)
    rows = [line.split() for line in out.splitlines()]
    for step in run["steps"]:
        for i, name in enumerate(run["trained"]):
            value, slope, size, new = (
                decimals(step[part][name])
                for part in ("values", "gradients", "step_sizes", "new_values")
            )
            # the step and its loss once, on the step's first row
            if i == 0:
                row = [str(step["step"]), name, value, decimals(step["loss"]), slope, size, new]
            else:
                row = [name, value, slope, size, new]
            assert row in rows, (row, out)


def test_run_width_comes_from_columns_and_a_file_keeps_every_column(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "80")
    out = run_main(capsys, "run", "three-parameters", "--every", "100")
    assert longest(out) <= 80 and "one row per step and parameter" in out
    path = tmp_path / "steps.txt"
    run_main(capsys, "run", "three-parameters", "--every", "100", "--out", str(path))
    written = path.read_text()
    assert "step size (b3)" in written and "one row per" not in written
    # markdown is for files and pages: never fitted
    markdown = run_main(capsys, "run", "three-parameters", "--every", "100", "--format", "markdown")
    assert "step size (b3)" in markdown and "one row per" not in markdown


def test_run_columns_asks_for_a_table_that_fits_as_it_is(capsys):
    out = run_main(capsys, "run", "three-parameters", "--columns", "b3", "--width", "80")
    assert longest(out) <= 80
    assert header_of(out, "step")[0].strip() == "step"
    assert "dSSR/db3" in out and "new b3" in out and "one row per" not in out


def test_a_single_parameter_run_is_unchanged_at_80_columns(capsys):
    wide = run_main(capsys, "run", "main-ideas", "--width", "0")
    narrow = run_main(capsys, "run", "main-ideas", "--width", "80")
    table = wide.split("stopped:")[0]
    assert narrow.startswith(table) and longest(table) <= 80 and "(" not in table
    # only the prose wraps: the same words
    assert longest(wide) > 80 >= longest(narrow) and narrow.split() == wide.split()


# ---------------------------------------------------------------------------------------
# explain and scan: columns left out, named, and brought back
# ---------------------------------------------------------------------------------------


def left_out_names(note: str) -> list[str]:
    listed = note.split("columns: ", 1)[1].split(";")[0]
    return [name.strip() for name in listed.split(", ")]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("width", [80, 100])
def test_explain_leaves_out_factors_names_them_and_width_0_brings_them_back(capsys, fmt, width):
    args = ["explain", "inside-the-black-box", "--param", "w1", "--format", fmt]
    if width == 100:
        args = ["explain", "moons", "--param", "hidden1.weight[0,0]", "--format", fmt]
    out = run_main(capsys, *args, "--width", str(width))
    assert longest(out) <= width
    rule = json.loads(run_main(capsys, *args[:4], "--format", "json"))
    factors = rule["paths"][0]
    note = note_of(out) if "inside" in args[1] else ""
    if note:
        missing = left_out_names(note)
        assert missing and set(missing) <= set(factors)
        assert "--width 0" in note
        shown = [f for f in factors if f not in missing]
        assert all(f in out for f in shown) and "product" in out
        full = run_main(capsys, *args, "--width", "0")
        assert all(f in full.split() for f in missing)
    else:  # many paths, each table fitted: every note says what it left out
        notes = [" ".join(b.split()) for b in out.split("\n\n") if b.lstrip().startswith("(")]
        # the table of data points lists the first 12 of 200 and says so; it fits whole
        assert notes[0] == "(12 of 200 data points shown)"
        assert len(notes) - 1 == len(rule["paths"])
        assert all("left out to fit 100 columns" in n for n in notes[1:])


@pytest.mark.parametrize("fmt", FORMATS)
def test_scan_grid_leaves_out_columns_and_csv_has_them_all(capsys, fmt):
    args = ["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4", "--num", "3"]
    args += ["--param2", "w3", "--from2", "-2", "--to2", "2", "--num2", "21", "--format", fmt]
    out = run_main(capsys, *args, "--width", "80")
    assert longest(out) <= 80
    note = note_of(out)
    assert "(21 columns)" not in note and "columns)" in note  # a long list is shortened
    assert "w3 = 2" in note and "--format csv" in note
    csv_header = run_main(capsys, *args[:-2], "--format", "csv").splitlines()[0].split(",")
    assert "w3 = 2" in csv_header and len(csv_header) == 22
    assert "w3 = 2" in run_main(capsys, *args, "--width", "0")


# ---------------------------------------------------------------------------------------
# The fitting itself
# ---------------------------------------------------------------------------------------


def test_fit_table_keeps_the_first_and_last_columns_and_every_row():
    columns = tuple(Column(f"column {k}", f"c{k}") for k in range(8))
    rows = tuple(tuple(float(k + 10 * r) for k in range(8)) for r in range(5))
    table = Table(columns, rows, keep_first=2, keep_last=1)
    fitted, what = fit_table(table, "text", 40)
    assert what is not None and not what.turned
    kept = [c.text for c in fitted.columns]
    assert kept[:2] == ["column 0", "column 1"] and kept[-1] == "column 7"
    assert [c for c in what.left_out] == [c.text for c in columns if c.text not in kept]
    assert len(fitted.rows) == len(rows)
    assert longest(render_document((fitted,), "text")) <= 40
    # narrower than the kept columns: nothing more to leave out, and it says so
    _, tight = fit_table(table, "text", 10)
    assert tight == Fitted(10, False, tuple(c.text for c in columns[2:7]))
    assert fit_table(table, "text", 1000) == (table, None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_width_of_a_table_is_the_width_it_renders_to(fmt):
    rng = np.random.default_rng(0)
    for k in range(1, 9):
        names = [f"c{'x' * int(rng.integers(0, 12))}{j}" for j in range(k)]
        values = rng.normal(size=(3, k)) * 10.0 ** rng.integers(-6, 6, size=(3, k))
        cells = [[float(v) for v in row] for row in values]
        cells[0][0] = "some words"
        table = Table(tuple(Column(n, n) for n in names), tuple(map(tuple, cells)), gap_before=1)
        assert table_width(table, fmt) == longest(render_document((table,), fmt))


@pytest.mark.parametrize(
    ("width", "said"), [("-3", "a whole number >= 0, got -3"), ("x", "a whole number, got 'x'")]
)
def test_a_bad_width_is_one_clear_error(capsys, width, said):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "main-ideas", "--width", width])
    assert info.value.code == 2
    assert f"argument --width: expected {said}" in capsys.readouterr().err
