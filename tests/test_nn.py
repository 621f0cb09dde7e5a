"""nn: parameters, module naming, scalar addressing, freezing, state dicts, layers, configs."""

import numpy as np
import pytest
from seed import DOSAGE, FITTED

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError, ShapeError


def seed_network() -> nn.MLP:
    """StatQuest's network as layers: weight[0, j] is the edge from dosage to unit j."""
    model = nn.MLP([1, 2, 1], activation="softplus")
    v = FITTED
    model.load_state_dict(
        {
            "hidden.weight": np.array([[v["w1"], v["w2"]]]),
            "hidden.bias": np.array([v["b1"], v["b2"]]),
            "output.weight": np.array([[v["w3"]], [v["w4"]]]),
            "output.bias": np.array([v["b3"]]),
        }
    )
    return model


def test_parameter_requires_grad_until_frozen():
    p = nn.Parameter([1.0, 2.0], name="w")
    assert p.requires_grad and not p.frozen
    p.grad = np.ones(2)
    p.frozen = True
    assert not p.requires_grad and p.grad is None


def test_a_parameter_owns_its_values():
    # Optimizer steps change a parameter in place: made from the caller's array, it must
    # not share that array's memory.
    start = np.array([1.0, 2.0])
    p = nn.Parameter(start, name="w")
    p.grad = np.array([10.0, -10.0])
    cr.optim.GradientDescent([p], lr=0.1).step()
    np.testing.assert_array_equal(start, [1.0, 2.0])  # the caller's array is unchanged
    np.testing.assert_array_equal(p.data, [0.0, 3.0])
    rows = np.arange(6.0).reshape(2, 3)
    for source in (rows, rows[1], cr.tensor(rows), np.arange(3), rows.astype(np.float32)):
        assert not np.shares_memory(nn.Parameter(source).data, np.asarray(source))
    assert nn.Parameter(rows[1]).data.flags.writeable
    fresh = np.zeros(3)  # copy=False adopts an array made for the parameter
    assert nn.Parameter(fresh, copy=False).data is fresh


def test_layers_and_state_dicts_copy_once():
    layer = nn.Linear(3, 2, seed=0)  # the drawn weights are adopted, not copied again
    assert layer.weight.data.flags.owndata and layer.bias.data.flags.owndata
    state = {"weight": np.ones((3, 2)), "bias": np.ones(2)}
    layer.load_state_dict(state)
    assert not np.shares_memory(layer.weight.data, state["weight"])
    layer.weight.data += 1.0
    np.testing.assert_array_equal(state["weight"], np.ones((3, 2)))


def test_named_parameters_follow_layer_names():
    assert [n for n, _ in nn.MLP([1, 2, 1]).named_parameters()] == [
        "hidden.weight",
        "hidden.bias",
        "output.weight",
        "output.bias",
    ]
    deep = nn.MLP([2, 4, 3, 1])
    assert deep.layer_names == ["hidden1", "hidden2", "output"]
    assert [p.name for p in deep.parameters()][:2] == ["hidden1.weight", "hidden1.bias"]
    seq = nn.Sequential(nn.Linear(1, 2), nn.Softplus(), nn.Linear(2, 1))
    assert [n for n, _ in seq.named_parameters()] == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]


class SharedLayer(nn.Module):
    """One layer and one parameter, each reachable under two names."""

    def __init__(self):
        layer = nn.Linear(1, 1, seed=3)
        self.first = layer
        self.again = layer
        self.shift = nn.Parameter(0.5)
        self.same_shift = self.shift
        self.me = self  # a cycle must not loop for ever

    def forward(self, x):
        return self.again(self.first(x)) + self.shift


def test_a_parameter_reachable_twice_is_listed_once_under_its_first_name():
    model = SharedLayer()
    assert [n for n, _ in model.named_parameters()] == ["first.weight", "first.bias", "shift"]
    assert len(model.parameters()) == 3 and len(model.state_dict()) == 3
    # train makes its optimizer from model.parameters(): it used to refuse the repeats
    x, y = np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [2.0], [3.0]])
    history = cr.train(model, (x, y), learning_rate=0.01, stop={"max_steps": 3})
    assert len(history.steps) == 3


