"""Every hint the command line prints names a command-line option that works.

Each case makes the command print a remedy (a run that diverges, crawls or stops early;
a figure or a step of a large model without per-step records), takes the options the
remedy names from what was printed, runs the command again with them, and checks that
they did what the hint promised. The Python API keeps its own words (``detail=True``,
``learning_rate=``), which the command line never prints.
"""

from __future__ import annotations

import json
import re

import pytest

from chainrule import cli
from chainrule.datasets import dosage
from chainrule.explain import diagnose, stop_message
from chainrule.formula import Formula
from chainrule.training import train

#: An option as a hint writes it: ``--set train.learning_rate=0.04`` or ``--detail``.
OPTION = re.compile(r"--set [a-z_.]+=[-+0-9.e]+[0-9]|--detail")
#: The API's words, which a command-line hint must not use.
PYTHON_WORDS = ("detail=True", "run=", "stop={", "(learning_rate=")


def main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def suggested(text: str) -> list[list[str]]:
    """The options a hint names, each as argv words."""
    return [found.split(" ", 1) if " " in found else [found] for found in OPTION.findall(text)]


def run_json(capsys, *args: str) -> dict:
    code, out, err = main(capsys, "run", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(
    ("settings", "kind", "better"),
    [
        # diverged: "try --set train.learning_rate=0.04", and the rate that lands in one step
        (["train.learning_rate=0.4"], "diverged", {"converged"}),
        # crawls to a step-size rule far from the best b3: a larger rate
        (["train.learning_rate=0.001"], "crawling", {"converged"}),
    ],
)
def test_a_learning_rate_hint_is_a_set_option_that_mends_the_run(capsys, settings, kind, better):
    args = ["main-ideas", *(w for s in settings for w in ("--set", s))]
    run = run_json(capsys, *args)
    message = run["diagnosis"]["message"]
    assert run["diagnosis"]["kind"] == kind
    options = suggested(message)
    assert options and all(o[0] == "--set" for o in options), message
    assert not any(word in message for word in PYTHON_WORDS)
    for option in options:
        mended = run_json(capsys, *args, *option)
        assert mended["diagnosis"]["kind"] in better, (option, mended["diagnosis"])


def test_more_steps_and_a_larger_rate_mend_a_crawling_run(capsys):
    args = ["three-parameters", "--set", "train.learning_rate=0.0001"]
    args += ["--set", "train.stop.max_steps=50"]
    run = run_json(capsys, *args)
    message = run["diagnosis"]["message"]
    assert run["diagnosis"]["kind"] == "crawling"
    options = suggested(message)
    keys = [option[1].split("=")[0] for option in options]
    assert keys == ["train.learning_rate", "train.stop.max_steps"], message
    steps = run_json(capsys, *args, *options[1])
    assert len(steps["steps"]) == 2 * len(run["steps"])  # the limit took effect
    faster = run_json(capsys, *args, *options[0])
    assert faster["final"]["loss"] < run["final"]["loss"]


def test_a_step_size_hint_is_a_set_option(capsys):
    args = ["three-parameters", "--set", "train.learning_rate=0.01"]
    args += ["--set", "train.stop.step_size=0.01"]
    run = run_json(capsys, *args)
    options = suggested(run["diagnosis"]["message"])
    assert [o[1].split("=")[0] for o in options] == ["train.learning_rate", "train.stop.step_size"]
    for option in options:
        mended = run_json(capsys, *args, *option)
        assert len(mended["steps"]) > len(run["steps"])
        assert mended["final"]["loss"] < run["final"]["loss"]


def test_the_stop_message_in_the_ledger_names_the_set_option(capsys):
    code, out, _ = main(capsys, "run", "main-ideas", "--set", "train.learning_rate=0.4")
    assert code == 0
    stopped = [line for line in out.splitlines() if line.startswith("stopped:")]
    assert stopped and "try --set train.learning_rate=0.04" in stopped[0]


@pytest.mark.parametrize(
    "command",
    [
        ["plot", "moons", "--kind", "loss-curve", "--out", "{tmp}/loss.png"],
        ["explain", "moons", "--param", "output.bias[0]", "--step", "2"],
    ],
)
def test_a_large_models_missing_steps_name_detail_which_draws_them(capsys, tmp_path, command):
    command = [word.replace("{tmp}", str(tmp_path)) for word in command]
    code, out, err = main(capsys, *command)
    assert code == 2 and out == ""
    assert "--detail" in err and not any(word in err for word in PYTHON_WORDS)
    assert suggested(err) == [["--detail"]]
    code, out, err = main(capsys, *command, "--detail")
    assert code == 0, err
    if command[0] == "plot":
        assert (tmp_path / "loss.png").stat().st_size > 0
    else:
        assert out.startswith("Before step 2: output.bias[0] = ")


def test_run_detail_keeps_each_step_of_a_large_model(capsys):
    plain = run_json(capsys, "moons", "--every", "100")
    assert all(not step["values"] for step in plain["steps"])
    kept = run_json(capsys, "moons", "--every", "100", "--detail")
    assert len(kept["steps"][0]["values"]) == len(kept["trained"]) > 50


def test_the_python_api_keeps_its_own_words():
    model = Formula("predicted = 0 * dosage + b", inputs=["dosage"])
    history = train(model, dosage(), learning_rate=1.0)
    assert stop_message(history).endswith("too large for this loss; try 0.1")
    assert stop_message(history, "cli").endswith("try --set train.learning_rate=0.1")
    slow = train(model, dosage(), learning_rate=0.001, stop={"max_steps": 30})
    assert "--set" not in diagnose(slow).message
    assert "--set train.learning_rate=" in diagnose(slow, "cli").message
