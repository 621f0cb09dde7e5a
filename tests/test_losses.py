"""Losses: values, graphs, shapes, stability, errors, and agreement with PyTorch."""

import numpy as np
import pytest
from seed import OBSERVED

import chainrule as cr
from chainrule.errors import ChainruleError, ShapeError
from chainrule.losses import (
    LOSSES,
    LossSpec,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    get_loss,
    loss_for_task,
    loss_spec,
    mae,
    mse,
    sigmoid_mismatch,
    ssr,
)


def _ops(node):
    """The op names from the loss down its first inputs."""
    names = []
    while node.op is not None:
        names.append(node.op.name)
        node = next((t for t in node.inputs if t.op is not None), node.inputs[0])
    return names


def test_ssr_is_the_seed_formula_built_from_engine_ops():
    predicted = cr.tensor([-2.6, -1.6, -2.6], requires_grad=True)
    loss = ssr(predicted, OBSERVED)  # residuals 2.6, 2.6 and 2.6
    assert loss.item() == pytest.approx(3 * 2.6**2)
    assert loss.name == "SSR"
    assert loss.op.name == "sum"
    assert loss.inputs[0].op.name == "pow"
    assert loss.inputs[0].inputs[0].op.name == "sub"
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(predicted.grad, -2 * np.array([2.6, 2.6, 2.6]))


@pytest.mark.parametrize(
    "loss, expected",
    [(ssr, 1 + 4 + 9), (mse, (1 + 4 + 9) / 3), (mae, (1 + 2 + 3) / 3)],
)
def test_regression_losses_values(loss, expected):
    assert loss(cr.tensor([1.0, 2.0, 3.0]), [0.0, 0.0, 0.0]).item() == pytest.approx(expected)


@pytest.mark.parametrize("loss", [ssr, mse, mae, binary_cross_entropy_with_logits])
def test_column_predictions_against_a_vector_target(loss):
    column = cr.tensor([[0.2], [0.7], [0.4]], requires_grad=True)
    vector = cr.tensor([0.2, 0.7, 0.4], requires_grad=True)
    target = [0.0, 1.0, 1.0]
    a, b = loss(column, target), loss(vector, target)
    assert a.item() == pytest.approx(b.item())
    a.backward()
    b.backward()
    assert column.grad.shape == (3, 1)
    np.testing.assert_allclose(column.grad.ravel(), vector.grad)


@pytest.mark.parametrize("loss", [ssr, mse, mae, binary_cross_entropy_with_logits])
def test_mismatched_sizes_name_both_shapes(loss):
    with pytest.raises(ShapeError, match=r"\(3, 1\).*\(4,\)"):
        loss(cr.tensor(np.zeros((3, 1))), np.zeros(4))


@pytest.mark.parametrize("loss", [ssr, mse, mae, binary_cross_entropy_with_logits])
def test_a_vector_and_a_column_match_either_way(loss):
    vector, column = np.array([0.2, 0.7, 0.4]), np.array([[0.0], [1.0], [1.0]])
    expected = loss(cr.tensor(vector), column.ravel()).item()
    assert loss(cr.tensor(vector), column).item() == pytest.approx(expected)
    assert loss(cr.tensor(vector.reshape(3, 1)), column.ravel()).item() == pytest.approx(expected)


@pytest.mark.parametrize("loss", [ssr, mse, mae, binary_cross_entropy_with_logits])
@pytest.mark.parametrize(
    ("predictions", "target"),
    [((2, 3), (3, 2)), ((3, 2), (6,)), ((6,), (3, 2)), ((1, 3), (3,)), ((3,), (1, 3))],
)
def test_a_target_of_the_same_size_but_another_shape_is_refused(loss, predictions, target):
    # reshaping it would pair predictions with other rows' values: mse gave 0.0 here
    values = np.arange(float(np.prod(predictions))) / 10
    p, y = cr.tensor(values.reshape(predictions)), values.reshape(target)
    name = loss.__name__
    with pytest.raises(ShapeError) as info:
        loss(p, y)
    assert str(info.value).startswith(
        f"{name}: predictions of shape {predictions} and target of shape {target} do not match"
    )


