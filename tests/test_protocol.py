"""The model protocol: every kind of model answers the same questions the same way.

Training, the explainer, the figures and the web page ask a model through these methods
only (``chainrule.nn.Module``); none asks which kind of model it is.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.datasets import Dataset, dosage
from chainrule.errors import ChainruleError
from chainrule.explain.model_graph import loss_node
from chainrule.formula import Formula
from chainrule.losses import ssr
from chainrule.run import Run
from chainrule.tensor import Tensor


class Line(nn.Module):
    """A user's own model: ``w * x + b`` over the single input column."""

    def __init__(self) -> None:
        self.w = nn.Parameter(0.5, name="w")
        self.b = nn.Parameter(0.25, name="b")

    def forward(self, x):
        return self.w * x[:, 0] + self.b


def two_inputs() -> Dataset:
    return Dataset(
        {"a": [0.0, 1.0, 2.0], "b": [1.0, 0.0, 3.0]}, [1.0, 0.0, 1.0], "y", "t", "regression"
    )


MODELS = {
    "formula": lambda: Formula(
        "p = w * dosage + c", inputs=["dosage"], values={"w": 2.0, "c": 1.0}
    ),
    "formula bound by the data": lambda: Formula("p = w * dosage + c", values={"w": 2.0, "c": 1.0}),
    "linear": lambda: nn.Linear(1, 1).at({"weight[0,0]": 2.0, "bias[0]": 1.0}),
    "sequential": lambda: nn.Sequential(nn.Linear(1, 1), nn.Identity()).at(
        {"layers.0.weight[0,0]": 2.0, "layers.0.bias[0]": 1.0}
    ),
    "mlp": lambda: nn.MLP([1, 1, 1], activation="relu").at(
        {
            "hidden.weight[0,0]": 2.0,
            "hidden.bias[0]": 1.0,
            "output.weight[0,0]": 1.0,
            "output.bias[0]": 0.0,
        }
    ),
    "user's module": lambda: Line().at({"w": 2.0, "b": 1.0}),
}


@pytest.mark.parametrize("kind", MODELS)
def test_every_model_is_fed_copied_and_run_the_same_way(kind):
    data = dosage()
    model = MODELS[kind]()
    X = model.feed(data)
    assert X.shape == (3, 1) and X[:, 0].tolist() == [0.0, 0.5, 1.0]
    # 2 * dosage + 1 for every kind (relu changes nothing: all positive)
    np.testing.assert_allclose(model.predict(X), [1.0, 2.0, 3.0], rtol=0, atol=1e-12)
    loss = model.loss_graph(data, ssr, "SSR")
    assert loss.name == "SSR" and loss.item() == pytest.approx(1 + 1 + 9)
    assert loss_node(model, data, "ssr").item() == loss.item()
    # at(): a copy at other values, the model untouched
    first = model.scalars()[0]
    twin = model.at({first.name: 10.0})
    assert twin.scalar(first.name).value == 10.0 and first.value != 10.0
    assert twin is not model and model.predict(X).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("kind", MODELS)
def test_a_run_of_every_model_can_be_read_back_at_any_step(kind):
    run = Run.train(MODELS[kind](), dosage(), learning_rate=0.05, stop={"max_steps": 3})
    for k in range(run.history.num_steps + 1):
        at_k = run.model_at_step(k)
        assert at_k.scalars()[0].value == pytest.approx(
            run.history.values_after(k).get(at_k.scalars()[0].name, run.start.scalars()[0].value)
        )
    final = run.model_at_step(run.history.num_steps)
    np.testing.assert_allclose(
        final.predict(final.feed(run.data)), run.model.predict(run.model.feed(run.data))
    )


def test_a_formula_names_its_inputs_lines_and_nodes():
    model = MODELS["formula"]()
    assert model.input_names == ("dosage",) and model.output_name == "p"
    assert [line.name for line in model.formula_lines] == ["p"]
    nodes = model.named_nodes(dosage())
    assert nodes["p"].data.tolist() == [1.0, 2.0, 3.0]
    recorded = model.output_graph(dosage(), record_inputs=True)
    assert recorded.inputs[0].op.name == "mul"  # w * dosage is recorded, dosage a leaf


@pytest.mark.parametrize("kind", ["linear", "mlp", "user's module"])
def test_other_models_take_the_data_matrix_and_have_no_lines(kind):
    model = MODELS[kind]()
    assert model.input_names is None and model.formula_lines == () and model.output_name is None
    assert model.named_nodes(dosage()) == {}
    graph = model.output_graph(dosage(), record_inputs=True)  # the leaf is in the graph
    leaves = [t for t in _leaves(graph) if t.name == "dosage"]
    assert leaves, "the input leaf carries the data's column name"


def test_a_formula_reads_columns_by_name_in_its_own_order():
    model = Formula("p = 2 * b + a", inputs=["b", "a"])
    X = model.feed(two_inputs())  # the columns in the formula's order, picked by name
    assert model.input_names == ("b", "a") and X.tolist() == [[1.0, 0.0], [0.0, 1.0], [3.0, 2.0]]
    unbound = Formula("p = 2 * b + a")
    unbound.feed(two_inputs())  # learns its inputs from the data, in the data's order
    assert unbound.input_names == ("a", "b")
    layer = nn.Linear(2, 1)
    assert layer.feed(two_inputs()).tolist() == [[0.0, 1.0], [1.0, 0.0], [2.0, 3.0]]


def test_a_model_that_reads_a_column_the_data_lacks_is_told_plainly():
    model = Formula("p = w * dose", inputs=["dose"])
    with pytest.raises(ChainruleError, match="the model reads input 'dose', but data set"):
        model.feed(dosage())
    with pytest.raises(ChainruleError, match="a model is fed a Dataset"):
        model.feed({"dose": [1.0]})


def _leaves(t: Tensor) -> list[Tensor]:
    found, stack, seen = [], [t], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is None:
            found.append(node)
        stack.extend(node.inputs)
    return found