class Containers(nn.Module):
    def __init__(self):
        self.coefficients = [nn.Parameter(1.0), nn.Parameter(2.0)]
        self.scales = {"x": nn.Parameter(3.0), "y": (nn.Parameter([4.0, 5.0]),)}
        self.blocks = [nn.Linear(1, 1), "not a module", 3]
        self.sizes = [1, 2]  # no parameters: nothing to find
        self.labels = {"a b": 1.0}  # any key, where there is no parameter

    def forward(self, x):
        return self.coefficients[0] * x + self.coefficients[1]


def test_parameters_inside_lists_tuples_and_dicts_are_found():
    model = Containers()
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "coefficients.0",
        "coefficients.1",
        "scales.x",
        "scales.y.0",
        "blocks.0.weight",
        "blocks.0.bias",
    ]
    assert model.scalar("scales.y.0[1]").value == 5.0
    model.label_parameters()
    assert model.scales["y"][0].name == "scales.y.0"
    twin = Containers()
    twin.load_state_dict({**model.state_dict(), "coefficients.1": np.array(7.0)})
    assert twin.coefficients[1].item() == 7.0


def test_a_dict_of_parameters_needs_keys_that_make_names():
    model = Containers()
    model.scales = {"x y": nn.Parameter(1.0)}
    with pytest.raises(ChainruleError, match="Containers: the dict 'scales' .* key 'x y'"):
        model.parameters()


def test_seed_network_computes_statquest_predictions():
    model = seed_network()
    dosage, v = np.array(DOSAGE).reshape(3, 1), FITTED
    x = dosage * np.array([v["w1"], v["w2"]]) + np.array([v["b1"], v["b2"]])
    expected = np.log1p(np.exp(x)) @ np.array([v["w3"], v["w4"]])
    np.testing.assert_allclose(model(dosage).data.ravel(), expected, rtol=1e-14)
    assert model(dosage).shape == (3, 1)


def test_linear_weight_is_in_by_out():
    layer = nn.Linear(3, 2, seed=0)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data + layer.bias.data)
    with pytest.raises(ShapeError, match="matmul"):
        layer(np.zeros((2, 4)))


def test_scalar_addressing():
    model = seed_network()
    ref = model.scalar("hidden.weight[0,1]")
    assert ref.name == "hidden.weight[0,1]" and ref.value == -3.53
    ref.set(-3.5)
    assert model.hidden.weight.data[0, 1] == -3.5
    assert model.scalar("output.bias[ 0 ]").name == "output.bias[0]"
    with pytest.raises(ChainruleError, match="has shape \\(1, 2\\)"):
        model.scalar("hidden.weight[1,0]")
    with pytest.raises(ChainruleError, match="no parameter 'hiden.weight'"):
        model.scalar("hiden.weight[0,0]")
    names = [r.name for r in model.scalars()]
    assert names[:3] == ["hidden.weight[0,0]", "hidden.weight[0,1]", "hidden.bias[0]"]
    assert len(names) == 7


def test_scalar_refs_are_equal_only_for_the_same_parameter_object():
    # A Parameter's == is elementwise, so refs compare their parameter by identity.
    model, twin = seed_network(), seed_network()  # equal values, different parameters
    ref = model.scalar("hidden.weight[0,1]")
    assert ref == model.scalar("hidden.weight[0,1]")
    assert ref != twin.scalar("hidden.weight[0,1]")
    assert ref != model.scalar("hidden.weight[0,0]")
    assert len({ref, model.scalar("hidden.weight[0,1]"), twin.scalar("hidden.weight[0,1]")}) == 2
    assert ref in model.scalars() and ref not in twin.scalars()


def test_freeze_by_glob_and_trainable_scalars():
    model = seed_network()
    model.freeze("hidden.*")
    assert [r.name for r in model.scalars(trainable_only=True)] == [
        "output.weight[0,0]",
        "output.weight[1,0]",
        "output.bias[0]",
    ]
    model.freeze()
    model.unfreeze("output.bias")
    assert [r.name for r in model.scalars(trainable_only=True)] == ["output.bias[0]"]
    with pytest.raises(ChainruleError, match="no parameter matches 'nope'"):
        model.freeze("nope")


