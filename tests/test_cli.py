"""Tests for the ``chainrule`` command line.

A few tests run the real command in a subprocess (``python -m chainrule``: the exit
code, stdout, stderr and piped stdin as a user sees them); the rest call
:func:`chainrule.cli.main` in-process, which is the same code and much faster.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from seed import FITTED, MAIN_IDEAS, SCAN

from chainrule import cli
from chainrule.scenario import TEMPLATE, builtin_scenarios

BAD = Path(__file__).parent / "bad_scenarios"

COMMANDS = [
    "demo",
    "run",
    "explain",
    "scan",
    "predict",
    "plot",
    "scenarios",
    "quiz",
    "new",
    "export",
]


def chainrule(*args: str, stdin: str | None = None, cwd: Path | None = None):
    """Run ``python -m chainrule ARGS`` as a user would; return the completed process."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


# ---------------------------------------------------------------------------------------
# Subprocess tests: the command as a user runs it
# ---------------------------------------------------------------------------------------


def test_run_main_ideas_json_is_the_seed():
    done = chainrule("run", "main-ideas", "--format", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["trained"] == ["b3"]
    assert run["loss_name"] == "ssr" and run["schema_version"] == 2
    assert len(run["steps"]) == len(MAIN_IDEAS)
    for record, (step, b3, ssr, slope, size, new) in zip(run["steps"], MAIN_IDEAS, strict=True):
        assert record["step"] == step
        assert record["values"]["b3"] == pytest.approx(b3, abs=1e-9)
        assert record["loss"] == pytest.approx(ssr, abs=1e-9)
        assert record["gradients"]["b3"] == pytest.approx(slope, abs=1e-9)
        assert record["step_sizes"]["b3"] == pytest.approx(size, abs=1e-9)
        assert record["new_values"]["b3"] == pytest.approx(new, abs=1e-9)
    assert run["stop_reason"] == "step_size"
    final = run["final"]
    assert final["values"]["b3"] == pytest.approx(2.6089111372, abs=1e-9)
    assert final["values"]["w1"] == FITTED["w1"]
    assert len(final["predictions"]) == 3


def test_a_user_error_is_one_line_and_exit_2_and_debug_shows_the_traceback():
    bad = str(BAD / "unknown-train-key.toml")
    done = chainrule("run", bad)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"chainrule: error: {bad}:28: [train] learning_rat:")
    assert "did you mean 'learning_rate'?" in lines[0]

    debug = chainrule("run", bad, "--debug")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "ChainruleError" in debug.stderr


def test_demo_tells_the_seed_story(tmp_path):
    done = chainrule("demo", cwd=tmp_path)  # no arguments, as in the README
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())  # the table's spacing depends on the terminal
    # 1. the brute-force SSR curve, lowest near 2.5
    assert "b3 SSR lowest" in out
    assert "0.0000 20.4236 0.5000" in out and "2.5000 0.0358 yes 3.0000" in out
    # 2. the ledger to b3 = 2.61, with StatQuest's closing line
    assert "1 0.0000 20.4236 -15.6551 -1.5655 1.5655" in out
    assert "10 2.6085 6.421e-05 -0.0041 -0.0004 2.6089" in out
    assert "b3 = 2.61 after 10 steps" in out
    # 3. the chain rule for b3 at the first step
    assert "dSSR/db3 = dSSR/dpredicted x dpredicted/db3" in out
    assert "the engine's gradient: -15.6551" in out
    assert out.index("0.0358 yes") < out.index("after 10 steps") < out.index("engine's gradient")
    assert "The run converged: b3 = 2.61 after 10 steps" in out


def test_demo_json_is_one_document(tmp_path):
    done = chainrule("demo", "--format", "json", "--out", str(tmp_path / "figures"))
    assert done.returncode == 0, done.stderr
    story = json.loads(done.stdout)  # one object: nothing else on stdout
    assert list(story) == ["schema_version", "scan", "run", "chain_rule"]
    assert story["scan"]["best"] == {"value": 2.5, "loss": pytest.approx(SCAN[5], abs=1e-6)}
    assert len(story["run"]["steps"]) == len(MAIN_IDEAS)
    assert story["run"]["diagnosis"]["kind"] == "converged"
    assert story["chain_rule"]["gradient"] == pytest.approx(-15.6551083806, abs=1e-9)
    assert all(line.startswith("wrote ") for line in done.stderr.splitlines())


