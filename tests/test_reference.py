"""The seed's numbers: StatQuest's backpropagation example, to 1e-9.

The network, the data (dosage, observed) and the reference numbers are in tests/seed.py;
the loss is SSR. Every case runs twice: on layers (nn.MLP([1, 2, 1], softplus), whose
hidden.weight[0, j] is the edge from dosage to unit j) and on the same network written as
a formula.
"""

import math

import numpy as np
import pytest
from seed import (
    DOSAGE,
    FITTED,
    FORMULA,
    MAIN_IDEAS,
    START,
    START_SLOPES,
    THREE_AFTER,
    THREE_SLOPES,
    THREE_START,
)

from chainrule import nn
from chainrule.datasets import dosage
from chainrule.explain import stop_message
from chainrule.training import Stop, train

#: The MLP's scalar for each of StatQuest's names.
LAYER_NAMES = {
    "w1": "hidden.weight[0,0]",
    "w2": "hidden.weight[0,1]",
    "b1": "hidden.bias[0]",
    "b2": "hidden.bias[1]",
    "w3": "output.weight[0,0]",
    "w4": "output.weight[1,0]",
    "b3": "output.bias[0]",
}


def layer_model(values: dict[str, float], trained: list[str]) -> tuple[nn.MLP, dict[str, str]]:
    model = nn.MLP([1, 2, 1], activation="softplus")
    v = values
    model.load_state_dict(
        {
            "hidden.weight": np.array([[v["w1"], v["w2"]]]),
            "hidden.bias": np.array([v["b1"], v["b2"]]),
            "output.weight": np.array([[v["w3"]], [v["w4"]]]),
            "output.bias": np.array([v["b3"]]),
        }
    )
    model.freeze()
    if trained == ["b3"]:
        model.unfreeze("output.bias")
    elif trained == ["w3", "w4", "b3"]:
        model.unfreeze("output.*")
    else:
        assert len(trained) == 7
        model.unfreeze()
    return model, LAYER_NAMES


def formula_model(values: dict[str, float], trained: list[str]):
    try:
        from chainrule.formula import Formula
    except ImportError as exc:  # pragma: no cover (the formula module is part of chainrule)
        pytest.skip(f"chainrule.formula cannot be imported: {exc}")
    model = Formula(FORMULA, inputs=["dosage"], values=values)
    model.freeze()
    model.unfreeze(*trained)
    return model, {name: name for name in LAYER_NAMES}


BUILDERS = pytest.mark.parametrize("build", [layer_model, formula_model], ids=["layers", "formula"])


@BUILDERS
def test_section_2_learns_b3_until_every_step_is_below_0_001(build):
    model, names = build(FITTED, ["b3"])
    b3 = names["b3"]
    history = train(
        model, dosage(), loss="ssr", optimizer="gradient_descent", learning_rate=0.1,
        stop=Stop(step_size=0.001),
    )  # fmt: skip
    assert history.trained == [b3]
    assert history.stop_reason == "step_size"
    assert len(history.steps) == len(MAIN_IDEAS) == history.num_steps
    for record, (step, value, ssr, slope, step_size, new) in zip(
        history.steps, MAIN_IDEAS, strict=True
    ):
        assert record.step == step
        assert record.values[b3] == pytest.approx(value, abs=6e-11)
        assert record.loss == pytest.approx(ssr, abs=6e-11)
        assert history.losses[step - 1] == record.loss
        assert record.slopes[b3] == pytest.approx(slope, abs=6e-11)
        assert record.step_sizes[b3] == pytest.approx(step_size, abs=6e-11)
        assert record.new_values[b3] == pytest.approx(new, abs=6e-11)
    assert history.final_values[b3] == pytest.approx(2.6089111372, abs=6e-11)
    assert model.scalar(b3).value == history.final_values[b3]
    assert stop_message(history) == f"{b3} = 2.61 after 10 steps: every step size is below 0.001"
    # the other six are frozen: unchanged and not reported
    for name in ("w1", "b1", "w2", "b2", "w3", "w4"):
        assert history.final_values[names[name]] == FITTED[name]
        assert names[name] not in history.steps[0].slopes