def test_the_same_target_again_reuses_its_node_while_it_is_a_constant():
    target = np.array([0.0, 1.0, 0.0])
    predicted = cr.tensor([1.0, 1.0, 1.0], requires_grad=True)
    first = ssr(predicted, target).inputs[0].inputs[0].inputs[0]
    assert first.name == "observed" and first.data is target
    again = ssr(predicted, target)
    assert again.inputs[0].inputs[0].inputs[0] is first
    target[1] = 3.0  # the node wraps the array: it sees its current numbers
    assert ssr(predicted, target).item() == 1 + 4 + 1
    first.name = "renamed"  # changed by someone: a fresh node
    assert ssr(predicted, target).inputs[0].inputs[0].inputs[0] is not first


def test_binary_cross_entropy_is_stable_for_huge_logits():
    z = cr.tensor([1000.0, -1000.0, 1000.0, -1000.0], requires_grad=True)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = binary_cross_entropy_with_logits(z, y)
    assert loss.item() == pytest.approx((0 + 0 + 1000 + 1000) / 4)
    loss.backward()
    np.testing.assert_allclose(z.grad, (np.array([1.0, 0.0, 1.0, 0.0]) - y) / 4)
    assert np.isfinite(z.grad).all()


def test_cross_entropy_is_stable_for_huge_logits():
    z = cr.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 1000.0]], requires_grad=True)
    loss = cross_entropy(z, [0, 2])
    assert loss.item() == pytest.approx(np.log(2) / 2)
    loss.backward()
    assert np.isfinite(z.grad).all()
    np.testing.assert_allclose(z.grad, [[0, 0, 0], [0, 0.25, -0.25]], rtol=0, atol=1e-12)


def test_cross_entropy_labels_and_one_hot_agree():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    one_hot = np.eye(4)[labels]
    assert cross_entropy(cr.tensor(z), labels).item() == pytest.approx(
        cross_entropy(cr.tensor(z), one_hot).item()
    )
    # labels written as floats, or as a column, are fine too
    assert cross_entropy(cr.tensor(z), labels.astype(float).reshape(5, 1)).item() == (
        pytest.approx(cross_entropy(cr.tensor(z), labels).item())
    )


def test_cross_entropy_refusals():
    z = cr.tensor(np.zeros((3, 4)))
    with pytest.raises(ChainruleError, match="0 to 3.*found 4 at row 2"):
        cross_entropy(z, [0, 1, 4])
    with pytest.raises(ChainruleError, match="found 0.5 at row 1"):
        cross_entropy(z, [0, 0.5, 1])
    with pytest.raises(ShapeError, match=r"\(3, 4\).*\(2,\)"):
        cross_entropy(z, [0, 1])
    with pytest.raises(ShapeError, match=r"labels of shape \(3,\).*got \(1, 3\)"):
        cross_entropy(z, [[0, 1, 2]])  # one row of three labels is not three rows
    with pytest.raises(ShapeError, match="rows, classes"):
        cross_entropy(cr.tensor(np.zeros(4)), [1])


def test_binary_cross_entropy_refuses_targets_outside_0_1():
    with pytest.raises(ChainruleError, match="found 2 at row 1"):
        binary_cross_entropy_with_logits(cr.tensor([0.0, 0.0]), [1.0, 2.0])


def test_float32_predictions_give_a_float32_loss():
    p = cr.tensor([[0.5], [0.25]], dtype="float32", requires_grad=True)
    loss = mse(p, [0.0, 1.0])
    assert loss.dtype == np.float32
    loss.backward()
    assert p.grad.dtype == np.float32


def test_registry_and_get_loss():
    assert set(LOSSES) == {
        "ssr",
        "mse",
        "mae",
        "binary_cross_entropy_with_logits",
        "binary_cross_entropy",
        "cross_entropy",
    }
    assert get_loss("SSR") is ssr
    assert get_loss("binary-cross-entropy-with-logits") is binary_cross_entropy_with_logits
    with pytest.raises(ChainruleError, match="unknown loss 'hinge'.*ssr, mse, mae"):
        get_loss("hinge")