def test_quiz_with_piped_answers_right_and_wrong():
    answers = "-15.66\n-1.5\nnot sure\n1.57\n-6\n"
    done = chainrule("quiz", "main-ideas", stdin=answers)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # what the first slope is worked out from: each point's observed, predicted, residual
    assert (
        "Step 1: the data points before it\n\n"
        "dosage  observed  predicted  residual\n"
        "------  --------  ---------  --------\n"
        "0.0000    0.0000    -2.6037    2.6037\n"
        "0.5000    1.0000    -1.6090    2.6090\n"
        "1.0000    0.0000    -2.6149    2.6149\n"
    ) in out
    assert "What is the slope dSSR/db3 at b3 = 0.0000? -15.66\nRight: dSSR/db3 is -15.6551." in out
    assert "step size of b3? -1.5\nNot quite: the step size of b3 is -1.5655" in out
    assert "not sure\nPlease type a number" in out  # asked again, not counted
    assert "what is the new b3? 1.57\nRight: the new b3 is 1.5655." in out
    assert "Step 2: the data points before it" in out
    assert "0.5000    1.0000    -0.0435    1.0435" in out  # b3 = 1.5655 now
    # A wrong slope shows the chain rule worked out at step 2 (b3 = 1.5655).
    assert "Not quite: dSSR/db3 is -6.2620, not -6." in out
    assert "the engine's gradient: -6.2620" in out
    # The input ran out during step 2: the quiz ends cleanly with the score.
    assert out.rstrip().endswith("2 of 4 right.")
    assert done.stderr == ""


