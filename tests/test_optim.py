"""Optimizers: the StatQuest step, frozen parameters, in-place updates, and PyTorch's rules."""

import numpy as np
import pytest

from chainrule.errors import ChainruleError
from chainrule.nn import MLP, Parameter
from chainrule.optim import (
    OPTIMIZERS,
    SGD,
    Adam,
    AdamW,
    GradientDescent,
    Momentum,
    make_optimizer,
)


def test_gradient_descent_is_the_statquest_step():
    b3 = Parameter(0.0, name="b3")
    b3.grad = np.array(-15.6551083806)
    (update,) = GradientDescent([b3], lr=0.1).step()
    assert update.parameter is b3
    assert float(update.slope) == -15.6551083806
    assert float(update.step_size) == pytest.approx(-1.56551083806, abs=1e-15)
    assert float(update.new_value) == pytest.approx(1.56551083806, abs=1e-15)
    assert float(b3.data) == float(update.new_value)


def test_updates_are_in_place_and_reported_values_are_snapshots():
    p = Parameter([1.0, 2.0, 3.0])
    array_before = p.data
    opt = GradientDescent([p], lr=0.5)
    p.grad = np.array([1.0, 1.0, 1.0])
    (first,) = opt.step()
    assert p.data is array_before  # the same array, changed in place
    np.testing.assert_array_equal(array_before, [0.5, 1.5, 2.5])
    opt.step()
    np.testing.assert_array_equal(first.new_value, [0.5, 1.5, 2.5])  # not changed later
    np.testing.assert_array_equal(p.data, [0.0, 1.0, 2.0])


