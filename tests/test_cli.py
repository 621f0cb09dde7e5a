"""Tests for the ``chainrule`` command line.

A few tests run the real command in a subprocess (``python -m chainrule``: the exit
code, stdout, stderr and piped stdin as a user sees them); the rest call
:func:`chainrule.cli.main` in-process, which is the same code and much faster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule import cli
from chainrule.scenario import TEMPLATE

BAD = Path(__file__).parent / "bad_scenarios"

# StatQuest's main ideas: step, b3, SSR, slope, step size, new b3 (float64, to 1e-9).
MAIN_IDEAS = [
    (1, 0.0000000000, 20.4235976776, -15.6551083806, -1.5655108381, 1.5655108381),
    (2, 1.5655108381, 3.2678283891, -6.2620433522, -0.6262043352, 2.1917151733),
    (3, 2.1917151733, 0.5229053029, -2.5048173409, -0.2504817341, 2.4421969074),
    (4, 2.4421969074, 0.0837176091, -1.0019269364, -0.1001926936, 2.5423896010),
    (5, 2.5423896010, 0.0134475781, -0.4007707745, -0.0400770775, 2.5824666785),
    (6, 2.5824666785, 0.0022043731, -0.1603083098, -0.0160308310, 2.5984975094),
    (7, 2.5984975094, 0.0004054603, -0.0641233239, -0.0064123324, 2.6049098418),
    (8, 2.6049098418, 0.0001176343, -0.0256493296, -0.0025649330, 2.6074747748),
    (9, 2.6074747748, 0.0000715821, -0.0102597318, -0.0010259732, 2.6085007480),
    (10, 2.6085007480, 0.0000642138, -0.0041038927, -0.0004103893, 2.6089111372),
]

COMMANDS = ["demo", "run", "explain", "scan", "scenarios", "quiz", "new"]


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
    assert run["loss"] == "ssr"
    assert len(run["steps"]) == len(MAIN_IDEAS)
    for record, (step, b3, ssr, slope, size, new) in zip(run["steps"], MAIN_IDEAS, strict=True):
        assert record["step"] == step
        assert record["values"]["b3"] == pytest.approx(b3, abs=1e-9)
        assert record["loss"] == pytest.approx(ssr, abs=1e-9)
        assert record["slopes"]["b3"] == pytest.approx(slope, abs=1e-9)
        assert record["step_sizes"]["b3"] == pytest.approx(size, abs=1e-9)
        assert record["new_values"]["b3"] == pytest.approx(new, abs=1e-9)
    assert run["stop_reason"] == "step_size"
    final = run["final"]
    assert final["values"]["b3"] == pytest.approx(2.6089111372, abs=1e-9)
    assert final["values"]["w1"] == 3.34
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


def test_out_writes_the_same_text_atomically(capsys, tmp_path, monkeypatch):
    import chainrule.io

    written = []
    real = chainrule.io.atomic_write

    def spy(path, data):
        written.append(Path(path))
        return real(path, data)

    monkeypatch.setattr(chainrule.io, "atomic_write", spy)
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