def test_quiz_forward_asks_the_forward_pass_and_names_a_wrong_sign():
    done = chainrule("quiz", "main-ideas", "--forward", stdin="0.24\n0.82\n-1.195\n0.26\n1.61\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  predicted = w3 * y1 + w4 * y2 + b3\n" in out  # the formula, to work from
    assert "w1 = 3.34 and b1 = -1.43: x1 = w1 * dosage + b1. What is x1? 0.24\nRight" in out
    assert (
        "What is predicted? 1.61\nRight size, wrong sign: predicted at dosage = 0.5 is -1.6090."
        in out
    )
    assert out.rstrip().endswith("4 of 5 right.")
    assert done.stderr == ""


def test_quiz_names_known_slips_in_a_subprocess():
    done = chainrule("quiz", "main-ideas", "--steps", "1", stdin="-7.83\n-15.66\n-1.57\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "? -7.83\nYou left out the factor 2 of the squared residual's slope: " in out
    assert "? -15.66\nThat is the slope; the step size is slope x learning rate" in out
    assert "? -1.57\nThat adds the step size; the new b3 = old b3 - step size" in out
    assert "the engine's gradient" not in out  # a named slip needs no worked chain rule
    assert out.rstrip().endswith("0 of 3 right.")


def test_quiz_forward_point_out_of_range_is_one_line(capsys):
    code, out, err = run_main(capsys, "quiz", "main-ideas", "--forward", "--point", "4")
    assert (code, out) == (2, "")
    assert err == "chainrule: error: quiz: the data point must be between 1 and 3, got 4\n"
    code, out, err = run_main(capsys, "quiz", "main-ideas", "--point", "2")
    assert (code, out) == (2, "")
    assert err == "chainrule: error: --point chooses the data point of --forward: add --forward\n"


def test_explain_in_a_subprocess():
    done = chainrule("explain", "main-ideas", "--param", "w1", "--format", "text")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "At the starting values: w1 = 3.3400"
    assert "dSSR/dw1 = dSSR/dpredicted x dpredicted/dy1 x dy1/dx1 x dx1/dw1" in lines
    assert "dy1/dx1 = e^x1 / (1 + e^x1)" in lines
    assert lines[-1] == "the engine's gradient: 7.3389"
    assert done.stderr == ""


def test_scan_in_a_subprocess():
    args = ["--param", "b3", "--from", "-1e-1", "--to", "4", "--num", "3", "--format", "csv"]
    done = chainrule("scan", "main-ideas", *args)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["b3", "SSR", "lowest"]
    assert [float(row[0]) for row in rows[1:]] == pytest.approx([-0.1, 1.95, 4.0])
    assert [row[2] for row in rows[1:]] == ["", "yes", ""]
    done = chainrule(
        "scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "1", "--num", "1"
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "chainrule: error: --num: scan at least 2 values, got 1\n"


def test_scenarios_in_a_subprocess():
    done = chainrule("scenarios")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split(None, 1) == [
        "main-ideas",
        "Backpropagation main ideas: estimate b3",
    ]
    assert "run one with: chainrule run NAME" in done.stdout


def test_new_in_a_subprocess_writes_a_file_that_runs(tmp_path):
    done = chainrule("new", "class.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote class.toml: edit it, then run: chainrule run class.toml\n"
    assert (tmp_path / "class.toml").read_text() == TEMPLATE
    again = chainrule("new", "class.toml", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr == (
        "chainrule: error: class.toml: already exists; use --force to overwrite it\n"
    )


# ---------------------------------------------------------------------------------------
# In-process tests: the same main(), faster
# ---------------------------------------------------------------------------------------


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_has_an_example(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: chainrule {command}" in out
    assert "example:" in out and "chainrule " in out.split("example:")[1]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_argument_mistakes_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "main-ideas", "--format", "pdf"])
    assert info.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(path.name for path in BAD.glob("*.toml")))
def test_every_bad_scenario_exits_2_with_one_line(capsys, name):
    path = str(BAD / name)
    code, out, err = run_main(capsys, "run", path)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"chainrule: error: {path}")


def test_missing_file_and_unknown_name(capsys):
    code, _, err = run_main(capsys, "run", "no/such/file.toml")
    assert (code, err) == (2, "chainrule: error: no/such/file.toml: no such file\n")
    code, _, err = run_main(capsys, "run", "main-idea")
    assert code == 2 and "did you mean 'main-ideas'?" in err


def test_scenarios_lists_the_builtins(capsys):
    code, out, _ = run_main(capsys, "scenarios")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()[:5]]
    assert names == ["main-ideas", "three-parameters", "all-parameters", "circles", "moons"]
    code, out, _ = run_main(capsys, "scenarios", "--long")
    assert "StatQuest" in out


def test_new_writes_a_template_that_runs_and_refuses_to_overwrite(capsys, tmp_path):
    path = tmp_path / "class.toml"
    code, out, _ = run_main(capsys, "new", str(path))
    assert code == 0 and f"wrote {path}" in out
    assert path.read_text() == TEMPLATE
    code, out, _ = run_main(capsys, "run", str(path), "--format", "json")
    assert code == 0
    assert json.loads(out)["stop_reason"] == "step_size"

    path.write_text("mine")
    code, _, err = run_main(capsys, "new", str(path))
    assert code == 2 and "already exists; use --force" in err
    assert path.read_text() == "mine"
    code, _, _ = run_main(capsys, "new", str(path), "--force")
    assert code == 0 and path.read_text() == TEMPLATE


def test_the_templates_words_on_starting_values_and_activations_hold(capsys, tmp_path):
    # a parameter left out is an error; init = "random" draws it; every activation and
    # formula function that the template lists is one chainrule knows
    from chainrule.formula_lang import FUNCTIONS
    from chainrule.nn import ACTIVATIONS

    left_out = TEMPLATE.replace("w1 = 3.34\n", "")
    path = tmp_path / "class.toml"
    path.write_text(left_out)
    code, _, err = run_main(capsys, "run", str(path))
    assert code == 2 and "no starting value for w1" in err
    path.write_text(left_out.replace("b1 = -1.43", 'init = "random"\nb1 = -1.43'))
    code, _, _ = run_main(capsys, "run", str(path))
    assert code == 0
    listed = TEMPLATE.split('activation = "tanh"      # ')[1].split("\n")[0].split(", ")
    assert set(listed) == set(ACTIVATIONS)
    functions = TEMPLATE.split("Functions: ")[1].split(".\n")[0].replace("\n#", "")
    assert {f.strip() for f in functions.split(",")} <= set(FUNCTIONS)


def test_out_writes_the_same_text_atomically(capsys, tmp_path, monkeypatch):
    import chainrule.io

    written = []
    real = chainrule.io.atomic_write

    def spy(path, data):
        written.append(Path(path))
        return real(path, data)

    monkeypatch.setattr(cli, "atomic_write", spy)
    code, shown, _ = run_main(capsys, "run", "main-ideas", "--format", "json")
    out = tmp_path / "run.json"
    code, printed, err = run_main(
        capsys, "run", "main-ideas", "--format", "json", "--out", str(out)
    )
    assert code == 0 and printed == ""
    assert f"wrote {out}" in err
    assert written == [out]
    assert out.read_text() == shown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary left

    missing = str(tmp_path / "no" / "x.json")
    code, _, err = run_main(capsys, "run", "main-ideas", "--format", "json", "--out", missing)
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize("fmt", ["table", "text", "markdown", "latex", "csv"])
def test_run_renders_every_format(capsys, fmt):
    code, out, _ = run_main(capsys, "run", "main-ideas", "--format", fmt, "--every", "3")
    assert code == 0
    assert "1.5655" in out or "1.565510838" in out
    assert "2.6089" in out or "2.608911137" in out


def test_run_every_and_columns_shape_the_json(capsys):
    code, out, _ = run_main(
        capsys, "run", "three-parameters", "--format", "json", "--every", "300", "--columns", "b3"
    )
    assert code == 0
    run = json.loads(out)
    assert [s["step"] for s in run["steps"]] == [1, 301, 601, 724]
    assert all(list(s["gradients"]) == ["b3"] for s in run["steps"])
    code, _, err = run_main(capsys, "run", "main-ideas", "--columns", "w1")
    assert code == 2 and "'w1' was not trained" in err


def main_ideas_with(tmp_path: Path, **train: object) -> str:
    """The main-ideas scenario with other [train] settings, as a file in ``tmp_path``."""
    (info,) = [info for info in builtin_scenarios() if info.name == "main-ideas"]
    text = info.path.read_text()
    for key, value in train.items():
        lines = [line for line in text.splitlines() if line.startswith(f"{key} = ")]
        assert len(lines) == 1, key
        text = text.replace(lines[0], f"{key} = {value}")
    path = tmp_path / "run.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("learning_rate", "kind", "words"),
    [
        (0.1, "converged", ["The run converged: b3 = 2.61 after 10 steps", "by 0.4"]),
        (
            0.001,
            "crawling",
            [
                "The run stopped early: b3 = 2.44 after 459 steps",
                "still 0.1648 from the best b3 (2.6092)",
            ],
        ),
        (
            0.3,
            "converged",
            ["It oscillated on the way: the slope of b3 changed sign at every step"],
        ),
        (
            0.4,
            "diverged",
            [
                "The run diverged: the loss grew from 20.4 to 3.46e+11 in 35 steps: the learning "
                "rate 0.4 is too large for this loss; try --set train.learning_rate=0.04",
                "by -1.4 (= 1 - 2 x 3 x 0.4)",
            ],
        ),
    ],
)
def test_run_shows_the_diagnosis_after_the_ledger(capsys, tmp_path, learning_rate, kind, words):
    path = main_ideas_with(tmp_path, learning_rate=learning_rate)
    code, out, _ = run_main(capsys, "run", path, "--format", "text")
    assert code == 0
    stopped, diagnosis = out.rstrip().split("\n\n")[-2:]
    assert stopped.splitlines()[-1].startswith("stopped: ")
    for said in words:
        assert said in diagnosis
    code, out, _ = run_main(capsys, "run", path, "--format", "json")
    run = json.loads(out)
    assert list(run) == [
        "schema_version",
        "trained",
        "loss_name",
        "loss_label",
        "steps",
        "stop_reason",
        "final",
        "diagnosis",
    ]
    assert run["diagnosis"]["kind"] == kind
    assert run["diagnosis"]["message"] == diagnosis
    if learning_rate == 0.4:  # stopped once the loss was 1e10 times the first and growing
        assert run["stop_reason"] == "diverged" and len(run["steps"]) == 35
        assert run["final"]["loss"] == run["steps"][-1]["loss"]  # the last step is undone


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["run", "all-parameters", "--every", "400"], ["step size (b3)", "2.7400", "3.3293"]),
        (["run", "circles", "--every", "100"], ["dBCE/doutput.bias[0]", "new output.bias[0]"]),
        (
            ["explain", "circles", "--param", "hidden.weight[0,1]"],
            ["dhidden.z[1]/dhidden.weight[0,1]", "-8.166e-06"],
        ),
    ],
)
def test_the_default_table_format_shows_every_cell_whole(capsys, args, shown):
    code, out, _ = run_main(capsys, *args)  # the default format: a rich table
    assert code == 0
    assert "\u2026" not in out  # no cell cut short with an ellipsis
    words = out.split()
    for text in shown:
        assert text in out
        assert all(word in words for word in text.split())