def test_state_dict_round_trip_and_refusals():
    model = seed_network()
    state = model.state_dict()
    state["output.bias"][0] = 99.0  # a copy: the model is unchanged
    assert model.output.bias.data[0] == 0.0
    other = nn.MLP([1, 2, 1], activation="softplus", seed=5)
    other.load_state_dict(model.state_dict())
    for (_, a), (_, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ChainruleError, match="missing output.bias"):
        other.load_state_dict({k: v for k, v in state.items() if k != "output.bias"})
    with pytest.raises(ChainruleError, match="has shape \\(2, 1\\), the model needs \\(1, 2\\)"):
        other.load_state_dict({**state, "hidden.weight": np.zeros((2, 1))})
    with pytest.raises(ChainruleError, match="dtype float32"):
        other.load_state_dict({**state, "hidden.bias": np.zeros(2, dtype=np.float32)})


def test_activation_names():
    assert nn.MLP([2, 3, 1], activation=None).activation_name == "identity"
    assert nn.MLP([2, 3, 1], activation="ReLU").activation_name == "relu"
    with pytest.raises(ChainruleError, match="unknown activation 'gelu'"):
        nn.MLP([2, 3, 1], activation="gelu")
    with pytest.raises(ChainruleError, match="sizes must be"):
        nn.MLP([3])


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: nn.Linear(0, 1), ["Linear", "in_features", ">= 1", "0"]),
        (lambda: nn.Linear(2.5, 1), ["Linear", "in_features", "whole number", "2.5"]),
        (lambda: nn.Linear(2, -1), ["Linear", "out_features", "-1"]),
        (lambda: nn.Linear(2, True), ["Linear", "out_features", "True"]),
        (lambda: nn.MLP([2, 2.5, 1]), ["MLP", "size", "whole number", "2.5"]),
        (lambda: nn.MLP([2, 0, 1]), ["MLP", "size", ">= 1", "0"]),
    ],
)
def test_layer_sizes_must_be_whole_numbers_of_at_least_one(make, words):
    # (0 used to overflow in the weights' bound 1/sqrt(0); 2.5 failed inside numpy, or
    # was cut to 2 by int())
    with pytest.raises(ChainruleError) as info:
        make()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "model",
    [
        nn.MLP([1, 2, 1], activation="softplus"),
        nn.MLP([2, 8, 8, 3], activation="tanh", output_activation="sigmoid", dtype="float32"),
        nn.Sequential(nn.Linear(1, 2), nn.Softplus(), nn.Linear(2, 1, bias=False)),
        nn.Linear(4, 2),
    ],
    ids=["seed-mlp", "deep-float32", "sequential", "linear"],
)
def test_config_rebuilds_the_same_architecture(model):
    config = model.config()
    rebuilt = nn.from_config(config)
    assert rebuilt.config() == config
    assert [(n, p.shape, p.dtype) for n, p in rebuilt.named_parameters()] == [
        (n, p.shape, p.dtype) for n, p in model.named_parameters()
    ]
    rebuilt.load_state_dict(model.state_dict())
    x = np.linspace(-1, 1, 3 * model.parameters()[0].shape[0]).reshape(3, -1)
    np.testing.assert_array_equal(rebuilt(x).data, model(x).data)


def test_config_is_plain_data():
    import json

    config = nn.MLP([64, 128, 64, 10]).config()
    assert json.loads(json.dumps(config)) == config
    assert config == {
        "kind": "mlp",
        "sizes": [64, 128, 64, 10],
        "activation": "relu",
        "output_activation": "identity",
        "dtype": "float64",
    }


def test_from_config_refusals():
    with pytest.raises(ChainruleError, match="unknown model kind 'cnn'"):
        nn.from_config({"kind": "cnn"})
    with pytest.raises(ChainruleError, match="needs 'sizes'"):
        nn.from_config({"kind": "mlp"})

    class Custom(nn.Module):
        def forward(self, x):
            return cr.tensor(x)

    with pytest.raises(ChainruleError, match="layer 1 \\(Custom\\) has no config"):
        nn.Sequential(nn.Linear(1, 1), Custom()).config()


def test_gradients_reach_every_layer():
    model = nn.MLP([2, 3, 1], activation="tanh", seed=3)
    loss = (model(np.array([[0.5, -1.0], [1.0, 2.0]])) ** 2).sum()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