def test_steps_keep_the_array_read_only_and_make_older_graphs_stale():
    # The optimizer writes through a view of its own: the parameter's array stays
    # read-only (a slip such as p.data[0] = 1 is refused), and a graph recorded before a
    # step refuses to run backward, at every step, not only the first.
    from chainrule import Tensor
    from chainrule.errors import GraphError

    p = Parameter([1.0, 2.0])
    opt = GradientDescent([p], lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        loss = (p * Tensor([1.0, 1.0])).sum()
        loss.backward()
        stale = (p * p).sum()
        opt.step()
        assert not p.data.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            p.data[0] = 7.0
        with pytest.raises(GraphError, match="changed in place"):
            stale.backward()
    np.testing.assert_array_equal(p.data, [0.0, 1.0])


def test_a_replaced_array_is_the_one_the_next_step_changes():
    import copy

    p = Parameter([1.0, 2.0])
    opt = GradientDescent([p], lr=1.0)
    p.grad = np.array([1.0, 1.0])
    opt.step()
    old = p.data
    p.data = np.array([10.0, 20.0])  # the user puts a new array in place
    opt.step()
    np.testing.assert_array_equal(p.data, [9.0, 19.0])
    np.testing.assert_array_equal(old, [0.0, 1.0])  # the old array is left alone
    # A copy of the optimizer and its parameters changes the copied parameters only.
    twin_opt, twin_p = copy.deepcopy((opt, p))
    twin_p.grad = np.array([1.0, 1.0])
    twin_opt.step()
    np.testing.assert_array_equal(twin_p.data, [8.0, 18.0])
    np.testing.assert_array_equal(p.data, [9.0, 19.0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shapes", [[()] * 7, [(), (3, 2), (2,), ()]])
def test_plain_descent_takes_every_parameter_at_once_with_the_same_numbers(dtype, shapes):
    # A formula's single numbers step through one vector (arrays one by one): each new
    # value must still be exactly old - lr * slope, the reported values must be snapshots
    # of their own, and the parameters' arrays must be the ones changed in place.
    rng = np.random.default_rng(1)
    params = [Parameter(rng.normal(size=shape).astype(dtype)) for shape in shapes]
    arrays = [p.data for p in params]
    opt = SGD(params, lr=0.37)
    reported = []
    for _ in range(3):
        old = [p.data.copy() for p in params]
        slopes = [rng.normal(size=shape).astype(dtype) for shape in shapes]
        for p, slope in zip(params, slopes, strict=True):
            p.grad = slope
        updates = opt.step()
        assert [u.parameter for u in updates] == params
        for p, u, before, slope, array in zip(params, updates, old, slopes, arrays, strict=True):
            expected_step = np.asarray(
                np.float32(0.37) * slope if dtype == "float32" else 0.37 * slope
            )
            np.testing.assert_array_equal(u.step_size, expected_step)
            np.testing.assert_array_equal(p.data, before - expected_step)
            np.testing.assert_array_equal(u.new_value, p.data)
            assert u.slope is slope and p.data is array and p.data.dtype == dtype
        reported.append([u.new_value.copy() for u in updates])
        updates[0].new_value[...] = 1e9  # a report is the caller's: the parameter keeps its value
        assert not np.any(params[0].data == 1e9)
    assert not np.array_equal(reported[0][1], params[1].data)


def test_a_step_reads_values_changed_between_steps():
    from chainrule.tensor import inplace

    a, b, c = Parameter(1.0), Parameter(2.0), Parameter(3.0)
    opt = GradientDescent([a, b, c], lr=0.5)
    for p in (a, b, c):
        p.grad = np.array(1.0)
    opt.step()
    inplace(a)[...] = 10.0  # changed in place, the deliberate way
    b.data = np.array(20.0)  # a new array put in its place
    opt.step()
    assert [float(p.data) for p in (a, b, c)] == [9.5, 19.5, 2.0]
    b.frozen = True  # a frozen parameter is left alone; the others still step
    assert [u.parameter for u in opt.step()] == [a, c]
    b.frozen = False  # (freezing forgot its slope)
    b.grad = np.array(1.0)
    opt.step()
    assert [float(p.data) for p in (a, b, c)] == [8.5, 19.0, 1.0]


def test_step_size_is_old_minus_new():
    rng = np.random.default_rng(0)
    p = Parameter(rng.normal(size=(3, 2)))
    opt = Adam([p], lr=0.1, weight_decay=0.1)
    for _ in range(3):
        old = p.data.copy()
        p.grad = rng.normal(size=(3, 2))
        (u,) = opt.step()
        np.testing.assert_allclose(u.step_size, old - u.new_value, rtol=1e-12, atol=1e-15)


def test_frozen_parameters_are_never_changed_nor_reported():
    model = MLP([2, 3, 1])
    model.freeze("hidden.*")
    frozen_before = {n: p.data.copy() for n, p in model.named_parameters() if p.frozen}
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)  # even a stray gradient on a frozen parameter
    updates = opt.step()
    assert {id(u.parameter) for u in updates} == {
        id(model.output.weight),
        id(model.output.bias),
    }
    for name, value in frozen_before.items():
        np.testing.assert_array_equal(model.parameter(name).data, value)


def test_parameters_without_a_gradient_are_skipped():
    a, b = Parameter(1.0), Parameter(2.0)
    a.grad = np.array(1.0)
    updates = GradientDescent([a, b], lr=0.1).step()
    assert [u.parameter for u in updates] == [a]
    assert float(b.data) == 2.0


def test_zero_grad():
    a = Parameter([1.0])
    a.grad = np.array([3.0])
    opt = GradientDescent([a], lr=0.1)
    opt.zero_grad()
    assert a.grad is None
    assert opt.step() == []


def test_a_module_can_be_given_instead_of_its_parameters():
    model = MLP([2, 3, 1])
    assert GradientDescent(model, lr=0.1).params == model.parameters()


def test_registry_and_make_optimizer():
    assert set(OPTIMIZERS) == {"gradient_descent", "sgd", "momentum", "adam", "adamw"}
    params = [Parameter(0.0)]
    momentum = make_optimizer("momentum", params, 0.1)
    assert isinstance(momentum, Momentum) and momentum.momentum == 0.9
    adam = make_optimizer("Adam", params, 0.01, betas=(0.8, 0.99))
    assert isinstance(adam, Adam) and adam.betas == (0.8, 0.99) and adam.lr == 0.01
    assert make_optimizer("gradient-descent", params, 0.1).lr == 0.1
    with pytest.raises(ChainruleError, match="unknown optimizer 'rmsprop'.*gradient_descent"):
        make_optimizer("rmsprop", params, 0.1)
    with pytest.raises(ChainruleError, match="no option 'momentum'.*betas, eps, weight_decay"):
        make_optimizer("adam", params, 0.1, momentum=0.9)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: GradientDescent(p, lr=-1), "learning rate must be a finite number > 0"),
        (lambda p: GradientDescent(p, lr=float("nan")), "learning rate"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), "nesterov momentum needs a momentum > 0"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), "momentum must be"),
        (lambda p: Adam(p, betas=(0.9, 1.0)), r"betas must each be in \[0, 1\)"),
        (lambda p: Adam(p, eps=-1), "eps must be"),
        (lambda p: GradientDescent(p + p, lr=0.1), "the same parameter twice"),
        (lambda p: GradientDescent([], lr=0.1), "no parameters"),
    ],
)
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ChainruleError, match=message):
        make([Parameter(0.0)])


