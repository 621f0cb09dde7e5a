"""CSV numbers, names as Python reads them, and the files a scenario may read.

Each class is tried with the issue's examples and others of the same kind (hypothesis
over CSV cells and names), through the API and through the command line, where a user
meets one line ``chainrule: error: ...`` and exit status 2.
"""

from __future__ import annotations

import keyword
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chainrule import cli
from chainrule.datasets import csv_number, load_csv
from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.formula_lang import FUNCTIONS
from chainrule.nn import Linear
from chainrule.scenario import FileAccess, load_scenario, parse_scenario
from chainrule.text import normal_name


def cli_error(capsys, *argv: str) -> str:
    """The one line a command prints for a user's mistake (exit 2, no traceback)."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def write_csv(folder: Path, cell: str, name: str = "d.csv") -> Path:
    path = folder / name
    path.write_text(f"x,y\n1,2\n{cell},4\n3,6\n", encoding="utf-8")
    return path


# -- CSV numbers ----------------------------------------------------------------------

PLAIN = ["0", "-2.5", "+3", ".5", "5.", "1e3", "-1.5E-07", " 12 ", "\t7\t", "007"]
NOT_PLAIN = [
    "1_000",
    "1_0.5",
    "\u0661\u0662",  # Arabic-Indic 12
    "\u06f3",  # extended Arabic-Indic 3
    "\uff11\uff12",  # full-width 12
    "\u0967",  # Devanagari 1
    "1\u00a0",  # a no-break space
    "0x10",
    "1;5",
    "1.2.3",
    "1e",
    "e3",
    "--1",
    "\u2212" + "1",  # a minus sign that is not ASCII
    "½",
    "²",
    "1/2",
    "Infinity_",
]


@pytest.mark.parametrize("cell", PLAIN)
def test_plain_decimal_cells_are_read(tmp_path, cell):
    data = load_csv(write_csv(tmp_path, cell))
    assert data.inputs["x"][1] == float(cell)


@pytest.mark.parametrize("cell", NOT_PLAIN)
def test_cells_python_reads_but_a_csv_does_not_mean_are_refused(tmp_path, cell):
    with pytest.raises(ChainruleError, match=r"d\.csv: line 3, column 'x': .* is not a number"):
        load_csv(write_csv(tmp_path, cell))


@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity", "NaN"])
def test_nan_and_inf_read_but_refused_as_not_finite(tmp_path, cell):
    with pytest.raises(ChainruleError, match="line 3, column 'x': .* is not a finite number"):
        load_csv(write_csv(tmp_path, cell))


@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_as_python_writes_it_is_read_back_exactly(number):
    for text in (repr(number), f"{number:.17g}", f"{number:e}"):
        assert csv_number(text) == float(text)


@given(text=st.text(max_size=12))
def test_a_cell_is_a_number_only_in_plain_ascii_decimal_notation(text):
    found = csv_number(text)
    core = text.strip(" \t\r\n\f\v")
    if found is None:
        return
    assert core.isascii() and "_" not in core
    assert set(core.lower()) <= set("0123456789+-.e") | set("nanifty")
    assert found == float(core) or (np.isnan(found) and np.isnan(float(core)))


@given(
    digits=st.text(
        alphabet=st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii()),
        min_size=1,
        max_size=4,
    )
)
def test_digits_other_than_ascii_are_never_numbers(digits):
    assert csv_number(digits) is None


@given(whole=st.integers(1, 10**6), cut=st.integers(1, 5))
def test_underscores_between_digits_are_refused(whole, cut):
    text = str(whole)
    assume(len(text) > cut)
    assert csv_number(f"{text[:cut]}_{text[cut:]}") is None


def test_through_the_cli_a_bad_cell_is_one_line(tmp_path, capsys):
    write_csv(tmp_path, "1_000")
    scenario = tmp_path / "s.toml"
    scenario.write_text('[data]\ncsv = "d.csv"\n[model]\nformula = "p = w * x + b"\n')
    line = cli_error(capsys, "run", str(scenario))
    assert "line 3, column 'x': '1_000' is not a number" in line and "without '_'" in line


# -- names as Python reads them (NFKC) --------------------------------------------------


def test_normal_name_is_what_python_makes_of_an_identifier():
    namespace: dict[str, float] = {}
    exec("\u00b5 = 1.0", namespace)  # Python itself reads MICRO SIGN as GREEK MU
    assert normal_name("\u00b5") in namespace and "\u03bc" in namespace


NAMES = ["\u03b2", "\u00b5", "\u03bc", "\uff57", "x\u2081", "\u2168", "\u212b", "ﬁt", "Å", "ǅ"]


@pytest.mark.parametrize("written", NAMES)
def test_a_csv_column_matches_the_formula_however_it_is_written(tmp_path, written):
    formula_name = normal_name(written)
    # the CSV writes the name as given; the formula as its NFKC form (any form works there)
    (tmp_path / "d.csv").write_text(f"{written},y\n1,2\n2,4\n3,6\n", encoding="utf-8")
    (tmp_path / "s.toml").write_text(
        f'[data]\ncsv = "d.csv"\n[model]\nformula = "p = slope * {formula_name} + start"\n'
        "[parameters]\nslope = 0.5\nstart = 0.0\n"
        "[train]\nlearning_rate = 0.01\nstop = { max_steps = 3 }\n",
        encoding="utf-8",
    )
    scenario = load_scenario(tmp_path / "s.toml")
    assert scenario.data.input_names == (formula_name,)
    assert scenario.run().history.steps


identifiers = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=4
).filter(lambda s: s.isidentifier() and normal_name(s).isidentifier())


@settings(max_examples=40, deadline=None)
@given(name=identifiers)
def test_every_identifier_python_accepts_is_a_parameter_name(name):
    written = normal_name(name)
    assume(written not in ("p", "x") and written.isidentifier())
    assume(written not in FUNCTIONS)  # relu, exp, ...: a function a formula calls
    try:
        compile(f"{written} = 1", "<name>", "exec")
    except SyntaxError:
        assume(False)  # a keyword (if, for, ...) is not a name
    assume(not keyword.iskeyword(written) and not keyword.issoftkeyword(written))
    model = Formula(f"p = {written} * x", inputs=["x"], values={name: 2.0})
    assert model.scalar(name).value == 2.0
    assert model.scalar(written).value == 2.0
    assert model.scalar(unicodedata.normalize("NFD", written)).value == 2.0


def test_a_parameter_named_beta_works_in_every_command(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(
        '[data]\nx = [0.0, 1.0, 2.0]\ny = [1.0, 3.0, 5.0]\n[model]\nformula = "p = β * x + b"\n'
        '[parameters]\n"β" = 0.5\nb = 0.0\n[train]\noptimize = ["β"]\nlearning_rate = 0.01\n'
        "stop = { max_steps = 5 }\n",
        encoding="utf-8",
    )
    path = str(tmp_path / "s.toml")
    commands = [
        ["run", path, "--last", "1"],
        ["explain", path, "--param", "β"],
        ["scan", path, "--param", "β", "--from", "0", "--to", "2", "--num", "3"],
    ]
    for argv in commands:
        assert cli.main(argv) == 0, capsys.readouterr().err
        assert "β" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    out = tmp_path / "loss.svg"
    assert cli.main(["plot", path, "--kind", "loss-curve", "--param", "β", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_two_spellings_of_one_name_in_a_file_are_refused(tmp_path):
    with pytest.raises(ChainruleError, match="the keys '\u00b5' and '\u03bc' are the same name"):
        parse_scenario(
            '[data]\n"\u00b5" = [1.0]\n"\u03bc" = [2.0]\ny = [1.0]\n[model]\nlayers = [1]\n'
        )


def test_a_layer_model_is_addressed_by_a_normalised_name():
    model = Linear(2, 1)
    assert model.scalar("ｗｅｉｇｈｔ[1,0]").name == "weight[1,0]"
    with pytest.raises(ChainruleError, match="is not a parameter name"):
        model.scalar("weight[\u0661,0]")  # an Arabic-Indic index digit


# -- the files a scenario may read --------------------------------------------------------

OUTSIDE = [
    "/etc/passwd",
    "/proc/self/environ",
    "../secret.csv",
    "../../x.csv",
    "sub/../../secret.csv",
]


@pytest.mark.parametrize("csv", OUTSIDE)
def test_a_scenario_reads_no_file_outside_its_folder(tmp_path, capsys, csv):
    folder = tmp_path / "lesson"
    folder.mkdir()
    (tmp_path / "secret.csv").write_text("password,hunter2\n1,2\n")
    (folder / "s.toml").write_text(f'[data]\ncsv = "{csv}"\n[model]\nformula = "p = w * x"\n')
    line = cli_error(capsys, "run", str(folder / "s.toml"))
    assert "is outside the scenario's folder" in line and "--data-dir" in line
    assert "hunter2" not in line and "password" not in line and "root:" not in line


def test_a_link_out_of_the_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "lesson"
    folder.mkdir()
    (tmp_path / "secret.csv").write_text("password,hunter2\n1,2\n")
    (folder / "d.csv").symlink_to(tmp_path / "secret.csv")
    (folder / "s.toml").write_text('[data]\ncsv = "d.csv"\n[model]\nformula = "p = w * x"\n')
    line = cli_error(capsys, "run", str(folder / "s.toml"))
    assert "is outside the scenario's folder" in line and "hunter2" not in line


def test_data_dir_allows_a_folder_and_files_below_it_are_read(tmp_path, capsys):
    folder, data = tmp_path / "lesson", tmp_path / "data"
    folder.mkdir()
    data.mkdir()
    (data / "d.csv").write_text("x,y\n0,1\n1,3\n2,5\n")
    (folder / "s.toml").write_text(
        '[data]\ncsv = "../data/d.csv"\n[model]\nformula = "p = w * x + b"\n'
        "[parameters]\nw = 0.5\nb = 0.0\n[train]\nlearning_rate = 0.01\nstop = { max_steps = 3 }\n"
    )
    cli_error(capsys, "run", str(folder / "s.toml"))
    for command in (["run"], ["explain"], ["scan"]):
        extra = (
            ["--param", "w", "--from", "0", "--to", "1", "--num", "2"]
            if command == ["scan"]
            else []
        )
        extra = ["--param", "w"] if command == ["explain"] else extra
        argv = [*command, str(folder / "s.toml"), "--data-dir", str(data), *extra]
        assert cli.main(argv) == 0, capsys.readouterr().err
        capsys.readouterr()


def test_the_web_page_check_reads_no_file_at_all(tmp_path):
    (tmp_path / "d.csv").write_text("x,y\n0,1\n1,3\n")
    text = (
        '[data]\ncsv = "d.csv"\n[model]\nformula = "p = w * x + b"\n'
        "[parameters]\nw = 1.0\nb = 0.0\n"
    )
    with pytest.raises(ChainruleError, match="this scenario may not read files"):
        parse_scenario(text, path=tmp_path / "s.toml", files=FileAccess.nothing())
    assert parse_scenario(text, path=tmp_path / "s.toml").data.n == 2


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_before_it_is_read(tmp_path, capsys, special):
    (tmp_path / "s.toml").write_text(f'[data]\ncsv = "{special}"\n[model]\nformula = "p = w * x"\n')
    line = cli_error(capsys, "run", str(tmp_path / "s.toml"), "--data-dir", "/dev")
    assert "is not a regular file" in line


# -- memory and time bombs ----------------------------------------------------------------


@pytest.mark.parametrize("size", [(16000, 16000), (40000, 40000), (2, 10**9)])
def test_a_model_file_asking_for_a_huge_layer_is_refused_from_its_header(tmp_path, size):
    import json
    import tracemalloc

    import chainrule as cr
    from chainrule import nn

    path = tmp_path / "m.safetensors"
    cr.save(nn.Linear(2, 1), path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    config = json.loads(header["__metadata__"]["config"])
    config["in_features"], config["out_features"] = size
    header["__metadata__"]["config"] = json.dumps(config)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
    tracemalloc.start()
    try:
        with pytest.raises(ChainruleError, match="the file's config describes a model of"):
            cr.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # nothing of the layer's size was allocated


@pytest.mark.parametrize(
    ("dpi", "ok"), [("5000", False), ("601", False), ("5", False), ("600", True)]
)
def test_dpi_is_bounded(tmp_path, capsys, dpi, ok):
    pytest.importorskip("matplotlib")
    out = tmp_path / "a.png"
    argv = ["plot", "main-ideas", "--kind", "loss-curve", "--out", str(out), "--dpi", dpi]
    if ok:
        assert cli.main(argv) == 0
        capsys.readouterr()
    else:
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert (
            info.value.code == 2 and "expected 10 to 600 pixels per inch" in capsys.readouterr().err
        )


def test_scan_num_is_bounded(capsys):
    line = cli_error(
        capsys, "scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "1", "--num", "100000"
    )
    assert "scan at most 10,000 values" in line


def test_a_long_run_shows_its_ends_by_default(tmp_path, capsys):
    (tmp_path / "long.toml").write_text(
        '[data]\nx = [0.0, 1.0, 2.0]\ny = [1.0, 3.0, 5.0]\n[model]\nformula = "p = w * x + b"\n'
        "[parameters]\nw = 0.0\nb = 0.0\n"
        "[train]\nlearning_rate = 0.0001\nstop = { step_size = 1e-300, max_steps = 1500 }\n"
    )
    assert cli.main(["run", str(tmp_path / "long.toml")]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    steps = [int(r) for r in rows if r.isdigit()]
    assert steps[:3] == [1, 2, 3] and steps[-1] == 1500 and len(steps) == 2 * cli.LONG_RUN_ENDS
    assert "..." in rows
    assert cli.main(["run", str(tmp_path / "long.toml"), "--every", "100"]) == 0
    steps = [
        int(r.split()[0])
        for r in capsys.readouterr().out.splitlines()
        if r.split()[:1] and r.split()[0].isdigit()
    ]
    assert len(steps) == 16  # asked for: every 100th step and the last
