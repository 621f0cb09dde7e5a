"""The chain rule read off the engine's graph: the seed's seven slopes, repeated parameters,
layer models; every sum of paths equals the engine's gradient and finite differences."""

from __future__ import annotations

import json

import numpy as np
import pytest
from seed import DOSAGE, FORMULA, START, START_SLOPES
from test_explain import assert_golden

from chainrule import ChainruleError, nn
from chainrule.datasets import Dataset, dosage, load_dataset
from chainrule.explain import ChainRule, chain_rule
from chainrule.formula import Formula
from chainrule.losses import get_loss
from chainrule.tensor import Tensor, no_grad

RESIDUAL = ("dSSR/dpredicted", "-2 (observed - predicted)")
# Each parameter's path (below dSSR/dpredicted) and formulas.
EXPECTED = {
    "w1": [("dpredicted/dy1", "w3"), ("dy1/dx1", "e^x1 / (1 + e^x1)"), ("dx1/dw1", "dosage")],
    "b1": [("dpredicted/dy1", "w3"), ("dy1/dx1", "e^x1 / (1 + e^x1)"), ("dx1/db1", "1")],
    "w2": [("dpredicted/dy2", "w4"), ("dy2/dx2", "e^x2 / (1 + e^x2)"), ("dx2/dw2", "dosage")],
    "b2": [("dpredicted/dy2", "w4"), ("dy2/dx2", "e^x2 / (1 + e^x2)"), ("dx2/db2", "1")],
    "w3": [("dpredicted/dw3", "y1")],
    "w4": [("dpredicted/dw4", "y2")],
    "b3": [("dpredicted/db3", "1")],
}


def seed_model(**values: float) -> Formula:
    model = Formula(FORMULA, inputs=["dosage"], values={**START, **values})
    model.freeze()
    model.unfreeze("b3")  # as in the seed: only b3 is trained; the others are explained too
    return model


def loss_at(model, data: Dataset, loss: str) -> float:
    """The loss by a plain forward pass, for finite differences."""
    with no_grad():
        inputs = dict(data.inputs) if isinstance(model, Formula) else Tensor(data.X)
        return get_loss(loss)(model(inputs), data.target).item()


def finite_difference(model, data: Dataset, loss: str, name: str, eps: float = 1e-6) -> float:
    ref = model.scalar(name)
    start = ref.value
    try:
        ref.set(start + eps)
        up = loss_at(model, data, loss)
        ref.set(start - eps)
        down = loss_at(model, data, loss)
    finally:
        ref.set(start)
    return (up - down) / (2 * eps)


def check_sums(rule: ChainRule, model, data: Dataset, loss: str) -> None:
    """The paths add up to the engine's gradient, which finite differences confirm."""
    assert rule.total == pytest.approx(rule.value, rel=1e-12, abs=1e-12)
    numeric = finite_difference(model, data, loss, rule.parameter)
    assert rule.value == pytest.approx(numeric, rel=1e-6, abs=1e-8)


# -- the seed ----------------------------------------------------------------------------


@pytest.mark.parametrize("parameter", list(START))
def test_seed_slopes_by_the_chain_rule(parameter):
    model = seed_model()
    rule = chain_rule(model, dosage(), "ssr", parameter)
    assert rule.value == pytest.approx(START_SLOPES[parameter], abs=1e-8)
    check_sums(rule, model, dosage(), "ssr")
    (path,) = rule.paths
    factors = [(f.label, f.formula) for f in path.factors]
    assert factors == [RESIDUAL, *EXPECTED[parameter]]
    assert path.text == " x ".join(label for label, _ in factors)


def test_w1_per_data_point():
    rule = chain_rule(seed_model(), dosage(), "ssr", "w1")
    (path,) = rule.paths
    residual, dy1, softplus, dosage_factor = (f.values for f in path.factors)
    np.testing.assert_allclose(dy1, [START["w3"]] * 3)
    np.testing.assert_allclose(dosage_factor, DOSAGE)
    x1 = START["w1"] * np.array(DOSAGE)
    np.testing.assert_allclose(softplus, np.exp(x1) / (1 + np.exp(x1)), rtol=1e-12)
    np.testing.assert_allclose(residual, [1.37243142, -0.28353638, 2.37055938], rtol=0, atol=1e-8)
    np.testing.assert_allclose(path.products, residual * dy1 * softplus * dosage_factor)
    assert path.products.sum() == pytest.approx(START_SLOPES["w1"], abs=1e-8)