def test_run_first_and_last_keep_the_ends_of_a_long_run(capsys):
    args = ["run", "all-parameters", "--columns", "b3", "--first", "2", "--last", "1"]
    code, out, _ = run_main(capsys, *args, "--format", "json")
    assert code == 0
    assert [s["step"] for s in json.loads(out)["steps"]] == [1, 2, 1354]
    code, out, _ = run_main(capsys, *args, "--format", "text")
    rows = [line.split() for line in out.splitlines()[2:6]]
    assert [row[0] for row in rows] == ["1", "2", "...", "1354"]
    code, out, _ = run_main(capsys, *args, "--every", "100", "--format", "json")
    assert [s["step"] for s in json.loads(out)["steps"]] == [1, 101, 1354]
    code, out, _ = run_main(capsys, "run", "main-ideas", "--last", "3", "--format", "csv")
    assert [line.split(",")[0] for line in out.splitlines()] == ["step", "8", "9", "10"]
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "main-ideas", "--first", "0"])
    assert info.value.code == 2
    assert "--first: expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_run_a_classifier_reports_accuracy(capsys):
    code, out, _ = run_main(capsys, "run", "moons", "--format", "text", "--every", "100")
    assert code == 0
    assert "accuracy on the data: 98.5%" in out


def test_explain_at_the_start_and_before_a_step(capsys):
    code, out, _ = run_main(capsys, "explain", "main-ideas", "--param", "b3", "--format", "json")
    assert code == 0
    rule = json.loads(out)
    assert rule["parameter"] == "b3"
    assert rule["gradient"] == pytest.approx(-15.6551083806, abs=1e-9)
    assert rule["paths"] == [["dSSR/dpredicted", "dpredicted/db3"]]
    assert len(rule["points"]) == 3

    code, out, _ = run_main(capsys, "explain", "main-ideas", "--param", "b3", "--step", "2")
    assert code == 0
    assert out.startswith("Before step 2: b3 = 1.5655")
    assert "-6.2620" in out

    code, out, _ = run_main(capsys, "explain", "main-ideas", "--param", "w1", "--format", "text")
    assert "dSSR/dw1 = dSSR/dpredicted x dpredicted/dy1 x dy1/dx1 x dx1/dw1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "main-ideas", "--param", "b4"], "--param 'b4': the model has no such"),
        (["explain", "main-ideas", "--param", "b3", "--step", "11"], "the run took 10 steps"),
        (["scan", "main-ideas", "--param", "b3", "--from", "1", "--to", "1"], "more than one"),
        (
            ["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "1", "--from2", "0"],
            "--param2",
        ),
        (["quiz", "moons"], "kept no per-step values (more than 50 trained values or 1000"),
    ],
)
def test_command_mistakes_exit_2(capsys, args, message):
    code, _, err = run_main(capsys, *args)
    assert code == 2
    assert err.startswith("chainrule: error: ") and message in err