def test_adamw_default_weight_decay_matches_torch():
    torch = pytest.importorskip("torch")
    assert (
        AdamW([Parameter(0.0)]).weight_decay
        == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]
    )


# ---------------------------------------------------------------------------------------
# PyTorch agreement: the same slopes give the same values, step after step
# ---------------------------------------------------------------------------------------

CASES = [
    ("gradient_descent", {}),
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.8, "nesterov": True}),
    ("sgd", {"momentum": 0.9, "weight_decay": 0.1}),
    ("momentum", {}),
    ("adam", {}),
    ("adam", {"betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.05}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.3, "betas": (0.5, 0.9)}),
]


def _torch_optimizer(torch, name, params, lr, options):
    if name in ("gradient_descent", "sgd"):
        return torch.optim.SGD(params, lr=lr, **options)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **options)
    return torch.optim.AdamW(params, lr=lr, **options)


def _slope(values):
    """A slope that depends on the values, so that errors would compound."""
    return np.sin(3 * values) + 0.5 * values**2 - 0.2


@pytest.mark.parametrize("name, options", CASES)
def test_matches_torch_step_by_step(name, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    starts = [rng.normal(size=(3, 2)), rng.normal(size=4), rng.normal(size=())]
    ours = [Parameter(s.copy()) for s in starts]
    theirs = [torch.tensor(s.copy(), dtype=torch.float64, requires_grad=True) for s in starts]
    lr = 0.05
    opt = make_optimizer(name, ours, lr, **options)
    reference = _torch_optimizer(torch, name, theirs, lr, options)
    for step in range(8):
        for i, (p, t) in enumerate(zip(ours, theirs, strict=True)):
            # parameter 2 has no gradient on step 3: both libraries skip it then
            if i == 2 and step == 3:
                p.grad, t.grad = None, None
                continue
            slope = _slope(p.data)
            p.grad = slope
            t.grad = torch.tensor(slope)
        opt.step()
        reference.step()
        for p, t in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_lr_and_learning_rate_are_one_setting_everywhere():
    from chainrule import Formula, train
    from chainrule.datasets import dosage
    from chainrule.optim import OPTIMIZERS
    from chainrule.scenario import parse_scenario

    for cls in OPTIMIZERS.values():
        a, b = cls([Parameter(1.0)], lr=0.3), cls([Parameter(1.0)], learning_rate=0.3)
        assert a.lr == b.lr == 0.3
    with pytest.raises(ChainruleError, match="lr=0.1 and learning_rate=0.2 are the same"):
        Adam([Parameter(1.0)], lr=0.1, learning_rate=0.2)

    def run(**rate):
        model = Formula("p = w * dosage + b", inputs=["dosage"], values={"w": 1.0, "b": 0.0})
        return train(model, dosage(), stop={"max_steps": 1}, **rate).learning_rate

    assert run(lr=0.3) == run(learning_rate=0.3) == 0.3 and run() == 0.1
    text = (
        '[data]\nx = [0.0, 1.0]\ny = [1.0, 3.0]\n[model]\nformula = "p = w * x"\n'
        "[parameters]\nw = 1.0\n[train]\n"
    )
    assert parse_scenario(text + "lr = 0.3\n").learning_rate == 0.3
    with pytest.raises(ChainruleError, match=r":9: \[train\] lr: lr and learning_rate are"):
        parse_scenario(text + "lr = 0.3\nlearning_rate = 0.3\n")