def test_w1_text_rendering_matches_the_golden_file():
    text = chain_rule(seed_model(), dosage(), "ssr", "w1").render("text")
    assert_golden("chain_rule_w1.txt", text)


def test_the_explanation_leaves_the_model_as_it_was():
    model = seed_model()
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    chain_rule(model, dosage(), "ssr", "w2")
    assert [p.frozen for p in model.parameters()] == [True] * 6 + [False]
    assert all(np.array_equal(p.data, before[name]) for name, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


def test_to_dict_contract():
    rule = chain_rule(seed_model(), dosage(), "ssr", "w1")
    out = rule.to_dict()
    assert {"parameter", "gradient", "paths", "points", "formulas"} <= set(out)
    assert out["parameter"] == "w1"
    assert (out["loss_name"], out["loss_label"]) == ("ssr", "SSR")
    assert out["gradient"] == pytest.approx(START_SLOPES["w1"], abs=1e-8)
    assert out["paths"] == [["dSSR/dpredicted", "dpredicted/dy1", "dy1/dx1", "dx1/dw1"]]
    assert out["formulas"]["dy1/dx1"] == "e^x1 / (1 + e^x1)"
    assert len(out["points"]) == 3
    assert out["points"][1]["inputs"] == {"dosage": 0.5}
    point = out["points"][2]
    assert point["products"][0] == pytest.approx(float(np.prod(point["paths"][0])))
    assert sum(p["products"][0] for p in out["points"]) == pytest.approx(out["sum"])


def test_latex_uses_fractions_and_subscripts():
    latex = chain_rule(seed_model(), dosage(), "ssr", "w1").render("latex")
    assert (
        r"\frac{d\,\mathrm{SSR}}{d\,w_1} = \frac{d\,\mathrm{SSR}}{d\,\mathrm{predicted}} \times "
        r"\frac{d\,\mathrm{predicted}}{d\,y_1} \times \frac{d\,y_1}{d\,x_1} \times "
        r"\frac{d\,x_1}{d\,w_1}"
    ) in latex
    assert r"\frac{d\,y_1}{d\,x_1} = \frac{e^{x_1}}{1 + e^{x_1}}" in latex


def test_unknown_parameter_is_a_clear_error():
    with pytest.raises(ChainruleError, match="no parameter 'w9'"):
        chain_rule(seed_model(), dosage(), "ssr", "w9")


# -- several paths -----------------------------------------------------------------------

TWICE = """
x1 = w * dosage
x2 = w * dosage + 1
predicted = x1 + softplus(x2)
"""


@pytest.mark.parametrize("loss", ["ssr", "mse", "mae"])
def test_a_parameter_used_twice_has_two_paths(loss):
    model = Formula(TWICE, inputs=["dosage"], values={"w": 0.7})
    rule = chain_rule(model, dosage(), loss, "w")
    assert [[f.label for f in p.factors][1:] for p in rule.paths] == [
        ["dpredicted/dx1", "dx1/dw"],
        ["dpredicted/dx2", "dx2/dw"],
    ]
    assert rule.paths[1].factors[1].formula == "e^x2 / (1 + e^x2)"
    assert rule.paths[0].total != pytest.approx(rule.value)
    check_sums(rule, model, dosage(), loss)
    text = rule.render("text")
    assert "path 1 sum" in text and "path 2 sum" in text and "sum of the paths" in text


def test_a_shared_intermediate_value():
    model = Formula("s = w * w\npredicted = s * dosage", inputs=["dosage"], values={"w": 1.5})
    rule = chain_rule(model, dosage(), "ssr", "w")
    (path,) = rule.paths
    assert [(f.label, f.formula) for f in path.factors][1:] == [
        ("dpredicted/ds", "dosage"),
        ("ds/dw", "2 w"),
    ]
    assert path.per_point and not path.factors[2].per_point
    check_sums(rule, model, dosage(), "ssr")


def test_mse_formula_divides_by_n():
    model = Formula(TWICE, inputs=["dosage"], values={"w": 0.7})
    rule = chain_rule(model, dosage(), "mse", "w")
    assert rule.formulas["dMSE/dpredicted"] == "-2 (observed - predicted) / n"


# -- layer models ------------------------------------------------------------------------


def test_mlp_first_layer_weight():
    model = nn.MLP([1, 2, 1], activation="softplus", seed=3)
    rule = chain_rule(model, dosage(), "ssr", "hidden.weight[0,1]")
    (path,) = rule.paths
    assert [(f.label, f.formula) for f in path.factors] == [
        ("dSSR/doutput.z", "-2 (observed - output.z)"),
        ("doutput.z/dhidden.a[1]", "output.weight[1,0]"),
        ("dhidden.a[1]/dhidden.z[1]", "e^hidden.z[1] / (1 + e^hidden.z[1])"),
        ("dhidden.z[1]/dhidden.weight[0,1]", "dosage"),
    ]
    np.testing.assert_allclose(path.factors[1].values, model.output.weight.data[1, 0])
    np.testing.assert_allclose(path.factors[3].values, DOSAGE)
    check_sums(rule, model, dosage(), "ssr")


@pytest.mark.parametrize(
    ("loss", "outputs"), [("ssr", 1), ("binary_cross_entropy_with_logits", 1), ("cross_entropy", 2)]
)
def test_mlp_every_path_sums_to_the_gradient(loss, outputs):
    data = load_dataset("moons", n=8, seed=2)
    model = nn.MLP([2, 3, 4, outputs], activation="tanh", seed=1)
    rule = chain_rule(model, data, loss, "hidden1.weight[1,2]")
    assert len(rule.paths) == 4 * outputs  # through each unit of hidden2 and each output
    first = rule.paths[0].factors
    assert first[-1].label == "dhidden1.z[2]/dhidden1.weight[1,2]"
    assert first[-1].formula == "x2"  # the data's second column
    check_sums(rule, model, data, loss)


def test_mlp_output_bias_and_frozen_layers():
    model = nn.MLP([1, 3, 1], activation="relu", seed=0)
    model.freeze("hidden.*")
    rule = chain_rule(model, dosage(), "ssr", "output.bias[0]")
    assert [f.label for f in rule.paths[0].factors] == ["dSSR/doutput.z", "doutput.z/doutput.bias"]
    check_sums(rule, model, dosage(), "ssr")
    hidden = chain_rule(model, dosage(), "ssr", "hidden.bias[2]")  # frozen, explained anyway
    check_sums(hidden, model, dosage(), "ssr")
    assert [p.frozen for p in model.parameters()] == [True, True, False, False]


def dead_unit_model(outputs: int = 1) -> nn.MLP:
    """A ReLU network on the dosages whose hidden unit 0 is off at every data point."""
    model = nn.MLP([1, 2, outputs], activation="relu", seed=0)
    model.hidden.weight.data[:] = [[-1.0, 1.0]]
    model.hidden.bias.data[:] = [-5.0, 0.5]
    return model


def test_a_relu_off_at_every_point_is_named_as_what_stops_the_slope():
    model = dead_unit_model()
    rule = chain_rule(model, dosage(), "ssr", "hidden.bias[0]")
    assert rule.paths == () and rule.value == 0.0 and rule.unreached is None
    # the edge is not a path of the chain rule (its products would all be 0), but the
    # learner is told which local derivative closes it, with its formula
    assert [(f.label, f.formula) for f in rule.blocked] == [
        ("dhidden.a[0]/dhidden.z[0]", "1 if hidden.z[0] > 0 else 0")
    ]
    text = rule.render("text")
    assert "goes through a local derivative that is 0 at every data point" in text
    assert "dhidden.a[0]/dhidden.z[0] = 1 if hidden.z[0] > 0 else 0" in text
    assert "the engine's gradient: 0.0000" in text
    latex = rule.render("latex")
    assert f"{rule.blocked[0].latex_label} = {rule.blocked[0].formula_latex}" in latex
    data = rule.to_dict()
    assert data["paths"] == [] and data["sum"] == 0.0
    assert data["zero_factors"] == {"dhidden.a[0]/dhidden.z[0]": "1 if hidden.z[0] > 0 else 0"}
    assert data["why_zero"].startswith("Every path from SSR to hidden.bias[0] goes through")


def test_a_dead_units_outgoing_weight_is_stopped_by_its_zero_output_alone():
    # output.weight[0,1] feeds output unit 1 only: the weight's other units are no edge
    # of the network, and are not named as zero
    model = dead_unit_model(outputs=3)
    data = Dataset(
        {"dosage": np.array([0.0, 0.5, 1.0])},
        np.array([0, 2, 1]),
        "observed",
        "three",
        "multiclass",
        num_classes=3,
    )
    rule = chain_rule(model, data, "cross_entropy", "output.weight[0,1]")
    assert rule.paths == () and rule.value == 0.0
    assert [(f.label, f.formula) for f in rule.blocked] == [
        ("doutput.z[1]/doutput.weight[0,1]", "hidden.a[0]")
    ]
    # the live unit's weight has its paths, and nothing is blocked
    live = chain_rule(model, data, "cross_entropy", "output.weight[1,1]")
    assert live.paths and live.blocked == () and "why_zero" not in live.to_dict()


def test_an_input_that_is_zero_at_every_point_stops_its_weights_slope():
    model = Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 1.0, "b": 0.5})
    zeros = Dataset(
        {"dosage": np.zeros(3)}, np.array([0.0, 1.0, 0.0]), "observed", "z", "regression"
    )
    rule = chain_rule(model, zeros, "ssr", "w")
    assert [(f.label, f.formula) for f in rule.blocked] == [("dpredicted/dw", "dosage")]
    assert chain_rule(model, zeros, "ssr", "b").blocked == ()  # b has its path