def formula_scenario(tmp_path: Path, formula: str, train: str = "") -> str:
    """A scenario file of the seed's data with ``formula`` as its model."""
    path = tmp_path / "model.toml"
    path.write_text(
        "[data]\ndosage = [0.0, 0.5, 1.0]\nobserved = [0.0, 1.0, 0.0]\n"
        f'[model]\nformula = """\n{formula}\n"""\n[parameters]\ninit = "random"\n'
        f"[train]\n{train}\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("formula", "where"),
    [
        (
            "predicted = 1 / 0 * dosage + b",
            "formula line 1 (predicted = 1 / 0 * dosage + b) is NaN (not a number) at data "
            "point 1 (dosage = 0), so the loss SSR is NaN (not a number)",
        ),
        (
            "x1 = log(dosage - 0.75)\npredicted = w * x1 + b",
            "formula line 1 (x1 = log(dosage - 0.75)) is NaN (not a number) at data point 1 "
            "(dosage = 0), so the loss SSR is NaN (not a number)",
        ),
        (
            "x1 = 1 / (dosage - 0.5)\npredicted = 0 * x1 + b",
            "formula line 1 (x1 = 1 / (dosage - 0.5)) is infinite at data point 2 (dosage = 0.5), "
            "so the loss SSR is NaN (not a number)",
        ),
    ],
)
def test_a_loss_that_is_not_a_number_at_the_start_exits_2_naming_where(
    capsys, tmp_path, formula, where
):
    path = formula_scenario(tmp_path, formula)
    for args in (["run"], ["quiz"], ["explain", "--param", "b", "--step", "1"]):
        code, out, err = run_main(capsys, args[0], path, *args[1:])
        assert (code, out) == (2, "")
        assert err == f"chainrule: error: {path}: training cannot start: {where}\n"


