"""Compiled steps: a traced forward and backward replayed as numpy calls equals eager."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.compile import CompileError, encoded_target
from chainrule.datasets import load_dataset
from chainrule.errors import ChainruleError, GraphError
from chainrule.scenario import load_scenario
from chainrule.scenario.builtin import builtin_scenarios

SCENARIOS = [info.name for info in builtin_scenarios()]
SEED = """
y1 = softplus(w1 * dosage + b1)
y2 = softplus(w2 * dosage + b2)
predicted = w3 * y1 + w4 * y2 + b3
"""


def _settings(s):
    return dict(
        loss=s.loss,
        optimizer=s.optimizer,
        learning_rate=s.learning_rate,
        stop=s.stop,
        batch_size=s.batch_size,
        seed=s.seed,
    )


def _assert_same_run(eager_model, eager, compiled_model, compiled):
    assert compiled.num_steps == eager.num_steps
    assert compiled.stop_reason == eager.stop_reason
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=0, atol=1e-12)
    assert compiled.final_loss == pytest.approx(eager.final_loss, abs=1e-12)
    for (name, a), (_, b) in zip(
        eager_model.named_parameters(), compiled_model.named_parameters(), strict=True
    ):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", SCENARIOS)
def test_compiled_training_equals_eager_on_every_builtin_scenario(name):
    s = load_scenario(name)
    m_eager, m_compiled = s.build_model(), s.build_model()
    eager = cr.train(m_eager, s.data, **_settings(s))
    compiled = cr.train(m_compiled, s.data, compile=True, **_settings(s))
    _assert_same_run(m_eager, eager, m_compiled, compiled)
    # What the ledger reads: every step's slopes, step sizes and new values.
    if eager.detail:
        for a, b in zip(eager.steps, compiled.steps, strict=True):
            for key in a.slopes:
                assert b.slopes[key] == pytest.approx(a.slopes[key], abs=1e-12)
                assert b.new_values[key] == pytest.approx(a.new_values[key], abs=1e-12)
    if eager.final_accuracy is not None:
        assert compiled.final_accuracy == eager.final_accuracy


def test_compiled_training_equals_eager_with_leaky_relus():
    # an activation without a fused loop of its own replays on the op table's numpy calls
    s = load_scenario("iris", overrides={"model.activation": "leaky_relu"})
    m_eager, m_compiled = s.build_model(), s.build_model()
    eager = cr.train(m_eager, s.data, **_settings(s))
    compiled = cr.train(m_compiled, s.data, compile=True, **_settings(s))
    _assert_same_run(m_eager, eager, m_compiled, compiled)
    assert compiled.final_accuracy == eager.final_accuracy


def test_compiled_training_equals_eager_on_digits_in_minibatches():
    data = load_dataset("digits")
    runs = []
    for compile_ in (False, True):
        model = nn.MLP([64, 32, 10], activation="relu", seed=3)
        history = cr.train(
            model,
            data,
            loss="cross_entropy",
            optimizer="sgd",
            learning_rate=0.1,
            batch_size=64,
            stop={"max_steps": 40},  # more than one epoch: the smaller last batch too
            compile=compile_,
        )
        runs.append((model, history))
    _assert_same_run(*runs[0], *runs[1])
    np.testing.assert_allclose(runs[1][1].accuracies, runs[0][1].accuracies, atol=0)


def test_a_compiled_trainer_steps_as_the_eager_one_and_the_explainer_reads_it():
    s = load_scenario("main-ideas")
    trainer = cr.Trainer(s.build_model(), s.data, learning_rate=0.1, stop=s.stop, compile=True)
    assert trainer.advance(1) == 1
    assert trainer.history.steps[0].slopes["b3"] == pytest.approx(-15.6551083806, abs=1e-9)
    trainer.advance()
    assert trainer.history.stop_reason == "step_size"
    assert trainer.history.final_values["b3"] == pytest.approx(2.6089111372, abs=1e-9)
    assert trainer.step_fn is not None and trainer.step_fn.traces == 1


def test_compile_returns_the_loss_and_the_gradients_of_eager_backward():
    rng = np.random.default_rng(0)
    w0, x0, y0 = rng.normal(size=(3, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))

    def loss(w, x, y):
        return ((cr.tanh(x @ w) - y) ** 2).mean() + 0.5 * (w * w).sum()

    w = cr.tensor(w0, requires_grad=True)
    eager = loss(w, cr.tensor(x0), cr.tensor(y0))
    eager.backward()
    f = cr.compile(loss)
    value, (slope,) = f(cr.tensor(w0, requires_grad=True), cr.tensor(x0), cr.tensor(y0))
    assert value == pytest.approx(eager.item(), abs=1e-12)
    np.testing.assert_allclose(slope, w.grad, rtol=0, atol=1e-12)
    # New data of the same shape: no new trace, and the numbers follow the data.
    x1 = rng.normal(size=(5, 3))
    w.grad = None
    eager = loss(w, cr.tensor(x1), cr.tensor(y0))
    eager.backward()
    value, (slope,) = f(cr.tensor(w0, requires_grad=True), cr.tensor(x1), cr.tensor(y0))
    assert f.traces == 1
    assert value == pytest.approx(eager.item(), abs=1e-12)
    np.testing.assert_allclose(slope, w.grad, rtol=0, atol=1e-12)


def test_a_changed_shape_traces_again():
    f = cr.compile(lambda w, x: (w * x).sum())
    w = cr.tensor(2.0, requires_grad=True)
    assert f(w, cr.tensor([1.0, 2.0])) == (6.0, (np.array(3.0),))
    assert f(w, cr.tensor([1.0, 2.0, 3.0])) == (12.0, (np.array(6.0),))
    assert f.traces == 2
    assert f(w, cr.tensor([4.0, 5.0]))[0] == 18.0  # the first program is kept
    assert f.traces == 2


def test_grad_mode_and_frozen_arguments_trace_again():
    f = cr.compile(lambda a, b: (a * b).sum())
    a, b = cr.tensor([1.0, 2.0], requires_grad=True), cr.tensor([3.0, 4.0])
    assert f(a, b)[1][0].tolist() == [3.0, 4.0]
    with cr.no_grad():
        assert f(a, b) == (11.0, None)
    b.requires_grad = True
    _, (ga, gb) = f(a, b)
    assert gb.tolist() == [1.0, 2.0] and f.traces == 3


def test_captured_parameters_are_read_at_each_call():
    layer = nn.Linear(2, 1, seed=0)
    f = cr.compile(lambda x: layer(x).sum())
    x = cr.tensor([[1.0, 2.0]], requires_grad=True)
    before, (g,) = f(x)
    cr.inplace(layer.weight)[...] = 0.0
    after, (g2,) = f(x)
    assert after == pytest.approx(float(layer.bias.data[0]))
    assert before != after and not np.array_equal(g, g2)


def test_data_dependent_branch_is_traced_as_taken():
    def f(x):
        y = (x * x).sum()
        return y * 2 if y.item() > 1 else y  # the trace fixes this branch

    compiled = cr.compile(f)
    assert compiled(cr.tensor([2.0], requires_grad=True))[0] == 8.0
    assert compiled(cr.tensor([0.5], requires_grad=True))[0] == 0.5  # eager would say 0.25


@pytest.mark.parametrize(
    ("fn", "args", "message"),
    [
        (lambda x: 3.0, [[1.0]], "must return Tensors made by chainrule ops .*got float"),
        (lambda x: x * 2, [[1.0, 2.0]], "one-element loss first, got shape \\(2,\\)"),
        (lambda x: x.sum(), [np.array(["a"])], "argument 1 must hold real numbers"),
        (lambda x: x.sum(), [object()], "argument 1 must be a Tensor or an array"),
    ],
)
def test_what_cannot_be_traced_is_refused_clearly(fn, args, message):
    with pytest.raises(CompileError, match=message):
        cr.compile(fn)(*args)
    assert issubclass(CompileError, ChainruleError)


def test_a_loss_that_does_not_reach_the_arguments_is_a_graph_error():
    f = cr.compile(lambda w, x: (x * 2).sum())
    with pytest.raises(GraphError, match="does not depend on anything to differentiate"):
        f(cr.tensor(1.0, requires_grad=True), cr.tensor([1.0]))


def test_compile_refuses_a_loss_made_from_the_batch_outside_the_graph():
    data = load_dataset("moons", n=40)

    def my_loss(predictions, target):  # np.asarray(...) * 1.0: a new array of the batch
        return ((predictions - cr.tensor(np.asarray(target) * 1.0)) ** 2).sum()

    with pytest.raises(CompileError, match="outside the graph .*without compile=True"):
        cr.train(nn.MLP([2, 4, 1], seed=0), data, loss=my_loss, batch_size=8, compile=True)


def test_encoded_target_makes_one_hot_rows_only_for_labels():
    np.testing.assert_array_equal(
        encoded_target("cross_entropy", np.array([2.0, 0.0]), 3), [[0, 0, 1], [1, 0, 0]]
    )
    y = np.array([0.5, 1.0])
    assert encoded_target("ssr", y, 1) is y
    bad = np.array([0.5, 1.0])
    assert encoded_target("cross_entropy", bad, 2) is bad


def test_compiled_float32_training_stays_float32_and_equals_eager():
    data = load_dataset("digits")
    X, y = data.X.astype(np.float32)[:300], data.target[:300]
    runs = []
    for compile_ in (False, True):
        model = nn.MLP([64, 16, 10], activation="relu", seed=5)
        for p in model.parameters():
            p.data = p.data.astype(np.float32)
        history = cr.train(
            model, (X, y), loss="cross_entropy", optimizer="sgd", batch_size=64,
            stop={"max_steps": 12}, compile=compile_,
        )  # fmt: skip
        assert all(p.dtype == np.float32 for p in model.parameters())
        runs.append((model, history))
    (m_eager, eager), (m_compiled, compiled) = runs
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-6)
    for a, b in zip(m_eager.parameters(), m_compiled.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-6)


def test_a_compiled_descent_leaves_the_last_slopes_in_grad_and_can_be_stepped_on():
    s = load_scenario("main-ideas")
    m_eager, m_compiled = s.build_model(), s.build_model()
    cr.Trainer(m_eager, s.data, learning_rate=0.1, stop={"max_steps": 3}).advance()
    trainer = cr.Trainer(m_compiled, s.data, learning_rate=0.1, stop=s.stop, compile=True)
    assert trainer.descent is not None  # gradient descent: the step is the flat one
    trainer.advance(3)
    for a, b in zip(m_eager.parameters(), m_compiled.parameters(), strict=True):
        assert b.data == pytest.approx(a.data, abs=1e-12)
        if a.grad is not None:
            assert b.grad == pytest.approx(a.grad, abs=1e-12)
    assert trainer.advance() == 7 and trainer.history.stop_reason == "step_size"


@pytest.mark.parametrize("lr", [1e6, 1e200])
@pytest.mark.parametrize("detail", [True, False])
def test_a_compiled_run_diverges_as_the_eager_one(lr, detail):
    # Without detail no step log keeps the values: the compiled descent keeps the values
    # before a step by swapping two vectors, and undoes the step from there.
    s = load_scenario("main-ideas")
    runs = []
    for compile_ in (False, True):
        model = s.build_model()
        history = cr.train(model, s.data, learning_rate=lr, stop={"max_steps": 50},
                           compile=compile_, detail=detail)  # fmt: skip
        runs.append((model, history))
    (m_eager, eager), (m_compiled, compiled) = runs
    assert compiled.stop_reason == eager.stop_reason == "diverged"
    assert compiled.divergence == eager.divergence
    assert compiled.num_steps == eager.num_steps
    assert compiled.final_values == eager.final_values  # the undone step is undone alike


def test_compiled_relu_rule_keeps_nan_and_zero_as_eager():
    def loss(x):
        return (cr.relu(x) * 3.0).sum()

    x0 = np.array([-1.0, 0.0, 2.0, np.nan])
    x = cr.tensor(x0, requires_grad=True)
    loss(x).backward()
    _, (g,) = cr.compile(loss)(cr.tensor(x0, requires_grad=True))
    np.testing.assert_array_equal(g, x.grad)  # [0, 0, 3, nan]
    assert np.isnan(g[3]) and g.tolist()[:3] == [0.0, 0.0, 3.0]


def _seed_runs(small):
    s = load_scenario("main-ideas")
    model = s.build_model()
    model.unfreeze()  # all seven weights: a program of single numbers and 3-row vectors
    trainer = cr.Trainer(model, s.data, learning_rate=0.05, stop={"max_steps": 30}, compile=True)
    trainer.step_fn.small = small
    trainer.advance()
    return model, trainer


def test_a_small_program_replays_on_numba_and_equals_the_numpy_replay_and_eager():
    pytest.importorskip("numba")
    from chainrule.compile import SmallProgram

    m_small, small = _seed_runs(True)
    m_numpy, numpy_replay = _seed_runs(False)
    (program,) = small.step_fn._programs.values()
    assert isinstance(program.small, SmallProgram)
    assert next(iter(numpy_replay.step_fn._programs.values())).small is None
    s = load_scenario("main-ideas")
    m_eager = s.build_model()
    m_eager.unfreeze()
    eager = cr.train(m_eager, s.data, learning_rate=0.05, stop={"max_steps": 30})
    _assert_same_run(m_eager, eager, m_small, small.history)
    _assert_same_run(m_eager, eager, m_numpy, numpy_replay.history)
    for a, b in zip(eager.steps, small.history.steps, strict=True):
        for key in a.slopes:
            assert b.slopes[key] == pytest.approx(a.slopes[key], abs=1e-12)


def test_programs_of_matrices_or_unknown_ops_stay_on_numpy():
    pytest.importorskip("numba")
    data = load_dataset("moons", n=20)
    model = nn.MLP([2, 3, 1], activation="tanh", seed=0)  # matmul, tanh: not in the table
    trainer = cr.Trainer(model, data, loss="mse", stop={"max_steps": 2}, compile=True)
    trainer.advance()
    assert all(p.small is None for p in trainer.step_fn._programs.values())


def test_gradients_written_into_arrays_of_the_wrong_shape_are_refused():
    from chainrule.compile import Program

    w = cr.tensor([1.0, 2.0], requires_grad=True)
    program, _ = Program.trace(lambda w: (w * w).sum(), [w], [], [w])
    with pytest.raises(CompileError, match=r"shape \(2,\) \(float64\) cannot go into .*\(3,\)"):
        program.write_gradients_into([np.zeros(3)])


def test_the_cross_entropy_chain_is_replayed_fused_with_the_eager_numbers():
    from chainrule.compile import Program

    rng = np.random.default_rng(3)
    w0, x0 = rng.normal(size=(4, 5)), rng.normal(size=(6, 4))
    soft = rng.dirichlet(np.ones(5), size=6)  # class probabilities, not one-hot rows

    def loss(w, x, t):
        z = x @ w
        ce = -(cr.log_softmax(z, axis=1) * t).sum(axis=1).mean()
        return 2.0 * ce + (z * z).mean()  # not the root, and z read twice

    w = cr.tensor(w0, requires_grad=True)
    eager = loss(w, cr.tensor(x0), cr.tensor(soft))
    eager.backward()
    f = cr.compile(loss)
    for _ in range(2):  # the replay reuses its buffers: the second call must agree too
        value, (slope,) = f(cr.tensor(w0, requires_grad=True), cr.tensor(x0), soft)
        assert value == pytest.approx(eager.item(), abs=1e-12)
        np.testing.assert_allclose(slope, w.grad, rtol=0, atol=1e-12)
    leaves = [cr.tensor(w0, requires_grad=True), cr.tensor(x0), cr.tensor(soft)]
    program, _ = Program.trace(loss, leaves, [x0, soft], leaves[:1])
    assert len(program.forward) == program.ops - 4  # five ops replayed as one


def test_a_cross_entropy_whose_inner_result_is_read_elsewhere_is_not_fused():
    from chainrule.compile import Program

    rng = np.random.default_rng(4)
    w0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 3))
    onehot = np.eye(4)[rng.integers(0, 4, size=5)]

    def loss(w, x, t):
        lp = cr.log_softmax(x @ w, axis=1)
        return -(lp * t).sum(axis=1).mean() + lp.sum() * 0.01

    w = cr.tensor(w0, requires_grad=True)
    eager = loss(w, cr.tensor(x0), cr.tensor(onehot))
    eager.backward()
    value, (slope,) = cr.compile(loss)(cr.tensor(w0, requires_grad=True), cr.tensor(x0), onehot)
    assert value == pytest.approx(eager.item(), abs=1e-12)
    np.testing.assert_allclose(slope, w.grad, rtol=0, atol=1e-12)
    leaves = [cr.tensor(w0, requires_grad=True), cr.tensor(x0), cr.tensor(onehot)]
    program, _ = Program.trace(loss, leaves, [x0, onehot], leaves[:1])
    assert len(program.forward) == program.ops


def test_a_compiled_run_without_detail_advanced_in_pieces_equals_eager():
    # The values move between two vectors at each step; every program (the numba one of
    # the seed too) and the parameters' arrays must follow them across calls of advance.
    s = load_scenario("main-ideas")
    runs = []
    for compile_ in (False, True):
        model = s.build_model()
        trainer = cr.Trainer(model, s.data, learning_rate=0.1, stop={"max_steps": 25},
                             detail=False, compile=compile_)  # fmt: skip
        while not trainer.done:
            trainer.advance(4)
        runs.append((model, trainer.history))
    (m_eager, eager), (m_compiled, compiled) = runs
    _assert_same_run(m_eager, eager, m_compiled, compiled)
    assert compiled.final_values == eager.final_values


def test_a_small_float32_program_replays_on_numba_and_stays_near_eager_float32():
    pytest.importorskip("numba")
    from chainrule.compile import SmallProgram

    s = load_scenario("main-ideas")
    data = (s.data.X.astype(np.float32), s.data.target.astype(np.float32))
    values = {name: p.item() for name, p in s.build_model().named_parameters()}
    runs = []
    for compile_ in (False, True):
        model = cr.Formula(SEED, inputs=["dosage"], values=values, dtype="float32")
        trainer = cr.Trainer(
            model, data, learning_rate=0.05, stop={"max_steps": 30}, compile=compile_
        )
        trainer.advance()
        runs.append((model, trainer))
    (m_eager, eager), (m_small, small) = runs
    (program,) = small.step_fn._programs.values()
    assert isinstance(program.small, SmallProgram) and program.small.mem.dtype == np.float32
    assert all(p.dtype == np.float32 for p in m_small.parameters())
    np.testing.assert_allclose(small.history.losses, eager.history.losses, rtol=1e-5)
    for a, b in zip(m_eager.parameters(), m_small.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-5, atol=1e-6)