def test_a_parameter_that_forward_does_not_use_does_not_reach_the_loss():
    class Line(nn.Module):  # a formula refuses such a line; a Module of one's own may not
        def __init__(self):
            self.w1, self.w2, self.b = nn.Parameter(1.0), nn.Parameter(0.5), nn.Parameter(0.0)

        def forward(self, x):
            return self.w2 * x[:, 0] + self.b

    model = Line()
    rule = chain_rule(model, dosage(), "ssr", "w1")
    assert rule.paths == () and rule.value == 0.0
    assert rule.unreached == (
        "w1 does not reach SSR: no path leads from SSR down to w1. So SSR does "
        "not depend on w1: dSSR/dw1 = 0 at any value, and training cannot change SSR "
        "through w1."
    )
    text = rule.render("text")
    assert text.splitlines()[0] == "dSSR/dw1 = 0"
    assert "local derivative of 0" not in text and "engine's gradient" not in text
    assert rule.to_dict()["paths"] == [] and rule.to_dict()["sum"] == 0.0
    assert chain_rule(model, dosage(), "ssr", "w2").unreached is None


def test_a_formula_line_that_nothing_uses_is_refused_naming_it():
    with pytest.raises(ChainruleError, match=r"line 2, column 1: x2 is computed on line 2"):
        Formula("x1 = w1 * dosage\nx2 = x1 + 1\npredicted = 2 * dosage", inputs=["dosage"])