def test_no_step_to_show_says_why(capsys, tmp_path):
    path = formula_scenario(tmp_path, "predicted = 0 * dosage + b", "stop = { loss = 10 }")
    code, out, _ = run_main(capsys, "run", path, "--format", "json")
    assert code == 0 and json.loads(out)["steps"] == []
    code, _, err = run_main(capsys, "quiz", path)
    assert code == 2
    assert "the run stopped before its first step (b = 0 after 0 steps: the loss" in err
    assert "no step for a quiz" in err and "too large" not in err
    code, _, err = run_main(capsys, "explain", path, "--param", "b", "--step", "1")
    assert code == 2 and "no step for --step 1" in err


def test_a_line_that_the_output_does_not_use_is_refused_before_training(capsys, tmp_path):
    path = formula_scenario(tmp_path, "x1 = w1 * dosage\npredicted = 2 * dosage")
    said = (
        f"chainrule: error: {path}:6: [model] formula: formula line 1, column 1: x1 is "
        "computed on line 1 but no later line uses it (the last line, predicted, is the "
        "output): use x1 or remove the line\n"
    )
    for args in (["run"], ["plot", "--kind", "loss-curve", "--out", str(tmp_path / "c.png")]):
        assert run_main(capsys, args[0], path, *args[1:]) == (2, "", said)


