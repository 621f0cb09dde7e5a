"""Tests for the forward pass (``chainrule predict``): each named node, the predictions,
the residuals and the loss, read off one pass of the engine before any training.

The numbers are StatQuest's: the black box's fitted values ("Neural Networks Pt. 1",
rounded as the video rounds them) and the seed network at b3 = 0 (tests/seed.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from seed import BLUE, DOSAGE, FITTED, FORMULA, GREEN, OBSERVED, ORANGE, SCAN

from chainrule import ChainruleError, cli, nn
from chainrule.datasets import Dataset, dosage
from chainrule.explain import forward_pass, inputs_at
from chainrule.formula import Formula
from chainrule.scenario import load_scenario

GOLDEN = Path(__file__).parent / "golden"

#: StatQuest's black box ("Inside the Black Box"): the fitted values ...
BLACK_BOX = {"w1": -34.4, "b1": 2.14, "w2": -2.52, "b2": 1.29, "w3": -1.30, "w4": 2.28, "b3": -0.58}
#: ... and its numbers at dosage 0, each as the video writes it (two decimals).
BLACK_BOX_AT_0 = {"x1": 2.14, "y1": 2.25, "top": -2.93, "x2": 1.29, "y2": 1.53, "bottom": 3.49}
BLACK_BOX_OUTPUT_AT_0 = -0.02


def seed_data() -> Dataset:
    return Dataset({"dosage": DOSAGE}, OBSERVED, "observed", "seed", "regression")


def test_the_black_box_at_dosage_0_gives_the_videos_numbers():
    scenario = load_scenario("inside-the-black-box")
    model = scenario.build_model()
    assert {ref.name: ref.value for ref in model.scalars()} == pytest.approx(BLACK_BOX)
    result = forward_pass(model, inputs_at(scenario.data, {"dosage": [0.0]}))
    for name, value in BLACK_BOX_AT_0.items():
        # the video rounds each node before the next uses it: within a rounding or two
        assert result.nodes[name][0] == pytest.approx(value, abs=0.01), name
    assert result.predictions[0] == pytest.approx(BLACK_BOX_OUTPUT_AT_0, abs=0.01)
    # the output is the sum of the two bent curves and b3, in the engine's own numbers
    assert result.predictions[0] == pytest.approx(
        result.nodes["top"][0] + result.nodes["bottom"][0] + BLACK_BOX["b3"], abs=1e-12
    )
    assert result.observed is None and result.loss is None and result.residuals is None


def test_the_seed_at_b3_0_gives_the_green_predictions_and_ssr():
    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    result = forward_pass(model, seed_data(), "ssr")
    assert result.predictions.tolist() == pytest.approx(GREEN, abs=1e-9)
    blue = FITTED["w3"] * result.nodes["y1"]
    orange = FITTED["w4"] * result.nodes["y2"]
    assert blue.tolist() == pytest.approx(BLUE, abs=1e-9)
    assert orange.tolist() == pytest.approx(ORANGE, abs=1e-9)
    assert result.observed.tolist() == OBSERVED
    assert result.residuals.tolist() == pytest.approx(
        [o - g for o, g in zip(OBSERVED, GREEN, strict=True)], abs=1e-9
    )
    assert result.loss == pytest.approx(SCAN[0], abs=1e-6)  # SSR at b3 = 0: 20.4236
    assert (result.loss_name, result.loss_label) == ("ssr", "SSR")
    assert list(result.nodes) == ["x1", "y1", "x2", "y2", "predicted"]


def test_a_line_that_does_not_use_the_data_repeats_its_value_per_point():
    model = Formula("c = w * 2\npredicted = c * dosage", inputs=["dosage"], values={"w": 1.5})
    result = forward_pass(model, dosage())
    assert result.nodes["c"].tolist() == [3.0, 3.0, 3.0]


def test_a_layer_model_shows_its_predictions_and_loss():
    model = nn.MLP([1, 2, 1], activation="softplus")
    result = forward_pass(model, dosage(), "mse")
    with_graph = model.predict(dosage().X)
    assert result.predictions.tolist() == pytest.approx(np.ravel(with_graph).tolist())
    assert result.nodes == {} and result.loss_label == "MSE"
    assert result.loss == pytest.approx(np.mean((np.ravel(with_graph) - OBSERVED) ** 2))


def test_several_outputs_get_one_column_each_and_no_residual():
    scenario = load_scenario("iris-three")
    result = forward_pass(scenario.build_model(), scenario.data, scenario.loss)
    assert result.predictions.shape == (scenario.data.n, 3)
    assert result.residuals is None
    header = result.render("csv").splitlines()[0].split(",")
    assert header[-4:] == ["predicted[0]", "predicted[1]", "predicted[2]", "species"]


def test_the_model_is_not_changed():
    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    before = model.state_dict()
    forward_pass(model, seed_data(), "ssr")
    assert {k: float(v) for k, v in model.state_dict().items()} == {
        k: float(v) for k, v in before.items()
    }


def test_the_text_rendering_is_golden():
    scenario = load_scenario("main-ideas")
    text = forward_pass(scenario.build_model(), scenario.data, scenario.loss).render("markdown")
    assert text + "\n" == (GOLDEN / "predict_seed.md").read_text()


@pytest.mark.parametrize(
    "given, message",
    [
        ({"dose": [0.5]}, "--at dose: the model has no input 'dose'; did you mean 'dosage'?"),
        ({}, "--at: give every input; missing dosage"),
    ],
)
def test_inputs_at_names_the_problem(given, message):
    with pytest.raises(ChainruleError, match=message):
        inputs_at(dosage(), given, "--at")


def test_inputs_of_different_lengths_or_missing_are_refused():
    data = Dataset({"a": [1.0], "b": [2.0]}, [0.0], "y", "two", "regression")
    with pytest.raises(ChainruleError, match="every input needs as many values"):
        inputs_at(data, {"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ChainruleError, match=r"^inputs_at: give every input; missing b"):
        inputs_at(data, {"a": [1.0]})


# ---------------------------------------------------------------------------------------
# chainrule predict
# ---------------------------------------------------------------------------------------


def test_predict_prints_each_node_and_the_loss(capsys):
    assert cli.main(["predict", "main-ideas", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "dosage,x1,y1,x2,y2,predicted,observed,residual"
    predicted = [float(row.split(",")[5]) for row in rows[1:]]
    assert predicted == pytest.approx(GREEN, abs=1e-9)
    assert cli.main(["predict", "main-ideas"]) == 0
    out = capsys.readouterr().out
    assert "predicted = w3 * y1 + w4 * y2 + b3" in out and "SSR = 20.4236" in out


def test_predict_at_given_inputs_has_no_loss(capsys):
    argv = ["predict", "inside-the-black-box", "--at", "dosage=0", "--format", "json"]
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["inputs"] == {"dosage": [0.0]}
    assert result["nodes"]["top"][0] == pytest.approx(BLACK_BOX_AT_0["top"], abs=0.01)
    assert "loss" not in result and "observed" not in result
    assert cli.main(["predict", "main-ideas", "--at", "dosage=0,0.5", "--at", "dosage=1"]) == 0
    out = capsys.readouterr().out
    assert "-2.6037" in out and "-2.6149" in out and "no observed values" in out


def test_predict_with_set_uses_the_changed_value(capsys):
    argv = ["predict", "main-ideas", "--set", "parameters.b3=2.5", "--format", "json"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["loss"] == pytest.approx(SCAN[5], abs=1e-6)


@pytest.mark.parametrize(
    "at, message",
    [
        ("dose=1", "--at dose: the model has no input 'dose'; did you mean 'dosage'?"),
        ("dosage=abc", "--at dosage=abc: 'abc' is not a number"),
        ("dosage", "--at dosage: expected NAME=VALUE"),
        ("dosage=inf", "'inf' is not a finite number"),
    ],
)
def test_predict_at_errors_are_one_line(at, message, capsys):
    assert cli.main(["predict", "main-ideas", "--at", at]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error: ") and message in err
    assert err.count("\n") == 1


def test_predict_writes_a_file(tmp_path, capsys):
    out = tmp_path / "forward.md"
    assert cli.main(["predict", "main-ideas", "--format", "markdown", "--out", str(out)]) == 0
    assert "| dosage | x1 |" in out.read_text()


# ---------------------------------------------------------------------------------------
# max_steps = 0: nothing trained
# ---------------------------------------------------------------------------------------


def test_a_scenario_with_max_steps_0_trains_nothing():
    scenario = load_scenario("main-ideas", overrides={"train.stop.max_steps": 0})
    run = scenario.run()
    assert run.history.num_steps == 0 and run.history.stop_reason == "max_steps"
    assert run.model.scalar("b3").value == 0.0
    assert run.history.final_loss == pytest.approx(SCAN[0], abs=1e-6)


def test_run_with_max_steps_0_says_so_and_shows_the_start(capsys):
    assert cli.main(["run", "main-ideas", "--set", "train.stop.max_steps=0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Nothing was trained (max_steps = 0)")
    assert "-2.6037" in out and "SSR = 20.4236" in out
    argv = ["run", "main-ideas", "--set", "train.stop.max_steps=0", "--format", "json"]
    assert cli.main(argv) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["steps"] == [] and run["diagnosis"]["kind"] == "untrained"
    assert run["final"]["predictions"] == pytest.approx(GREEN, abs=1e-9)


def test_explain_and_scan_work_on_an_untrained_scenario(capsys):
    untrained = ["--set", "train.stop.max_steps=0"]
    assert cli.main(["explain", "main-ideas", "--param", "b3", *untrained]) == 0
    assert "-15.6551" in capsys.readouterr().out
    argv = ["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4", *untrained]
    assert cli.main(argv) == 0
    assert "20.4236" in capsys.readouterr().out
    assert cli.main(["explain", "main-ideas", "--param", "b3", "--step", "1", *untrained]) == 2
    assert "nothing was trained" in capsys.readouterr().err