def _example(spec, rows, rng):
    """Predictions and a target that the loss ``spec`` takes, with ``rows`` rows."""
    if spec.task == "multiclass":
        return rng.normal(size=(rows, 3)), rng.integers(0, 3, size=rows)
    if spec.takes == "probabilities":
        return rng.uniform(0.2, 0.8, size=(rows, 1)), rng.integers(0, 2, size=rows).astype(float)
    if spec.task == "binary":
        return rng.normal(size=(rows, 1)), rng.integers(0, 2, size=rows).astype(float)
    return rng.normal(size=(rows, 1)), rng.normal(size=rows)


def test_each_loss_record_is_keyed_by_its_name_and_holds_its_function():
    assert [spec.name for spec in LOSSES.values()] == list(LOSSES)
    for name, spec in LOSSES.items():
        assert spec.function.__name__ == name and get_loss(name) is spec.function
        assert loss_spec(name) is spec and loss_spec(spec.function) is spec
        assert spec.task in ("regression", "binary", "multiclass")
        assert spec.reduction in ("sum", "mean")


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_loss_node_carries_its_records_display_name(name):
    spec = LOSSES[name]
    predictions, target = _example(spec, 4, np.random.default_rng(0))
    node = spec(cr.tensor(predictions), target)
    assert node.name == spec.display and node.name != name


@pytest.mark.parametrize("name", list(LOSSES))
def test_the_reduction_combines_the_losses_of_chunks_of_rows(name):
    spec = LOSSES[name]
    predictions, target = _example(spec, 10, np.random.default_rng(1))
    whole = spec(cr.tensor(predictions), target).item()
    parts = [spec(cr.tensor(predictions[i : i + 4]), target[i : i + 4]).item() for i in (0, 4, 8)]
    sizes = [4, 4, 2]
    if spec.reduction == "sum":
        assert sum(parts) == pytest.approx(whole, rel=1e-12)
    else:
        assert np.dot(parts, sizes) / 10 == pytest.approx(whole, rel=1e-12)
        assert sum(parts) != pytest.approx(whole, rel=1e-3)


@pytest.mark.parametrize("name", list(LOSSES))
def test_the_curvature_is_the_second_derivative_of_a_row(name):
    spec = LOSSES[name]
    predictions, target = _example(spec, 1, np.random.default_rng(2))
    if spec.task == "regression":
        predictions = target.reshape(1, 1)  # a residual of 0 at shift 0 (mae's kink)
    h = 1e-3

    def second(shift):  # d2 loss / d prediction2, moving the row's first prediction
        def at(x):
            moved = predictions.copy()
            moved[0, 0] += x
            return spec(cr.tensor(moved), target).item()

        return (at(shift + h) - 2 * at(shift) + at(shift - h)) / h**2

    far = 0.15 if spec.takes == "probabilities" else 5.0  # probabilities stay in [0, 1]
    if spec.curvature is None:  # not one number everywhere
        assert second(0.0) != pytest.approx(second(far), rel=1e-2, abs=1e-3)
    else:
        assert second(0.0) == pytest.approx(spec.curvature, rel=1e-5)
        assert second(5.0) == pytest.approx(spec.curvature, rel=1e-5)


def test_a_users_own_loss_is_wrapped_in_a_record_named_after_it():
    def half_ssr(predictions, target):
        return ssr(predictions, target) * 0.5

    spec = loss_spec(half_ssr)
    assert spec == LossSpec("half_ssr", "half_ssr", half_ssr)
    assert spec.task is None and spec.reduction is None and spec.curvature is None
    assert spec(cr.tensor([1.0]), [0.0]).item() == 0.5
    assert loss_spec(spec) is spec
    assert loss_spec(lambda p, t: ssr(p, t)).name == "<lambda>"
    with pytest.raises(ChainruleError, match="a loss is a name .* or a function.*got int"):
        loss_spec(3)


def test_each_task_gets_its_first_loss_by_default():
    assert loss_for_task("regression") is LOSSES["ssr"]
    assert loss_for_task("binary") is LOSSES["binary_cross_entropy_with_logits"]
    assert loss_for_task("multiclass") is LOSSES["cross_entropy"]
    with pytest.raises(ChainruleError, match="unknown task 'ranking'"):
        loss_for_task("ranking")


# ---------------------------------------------------------------------------------------
# PyTorch agreement (values and gradients, float64)
# ---------------------------------------------------------------------------------------


