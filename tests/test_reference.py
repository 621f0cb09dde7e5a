"""The seed's numbers: StatQuest's backpropagation example, to 1e-9.

Data: dosage [0, 0.5, 1], observed [0, 1, 0]. Network: x1 = w1*dosage + b1, y1 =
softplus(x1), x2 = w2*dosage + b2, y2 = softplus(x2), predicted = w3*y1 + w4*y2 + b3,
loss SSR. Every case runs twice: on layers (nn.MLP([1, 2, 1], softplus), whose
hidden.weight[0, j] is the edge from dosage to unit j) and on the same network written as
a formula.
"""

import math

import numpy as np
import pytest

from chainrule import nn
from chainrule.datasets import dosage
from chainrule.training import Stop, train

FORMULA = """
x1 = w1 * dosage + b1
y1 = softplus(x1)
x2 = w2 * dosage + b2
y2 = softplus(x2)
predicted = w3 * y1 + w4 * y2 + b3
"""

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

SECTION_2 = dict(w1=3.34, b1=-1.43, w2=-3.53, b2=0.57, w3=-1.22, w4=-2.30, b3=0.0)

# step | b3 | SSR | slope | step size | new b3
SECTION_2_TABLE = [
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
    model, names = build(SECTION_2, ["b3"])
    b3 = names["b3"]
    history = train(
        model, dosage(), loss="ssr", optimizer="gradient_descent", learning_rate=0.1,
        stop=Stop(step_size=0.001),
    )  # fmt: skip
    assert history.trained == [b3]
    assert history.stop_reason == "step_size"
    assert len(history.steps) == len(SECTION_2_TABLE) == history.num_steps
    for record, (step, value, ssr, slope, step_size, new) in zip(
        history.steps, SECTION_2_TABLE, strict=True
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
    assert history.message == f"{b3} = 2.61 after 10 steps: every step size is below 0.001"
    # the other six are frozen: unchanged and not reported
    for name in ("w1", "b1", "w2", "b2", "w3", "w4"):
        assert history.final_values[names[name]] == SECTION_2[name]
        assert names[name] not in history.steps[0].slopes


@BUILDERS
def test_section_2_predictions_are_recorded(build):
    model, _ = build(SECTION_2, ["b3"])
    history = train(model, dosage(), stop=Stop(max_steps=1))
    x = np.array([0.0, 0.5, 1.0])
    y1, y2 = np.log1p(np.exp(3.34 * x - 1.43)), np.log1p(np.exp(-3.53 * x + 0.57))
    np.testing.assert_allclose(history.steps[0].predictions, -1.22 * y1 - 2.30 * y2, atol=1e-12)


@BUILDERS
def test_section_4_first_step(build):
    values = dict(SECTION_2, w3=0.36, w4=0.63, b3=0.0)
    model, names = build(values, ["w3", "w4", "b3"])
    history = train(model, dosage(), learning_rate=0.1, stop=Stop(max_steps=1))
    (record,) = history.steps
    np.testing.assert_allclose(record.predictions, [0.71871896, 0.46191729, 0.76914108], atol=6e-9)
    assert record.loss == pytest.approx(1.3977, abs=1e-4)
    expected_slopes = {"w3": 2.576140, "w4": 1.256762, "b3": 1.899555}
    expected_after = {"w3": 0.10238605, "w4": 0.50432377, "b3": -0.18995547}
    assert history.trained == [names[n] for n in ("w3", "w4", "b3")]
    for name, slope in expected_slopes.items():
        assert record.slopes[names[name]] == pytest.approx(slope, abs=6e-7)
        assert record.step_sizes[names[name]] == pytest.approx(0.1 * slope, abs=6e-8)
        assert record.new_values[names[name]] == pytest.approx(expected_after[name], abs=6e-9)
        assert history.final_values[names[name]] == record.new_values[names[name]]


@BUILDERS
def test_section_5_slopes_of_all_seven(build):
    values = dict(w1=2.74, b1=0.0, w2=-1.13, b2=0.0, w3=0.36, w4=0.63, b3=0.0)
    model, names = build(values, list(values))
    history = train(model, dosage(), learning_rate=0.1, stop=Stop(max_steps=1))
    (record,) = history.steps
    np.testing.assert_allclose(record.predictions, [0.68621571, 0.85823181, 1.18527969], atol=6e-9)
    assert record.loss == pytest.approx(1.89587816, abs=6e-9)
    slopes = dict(
        w1=0.76094372, b1=0.96728584, w2=0.33227638, b2=0.73222567,
        w3=7.14231440, w4=1.48728055, b3=3.45945441,
    )  # fmt: skip
    assert sorted(history.trained) == sorted(names[n] for n in slopes)
    for name, slope in slopes.items():
        assert record.slopes[names[name]] == pytest.approx(slope, abs=6e-9), name
        new = values[name] - 0.1 * record.slopes[names[name]]
        assert record.new_values[names[name]] == pytest.approx(new, abs=1e-15), name


@BUILDERS
def test_learning_rate_1_diverges_with_a_diagnosis_and_keeps_finite_values(build):
    model, names = build(SECTION_2, ["b3"])
    history = train(model, dosage(), learning_rate=1.0)
    assert history.stop_reason == "diverged"
    assert history.message.startswith("the loss grew from 20.4 to ")
    assert history.message.endswith(
        "then the loss became infinite: the learning rate 1.0 is too large for this loss; try 0.1"
    )
    assert f"in {history.num_steps} steps" in history.message
    assert history.num_steps < 1000
    assert all(math.isfinite(v) for v in history.losses)
    assert all(math.isfinite(v) for v in history.final_values.values())
    assert math.isfinite(history.final_loss)
    b3 = model.scalar(names["b3"]).value
    assert math.isfinite(b3) and b3 == history.final_values[names["b3"]]
    # the model keeps the values of the last finite loss: those before the last step
    assert b3 == history.steps[-1].values[names["b3"]]
    assert history.final_loss == history.losses[-1]