@BUILDERS
def test_section_2_predictions_are_recorded(build):
    model, _ = build(FITTED, ["b3"])
    history = train(model, dosage(), stop=Stop(max_steps=1))
    x, v = np.array(DOSAGE), FITTED
    y1, y2 = np.log1p(np.exp(v["w1"] * x + v["b1"])), np.log1p(np.exp(v["w2"] * x + v["b2"]))
    np.testing.assert_allclose(
        history.steps[0].predictions, v["w3"] * y1 + v["w4"] * y2, rtol=0, atol=1e-12
    )


@BUILDERS
def test_section_4_first_step(build):
    model, names = build(THREE_START, ["w3", "w4", "b3"])
    history = train(model, dosage(), learning_rate=0.1, stop=Stop(max_steps=1))
    (record,) = history.steps
    np.testing.assert_allclose(
        record.predictions, [0.71871896, 0.46191729, 0.76914108], rtol=0, atol=6e-9
    )
    assert record.loss == pytest.approx(1.3977, abs=1e-4)
    assert history.trained == [names[n] for n in ("w3", "w4", "b3")]
    for name, slope in THREE_SLOPES.items():
        assert record.slopes[names[name]] == pytest.approx(slope, abs=6e-7)
        assert record.step_sizes[names[name]] == pytest.approx(0.1 * slope, abs=6e-8)
        assert record.new_values[names[name]] == pytest.approx(THREE_AFTER[name], abs=6e-9)
        assert history.final_values[names[name]] == record.new_values[names[name]]


@BUILDERS
def test_section_5_slopes_of_all_seven(build):
    model, names = build(START, list(START))
    history = train(model, dosage(), learning_rate=0.1, stop=Stop(max_steps=1))
    (record,) = history.steps
    np.testing.assert_allclose(
        record.predictions, [0.68621571, 0.85823181, 1.18527969], rtol=0, atol=6e-9
    )
    assert record.loss == pytest.approx(1.89587816, abs=6e-9)
    assert sorted(history.trained) == sorted(names[n] for n in START_SLOPES)
    for name, slope in START_SLOPES.items():
        assert record.slopes[names[name]] == pytest.approx(slope, abs=6e-9), name
        new = START[name] - 0.1 * record.slopes[names[name]]
        assert record.new_values[names[name]] == pytest.approx(new, abs=1e-15), name


@BUILDERS
def test_learning_rate_1_diverges_with_a_diagnosis_and_keeps_finite_values(build):
    model, names = build(FITTED, ["b3"])
    history = train(model, dosage(), learning_rate=1.0)
    assert history.stop_reason == "diverged"
    # each step multiplies b3's distance to its best value by 1 - 2 x 3 x 1.0 = -5, so
    # the SSR by 25: after 8 steps it is 20.4 x 25^8 = 3.12e+12, more than 1e10 times the
    # first and still growing (it would take 220 steps to overflow)
    assert stop_message(history) == (
        "the loss grew from 20.4 to 3.12e+12 in 8 steps: the learning rate 1.0 is too large "
        "for this loss; try 0.1"
    )
    assert history.num_steps == 8
    assert all(math.isfinite(v) for v in history.losses)
    assert all(math.isfinite(v) for v in history.final_values.values())
    assert math.isfinite(history.final_loss)
    b3 = model.scalar(names["b3"]).value
    assert math.isfinite(b3) and b3 == history.final_values[names["b3"]]
    # the model keeps the values of the last finite loss: those before the last step
    assert b3 == history.steps[-1].values[names["b3"]]
    assert history.final_loss == history.losses[-1]
    last = history.steps[-1]  # the undone step is recorded as it was taken
    assert last.new_values[names["b3"]] == last.values[names["b3"]] - last.step_sizes[names["b3"]]


@BUILDERS
def test_a_learning_rate_too_large_for_the_numbers_is_blamed(build):
    model, names = build(FITTED, ["b3"])
    history = train(model, dosage(), learning_rate=1e308)
    b3 = names["b3"]
    assert history.stop_reason == "diverged" and history.num_steps == 0
    # the loss and the slope are finite: the step (1e308 x 15.66) is what overflows
    assert stop_message(history) == (
        f"step 1 would make {b3} infinite, although its slope (-15.7) and the loss (20.4) are "
        "finite: the learning rate 1e+308 is too large for this loss; try 1e+307"
    )
    assert model.scalar(b3).value == 0.0 and history.final_values[b3] == 0.0