def _both(loss, torch_loss, predictions, target, torch_target):
    torch = pytest.importorskip("torch")
    p = cr.tensor(predictions, requires_grad=True)
    value = loss(p, target)
    value.backward()
    tp = torch.tensor(predictions, requires_grad=True)
    expected = torch_loss(tp, torch_target)
    expected.backward()
    np.testing.assert_allclose(value.item(), expected.item(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_losses_match_torch(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    pred, target = rng.normal(size=(7, 1)), rng.normal(size=(7, 1))
    tt = torch.tensor(target)
    _both(ssr, torch.nn.MSELoss(reduction="sum"), pred, target, tt)
    _both(mse, torch.nn.MSELoss(), pred, target, tt)
    _both(mae, torch.nn.L1Loss(), pred, target, tt)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_binary_cross_entropy_matches_torch(scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits = scale * rng.normal(size=9)
    target = np.array([0, 1, 1, 0, 1, 0, 0.25, 1, 0.0])
    _both(
        binary_cross_entropy_with_logits,
        torch.nn.BCEWithLogitsLoss(),
        logits,
        target,
        torch.tensor(target),
    )


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_cross_entropy_matches_torch(scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    logits = scale * rng.normal(size=(6, 5))
    labels = rng.integers(0, 5, size=6)
    _both(cross_entropy, torch.nn.CrossEntropyLoss(), logits, labels, torch.tensor(labels))
    probabilities = rng.dirichlet(np.ones(5), size=6)
    _both(
        cross_entropy,
        torch.nn.CrossEntropyLoss(),
        logits,
        probabilities,
        torch.tensor(probabilities),
    )


# -- PyTorch's names: probabilities vs logits, and a sigmoid applied twice or never -------


def test_binary_cross_entropy_takes_probabilities_as_torch_does():
    torch = pytest.importorskip("torch")
    p = np.array([0.1, 0.5, 0.9, 0.999, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    ours = cr.tensor(p, requires_grad=True)
    loss = binary_cross_entropy(ours, y)
    loss.backward()
    theirs = torch.tensor(p[:4], requires_grad=True)
    reference = torch.nn.functional.binary_cross_entropy(theirs, torch.tensor(y[:4]))
    reference.backward()
    # The first four rows as torch computes them; the exact 0 and 1 cost nothing here.
    assert loss.item() * 6 / 4 == pytest.approx(reference.item(), rel=1e-12)
    np.testing.assert_allclose(ours.grad[:4] * 6 / 4, theirs.grad.numpy(), rtol=1e-12)
    # The same numbers from logits: sigmoid then BCE == BCE with logits.
    z = cr.tensor([-2.0, 0.3, 4.0])
    via_sigmoid = binary_cross_entropy(cr.sigmoid(z), [0, 1, 1]).item()
    assert via_sigmoid == pytest.approx(binary_cross_entropy_with_logits(z, [0, 1, 1]).item())


def test_binary_cross_entropy_of_logits_is_refused_naming_the_other_loss():
    with pytest.raises(ChainruleError, match=r"found 2.5 at row 1; for logits use binary_cr"):
        binary_cross_entropy(cr.tensor([0.5, 2.5]), [0, 1])


@pytest.mark.parametrize(
    ("output", "loss", "problem"),
    [
        ("sigmoid", "binary_cross_entropy_with_logits", "would be applied twice"),
        ("identity", "binary_cross_entropy", "applies no sigmoid"),
        ("sigmoid", "binary_cross_entropy", None),
        ("identity", "binary_cross_entropy_with_logits", None),
    ],
)
def test_a_sigmoid_applied_twice_or_never_is_refused_by_train(output, loss, problem):
    from chainrule import nn, train
    from chainrule.datasets import load_dataset

    model = nn.MLP([2, 4, 1], output_activation=output)
    data = load_dataset("moons", n=20)
    if problem is None:
        assert train(model, data, loss=loss, stop={"max_steps": 2}).steps
    else:
        with pytest.raises(ChainruleError, match=problem):
            train(model, data, loss=loss, stop={"max_steps": 2})
    assert (sigmoid_mismatch(loss, model.output_sigmoid) is None) == (problem is None)