@pytest.mark.parametrize(
    ("formula", "factor", "written"),
    [
        ("predicted = w * dosage ** 2 + b", "dpredicted/dw", "dosage^2"),
        ("predicted = w * exp(-dosage) + b", "dpredicted/dw", "e^(-dosage)"),
        ("x1 = w * (dosage + 1)\npredicted = softplus(x1) + b", "dx1/dw", "dosage + 1"),
    ],
)
def test_parts_without_parameters_keep_the_learners_notation(formula, factor, written):
    model = Formula(formula, inputs=["dosage"], values={"w": 0.7, "b": 0.0})
    rule = chain_rule(model, dosage(), "ssr", "w")
    assert rule.formulas[factor] == written  # not a nameless constant 'c'
    factors = {f.label: f for f in rule.paths[0].factors}
    assert factors[factor].per_point
    check_sums(rule, model, dosage(), "ssr")
    assert "c" not in rule.render("text").split()


# -- the data points the factors are computed at ------------------------------------------


def test_seed_step_1_shows_observed_predicted_and_residuals_that_make_the_slope(capsys):
    from chainrule import cli

    argv = ["explain", "main-ideas", "--param", "b3", "--step", "1"]
    assert cli.main([*argv, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["observed"] == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(out["predictions"], [-2.6037, -1.6090, -2.6149], atol=5e-5)
    np.testing.assert_allclose(out["residuals"], [2.6037, 2.6090, 2.6149], atol=5e-5)
    residuals = np.array(out["residuals"])
    # dSSR/dpredicted = -2 x residual at each point, times dpredicted/db3 = 1, summed
    factors = np.array([point["paths"][0] for point in out["points"]])
    np.testing.assert_allclose(factors[:, 0], -2 * residuals, rtol=1e-12)
    assert -2 * residuals.sum() == pytest.approx(out["gradient"], rel=1e-12)
    assert out["gradient"] == pytest.approx(-15.6551, abs=5e-5)
    assert cli.main([*argv, "--format", "text", "--width", "80"]) == 0
    text = capsys.readouterr().out
    lines = [line.split() for line in text.splitlines()]
    assert ["dosage", "observed", "predicted", "residual"] in lines
    assert ["0.5000", "1.0000", "-1.6090", "2.6090"] in lines
    assert "sum: -15.6551" in text
    # the points come before the factors that are made of them
    assert text.index("residual\n") < text.index("dSSR/dpredicted  dpredicted/db3")


def test_the_points_are_those_at_the_values_explained():
    model = seed_model(b3=1.0)
    rule = chain_rule(model, dosage(), "ssr", "b3")
    with no_grad():
        predicted = model({"dosage": DOSAGE}).data
    np.testing.assert_allclose(rule.predictions, predicted, rtol=1e-12)
    np.testing.assert_allclose(rule.residuals, dosage().target - predicted, rtol=1e-12)
    factor = rule.paths[0].factors[0]
    np.testing.assert_allclose(factor.values, -2 * rule.residuals, rtol=1e-12)


def test_several_outputs_give_a_column_each_and_no_residual():
    data = load_dataset("moons", n=8, seed=2)
    model = nn.MLP([2, 3, 2], activation="tanh", seed=1)
    rule = chain_rule(model, data, "cross_entropy", "output.bias[1]")
    assert rule.predictions.shape == (8, 2) and rule.residuals is None
    out = rule.to_dict()
    assert "residuals" not in out and len(out["predictions"][0]) == 2
    assert out["observed"] == data.target.tolist()
    table = rule.document()[2]
    assert [c.text for c in table.columns] == ["x1", "x2", "label", "predicted[0]", "predicted[1]"]
    assert table.rows[3][3:] == tuple(rule.predictions[3].tolist())
    # a class is a whole number, and is written as one: "1", not "1.0000"
    assert [type(row[2]) for row in table.rows] == [int] * 8
    label = int(data.target[0])
    first = rule.render("text").split("predicted[1]")[1].splitlines()[2].split()
    assert first[2] == str(label)


def test_many_points_list_twelve_and_say_so_the_json_has_them_all():
    data = load_dataset("moons", n=30, seed=2)
    model = nn.MLP([2, 3, 1], activation="tanh", seed=1)
    rule = chain_rule(model, data, "binary_cross_entropy_with_logits", "output.bias[0]")
    table, note = rule.document()[2:4]
    assert len(table.rows) == 12
    assert note.text == "(12 of 30 data points shown)"
    assert len(rule.to_dict()["predictions"]) == 30


def test_many_inputs_number_the_points():
    columns = {f"x{i}": np.arange(3.0) + i for i in range(4)}
    data = Dataset(columns, np.array([0.0, 1.0, 0.0]), "observed", "four", "regression")
    model = Formula("predicted = w * x0 + x1 + x2 + x3 + b", values={"w": 1.0, "b": 0.0})
    table = chain_rule(model, data, "ssr", "b").document()[2]
    assert [c.text for c in table.columns] == ["row", "observed", "predicted", "residual"]
    assert [row[0] for row in table.rows] == [0.0, 1.0, 2.0]


def test_a_leaky_relu_keeps_a_slope_where_a_relu_stops_it():
    # the same unit, off at every data point: leaky_relu passes 0.01 of the slope back
    # (the remedy the diagnosis of a dead unit names), so the bias has its path again
    model = dead_unit_model()
    leaky = nn.MLP([1, 2, 1], activation="leaky_relu", seed=0)
    leaky.load_state_dict(model.state_dict())
    rule = chain_rule(leaky, dosage(), "ssr", "hidden.bias[0]")
    assert rule.blocked == () and len(rule.paths) == 1
    assert rule.formulas["dhidden.a[0]/dhidden.z[0]"] == "1 if hidden.z[0] > 0 else 0.01"
    factor = rule.paths[0].factors[2]
    np.testing.assert_array_equal(factor.values, [0.01, 0.01, 0.01])
    check_sums(rule, leaky, dosage(), "ssr")
    assert rule.value != 0.0