def test_scan_marks_the_lowest_point_in_a_named_column(capsys):
    b3 = ["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4", "--num", "3"]
    code, out, _ = run_main(capsys, *b3, "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["b3", "SSR", "lowest"]
    assert [row[2] for row in rows[1:]] == ["", "yes", ""]
    assert [float(row[0]) for row in rows[1:]] == [0.0, 2.0, 4.0]
    code, out, _ = run_main(capsys, *b3, "--format", "markdown")
    assert out.startswith("| b3 | SSR | lowest |\n")
    code, out, _ = run_main(capsys, *b3, "--format", "latex")
    assert r"$b_3$ & $\mathrm{SSR}$ & lowest \\" in out
    assert "$1.1134$ & yes" in out


def test_negative_numbers_in_scientific_notation_are_option_values(capsys):
    args = ["scan", "main-ideas", "--param", "b3", "--from", "-1e-3", "--to", "1E-3"]
    code, out, err = run_main(capsys, *args, "--num", "3", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["values"] == [-0.001, 0.0, 0.001]
    grid = ["--param2", "w3", "--from2", "-2.5e0", "--to2", "-.5e1", "--num2", "2"]
    code, out, err = run_main(capsys, *args, "--num", "2", *grid, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["values2"] == [-2.5, -5.0]
    with pytest.raises(SystemExit) as info:  # a negative count is refused by its own check
        cli.main(["run", "main-ideas", "--every", "-1e3"])
    assert info.value.code == 2
    assert "--every: expected a whole number, got '-1e3'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        (["--num", "100000000"], "--num: scan at most 10,000 values, got 100,000,000"),
        (
            ["--num", "1000", "--param2", "w3", "--from2", "0", "--to2", "1", "--num2", "1000"],
            "--num 1000 x --num2 1000 is 1,000,000 grid points; scan at most 10,000",
        ),
    ],
)
def test_a_scan_too_large_is_refused(capsys, sizes, message):
    code, out, err = run_main(
        capsys, "scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "1", *sizes
    )
    assert (code, out) == (2, "")
    assert err == f"chainrule: error: {message}\n"


def test_scan_one_and_two_parameters(capsys):
    b3_from_0_to_4 = ["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4"]
    code, out, _ = run_main(capsys, *b3_from_0_to_4, "--num", "9", "--format", "json")
    assert code == 0
    curve = json.loads(out)
    assert curve["parameter"] == "b3"
    assert curve["values"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert curve["losses"] == pytest.approx(SCAN, abs=1e-6)

    w3_from_minus_2_to_0 = ["--param2", "w3", "--from2", "-2", "--to2", "0", "--num2", "2"]
    code, out, _ = run_main(
        capsys, *b3_from_0_to_4, "--num", "3", *w3_from_minus_2_to_0, "--format", "json"
    )
    grid = json.loads(out)
    assert grid["parameter2"] == "w3" and len(grid["losses"]) == 3 and len(grid["losses"][0]) == 2


# -- experiments without file edits: --set, and saving what was trained ------------------


def test_set_overrides_any_key_with_the_files_checks(capsys):
    code, out, _ = run_main(
        capsys, "run", "main-ideas", "--format", "json",
        "--set", "train.learning_rate=0.05", "--set", "parameters.b3=1",
    )  # fmt: skip
    assert code == 0
    steps = json.loads(out)["steps"]
    assert steps[0]["values"]["b3"] == 1.0
    # slope at b3 = 1 is 6 * 1 - 15.6551083806 (the seed's dSSR/db3); step = slope * 0.05
    assert steps[0]["gradients"]["b3"] == pytest.approx(6 - 15.6551083806, abs=1e-9)
    assert steps[0]["step_sizes"]["b3"] == pytest.approx((6 - 15.6551083806) * 0.05, abs=1e-9)
    code, _, err = run_main(capsys, "explain", "main-ideas", "--param", "b3", "--set", "train.lr=0")
    assert (code, err) == (
        2,
        "chainrule: error: main-ideas.toml: --set train.lr=0: [train] lr: expected a number "
        "greater than 0, got 0\n",
    )
    code, _, err = run_main(capsys, "quiz", "main-ideas", "--set", "train.lerning_rate=0.3")
    assert code == 2 and "--set train.lerning_rate=0.3: [train] lerning_rate: unknown key" in err
    assert "did you mean 'learning_rate'?" in err
    scan = ["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "1"]
    code, _, err = run_main(capsys, *scan, "--set", "oops")
    assert (code, err) == (
        2,
        "chainrule: error: --set oops: expected KEY=VALUE, e.g. --set train.learning_rate=0.3\n",
    )


def test_run_saves_the_trained_model(capsys, tmp_path):
    from chainrule.io import load

    path = tmp_path / "model.safetensors"
    code, _, _ = run_main(capsys, "run", "main-ideas", "--save", str(path))
    assert code == 0
    model = load(path)
    assert model.scalar("b3").value == pytest.approx(2.6089111372, abs=1e-9)
    assert model.scalar("w1").value == 3.34
