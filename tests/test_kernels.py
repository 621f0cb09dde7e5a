"""The fused loops of the compiled replay: numpy's numbers, in one pass each."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import kernels, nn
from chainrule.datasets import load_dataset

numba = pytest.importorskip("numba")
K = kernels.get()
RNG = np.random.default_rng(11)


def _matrix(rows=6, cols=5):
    z = RNG.normal(size=(rows, cols))
    z[0, 0], z[1, 1], z[2, 2] = 0.0, np.nan, -0.0
    return z


def test_bias_relu_and_bias_add_are_numpys_sum_and_maximum_in_place_with_nan_kept():
    z, b = _matrix(), RNG.normal(size=5)
    expected = np.maximum(z + b, 0.0)
    summed = z + b
    out = z.copy()
    K.bias_relu(out, b)
    np.testing.assert_array_equal(out, expected)
    assert np.isnan(out[1, 1])
    K.bias_add(z, b)
    np.testing.assert_array_equal(z, summed)


def test_relu_rules_are_the_sign_of_the_result_times_g_and_sum_down_the_columns():
    r = np.maximum(_matrix(), 0.0)
    g = RNG.normal(size=r.shape)
    out, total = np.empty_like(g), np.empty(r.shape[1])
    K.relu_rule(g, r, out)
    np.testing.assert_array_equal(out, g * np.sign(r))  # NaN where r is NaN
    out2 = np.empty_like(g)
    K.relu_rule_sum(g, r, out2, total)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(total, np.add.reduce(out, axis=0))


@pytest.mark.parametrize("shape", [(64, 10), (200, 2), (3, 128)])
def test_column_sum_adds_row_after_row_as_numpy_does(shape):
    g = RNG.normal(size=shape) * np.exp(RNG.normal(size=shape) * 5)  # order shows in bits
    total = np.empty(shape[1])
    K.column_sum(g, total)
    np.testing.assert_array_equal(total, np.add.reduce(g, axis=0))


def test_cross_entropy_and_its_rule_are_the_op_tables():
    z = RNG.normal(size=(8, 4)) * 3
    t = np.eye(4)[RNG.integers(0, 4, size=8)]
    shifted, lp = np.empty_like(z), np.empty_like(z)
    K.row_shift(z, shifted)
    np.testing.assert_array_equal(shifted, z - z.max(axis=1, keepdims=True))
    value = K.cross_entropy(shifted, np.exp(shifted, out=lp), t)
    zt = cr.tensor(z, requires_grad=True)
    loss = -(cr.log_softmax(zt, axis=1) * t).sum(axis=1).mean()
    loss.backward()
    assert value == pytest.approx(loss.item(), abs=1e-15)
    shifted = z - z.max(axis=1, keepdims=True)
    np.testing.assert_allclose(lp, shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))
    slope = np.empty_like(z)
    K.cross_entropy_rule(np.exp(lp), t, -1.0 / len(z), slope)
    np.testing.assert_allclose(slope, zt.grad, rtol=0, atol=1e-16)


def test_descend_is_two_numpy_calls_and_tells_a_non_finite_value():
    values, slopes = RNG.normal(size=50), RNG.normal(size=50)
    sizes, new = np.empty(50), np.empty(50)
    assert K.descend(values, slopes, 0.1, sizes, new)
    np.testing.assert_array_equal(sizes, slopes * 0.1)
    np.testing.assert_array_equal(new, values - slopes * 0.1)
    for bad in (np.inf, -np.inf, np.nan):
        slopes[7] = bad
        assert not K.descend(values, slopes, 0.1, sizes, new)


def _digits_run(monkeypatch, fused, dtype=np.float64):
    if not fused:
        monkeypatch.setattr(kernels, "get", lambda: None)
    model = nn.MLP([64, 32, 16, 10], activation="relu", seed=5)
    data = load_dataset("digits")
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    trainer = cr.Trainer(
        model,
        (data.X.astype(dtype), data.target),
        loss="cross_entropy",
        optimizer="sgd",
        learning_rate=0.1,
        batch_size=64,
        stop={"max_steps": 35},  # past the first epoch: the last, smaller batch too
        compile=fused is not None,
    )
    trainer.advance()
    monkeypatch.undo()
    return model, trainer


def test_a_compiled_mlp_runs_its_layers_on_the_loops_with_the_numpy_replays_numbers(
    monkeypatch,
):
    m_fused, fused = _digits_run(monkeypatch, True)
    m_numpy, numpy_replay = _digits_run(monkeypatch, False)
    m_eager, eager = _digits_run(monkeypatch, None)
    program = next(iter(fused.step_fn._programs.values()))
    assert program.kernels is K
    assert len(program._bias_relus) == 2  # relu(x @ W + b), twice: one loop each
    assert len(program._relu_sums) == 2  # their rules sum the biases' slopes
    assert fused.descent._descend_values is not None
    numpy_program = next(iter(numpy_replay.step_fn._programs.values()))
    assert numpy_program.kernels is None and not numpy_program._bias_relus
    for m_other, other in ((m_numpy, numpy_replay), (m_eager, eager)):
        np.testing.assert_allclose(fused.history.losses, other.history.losses, atol=1e-12)
        assert fused.history.accuracies == other.history.accuracies
        assert fused.history.final_loss == pytest.approx(other.history.final_loss, abs=1e-12)
        for a, b in zip(m_fused.parameters(), m_other.parameters(), strict=True):
            np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12)


def test_the_fused_relu_keeps_the_nan_rule_of_eager():
    def loss(x, w, b):
        return (cr.relu(x @ w + b) * 3.0).sum()

    x0 = np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, 0.0]])
    w0, b0 = np.array([[1.0, -1.0], [2.0, 0.5]]), np.array([0.0, 0.0])
    w, b = cr.tensor(w0, requires_grad=True), cr.tensor(b0, requires_grad=True)
    loss(cr.tensor(x0), w, b).backward()
    f = cr.compile(loss)
    _, (gw, gb) = f(
        cr.tensor(x0), cr.tensor(w0, requires_grad=True), cr.tensor(b0, requires_grad=True)
    )
    ((program, _),) = f._programs.values()
    assert program._bias_relus and program._relu_sums  # the loops ran
    np.testing.assert_array_equal(gw, w.grad)  # NaN where eager has NaN
    np.testing.assert_array_equal(gb, b.grad)


def test_correct_counts_rows_whose_argmax_is_the_label():
    out = RNG.normal(size=(40, 5))
    out[3, 1] = out[3, 4] = 9.0  # a tie: the first one, as argmax
    out[5, 2] = np.nan  # NaN wins, as in argmax
    labels = RNG.integers(0, 5, size=40)
    labels[3], labels[5] = 1, 2
    assert K.correct(out, labels) == np.count_nonzero(out.argmax(axis=1) == labels)


def test_the_loops_keep_float32_numbers_as_numpy_rounds_them():
    z, b = _matrix().astype(np.float32), RNG.normal(size=5).astype(np.float32)
    out = z.copy()
    K.bias_relu(out, b)
    np.testing.assert_array_equal(out, np.maximum(z + b, np.float32(0)))
    g, total = RNG.normal(size=z.shape).astype(np.float32), np.empty(5, np.float32)
    K.relu_rule_sum(g, out, z, total)
    np.testing.assert_array_equal(z, g * np.sign(out))
    np.testing.assert_array_equal(total, np.add.reduce(z, axis=0))
    values, slopes = (RNG.normal(size=30).astype(np.float32) for _ in range(2))
    new = np.empty_like(values)
    assert K.descend_values(values, slopes, np.float32(0.1), new)
    np.testing.assert_array_equal(new, values - slopes * 0.1)  # numpy: 0.1 in float32


def test_a_compiled_float32_mlp_runs_on_the_loops_with_the_numpy_replays_numbers(monkeypatch):
    m_fused, fused = _digits_run(monkeypatch, True, np.float32)
    m_numpy, numpy_replay = _digits_run(monkeypatch, False, np.float32)
    program = next(iter(fused.step_fn._programs.values()))
    assert len(program._bias_relus) == 2 and fused.descent._descend_values is not None
    np.testing.assert_allclose(fused.history.losses, numpy_replay.history.losses, rtol=1e-6)
    for a, b in zip(m_fused.parameters(), m_numpy.parameters(), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-6)


def test_a_numba_that_does_not_import_leaves_the_numpy_replay(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if name == "numba":
            raise ImportError("Numba needs NumPy 2.3 or less")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(kernels, "_kernels", None)
    monkeypatch.setattr(kernels, "_unusable", False)
    monkeypatch.setattr(builtins, "__import__", no_numba)
    assert kernels.get() is None and not kernels.available()
    f = cr.compile(lambda w: (cr.relu(w) * w).sum())
    value, (slope,) = f(cr.tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True))
    assert value == pytest.approx(10.25)
    np.testing.assert_array_equal(slope, [[2.0, 0.0], [6.0, 1.0]])


# -- the numba replay of a program of matrix layers (LayerProgram) --------------------

compile_module = __import__("chainrule.compile", fromlist=["LayerProgram"])


def _classifier_run(monkeypatch, layers=True, sizes=(64, 64, 32, 10), data=None, batch=64):
    """A compiled run of a ReLU MLP classifier on digits; ``layers``: False keeps the
    numpy replay, None trains eagerly."""
    if layers is False:
        monkeypatch.setattr(compile_module.LayerProgram, "of", classmethod(lambda *a: None))
    model = nn.MLP(list(sizes), activation="relu", seed=7)
    trainer = cr.Trainer(
        model,
        data if data is not None else load_dataset("digits"),
        loss="cross_entropy",
        optimizer="sgd",
        learning_rate=0.1,
        batch_size=batch,
        stop={"max_steps": 30},  # past the first epoch: the last, smaller batch too
        compile=layers is not None,
    )
    trainer.advance()
    monkeypatch.undo()
    return model, trainer


def _assert_same_numbers(run, other, atol=1e-12):
    (m_a, a), (m_b, b) = run, other
    np.testing.assert_allclose(a.history.losses, b.history.losses, rtol=0, atol=atol)
    assert a.history.accuracies == b.history.accuracies
    assert a.history.final_loss == pytest.approx(b.history.final_loss, abs=atol)
    np.testing.assert_allclose(a.history.final_predictions, b.history.final_predictions, atol=atol)
    for p, q in zip(m_a.parameters(), m_b.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=0, atol=atol)


def _layer_programs(trainer):
    return [program.layers for program in trainer.step_fn._programs.values()]


needs_layers = pytest.mark.skipif(kernels.layers() is None, reason="needs scipy for numba's BLAS")


@needs_layers
def test_a_compiled_relu_classifier_replays_in_numba_calls_with_the_numpy_replays_numbers(
    monkeypatch,
):
    layered = _classifier_run(monkeypatch)
    programs = _layer_programs(layered[1])
    assert len(programs) == 2 and all(p is not None for p in programs)  # 64 rows, then 5
    ops = {int(op) for op in programs[0].code[:, 0]}
    assert {kernels.DOT, kernels.BIAS_RELU, kernels.RELU_RULE_SUM, kernels.TRANSPOSE} <= ops
    _assert_same_numbers(layered, _classifier_run(monkeypatch, layers=False))
    _assert_same_numbers(layered, _classifier_run(monkeypatch, layers=None))


@needs_layers
def test_a_slope_is_transposed_for_blas_only_below_the_work_limit(monkeypatch):
    transposed = _classifier_run(monkeypatch)
    monkeypatch.setattr(compile_module, "TRANSPOSED_MAX_WORK", 0)
    plain = _classifier_run(monkeypatch)
    assert kernels.TRANSPOSE in _layer_programs(transposed[1])[0].code[:, 0]
    assert kernels.TRANSPOSE not in _layer_programs(plain[1])[0].code[:, 0]
    _assert_same_numbers(transposed, plain)


@needs_layers
def test_a_full_batch_of_read_only_data_runs_on_the_layer_replay():
    data = load_dataset("digits")
    X = data.X[:300].copy()
    X.flags.writeable = False
    runs = []
    for compile_ in (True, False):
        model = nn.MLP([64, 16, 10], activation="relu", seed=2)
        trainer = cr.Trainer(
            model,
            (X, data.target[:300]),
            loss="cross_entropy",
            optimizer="gradient_descent",
            learning_rate=0.5,
            stop={"max_steps": 20},
            compile=compile_,
        )
        trainer.advance()
        runs.append((model, trainer))
    assert all(p is not None for p in _layer_programs(runs[0][1]))
    _assert_same_numbers(runs[0], runs[1])


@pytest.mark.parametrize(
    "activation, loss, dtype",
    [
        ("tanh", "cross_entropy", np.float64),  # no fused layer: the numpy replay
        ("relu", "mse", np.float64),  # a loss the table does not hold
        ("relu", "cross_entropy", np.float32),  # the cross-entropy's loop is float64 only
    ],
)
def test_programs_the_layer_replay_does_not_hold_stay_on_the_numpy_replay(activation, loss, dtype):
    data = load_dataset("digits")
    X, y = data.X[:200].astype(dtype), data.target[:200]
    if loss == "mse":
        y = np.eye(10, dtype=dtype)[y]
    model = nn.MLP([64, 16, 10], activation=activation, seed=1)
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    trainer = cr.Trainer(
        model,
        (X, y),
        loss=loss,
        optimizer="sgd",
        batch_size=50,
        stop={"max_steps": 3},
        compile=True,
    )
    trainer.advance()
    assert _layer_programs(trainer) == [None]
    assert np.isfinite(trainer.history.final_loss)


def test_without_scipy_there_is_no_layer_replay_and_training_is_unchanged(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(kernels, "_layers", None)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "scipy" else real_find_spec(name, *a),
    )
    assert kernels.layers() is None
    model, trainer = _classifier_run(monkeypatch)  # (undoes the patches when done)
    assert _layer_programs(trainer) == [None, None]
    assert kernels.layers() is not None or importlib.util.find_spec("scipy") is None
    _assert_same_numbers((model, trainer), _classifier_run(monkeypatch, layers=None))


@needs_layers
def test_the_layer_replays_products_take_each_operand_or_its_transpose():
    replay = kernels.layers()
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 5))
    scratch = np.zeros(100)
    # descriptors: 0 unused; 1: a (3x4) in the scratch at 1; 2: b (4x5) at 13; 3: out (3x5)
    # at 33; 4: a.T stored (4x3) at 48; 5: b.T stored (5x4) at 60
    desc = np.array(
        [[2, 0, 1, 1], [2, 1, 3, 4], [2, 13, 4, 5], [2, 33, 3, 5], [2, 48, 4, 3], [2, 60, 5, 4]]
    )
    scratch[1:13], scratch[13:33] = a.ravel(), b.ravel()
    empty = np.zeros(0)
    for flags, left, right in ((0, 1, 2), (1, 4, 2), (2, 1, 5), (3, 4, 5)):
        code = np.array(
            [
                [kernels.TRANSPOSE, 4, 1, 0, 0, 0],  # a.T and b.T, for the flags
                [kernels.TRANSPOSE, 5, 2, 0, 0, 0],
                [kernels.DOT, 3, left, right, 0, flags],
            ]
        )
        scratch[33:48] = 0.0
        replay(code, desc, 0, 3, empty, empty, scratch, empty, empty)
        np.testing.assert_allclose(scratch[33:48].reshape(3, 5), a @ b, rtol=1e-14)


@needs_layers
def test_scratch_arrays_share_room_only_when_their_rows_do_not_overlap(monkeypatch):
    _, trainer = _classifier_run(monkeypatch)
    program = _layer_programs(trainer)[0]
    spans: dict[int, list[int]] = {}
    for row, (_, *operands, _) in enumerate(program.code.tolist()):
        for d in operands:
            if d and program.table[d, 0] == 2:  # an array of the scratch vector
                spans.setdefault(d, [row, row])[1] = row
    outputs = {d for d in spans for v in program.values if np.shares_memory(v, program._view(d))}
    for d in outputs:  # read after the replay
        spans[d][1] = len(program.code)
    memory = {
        d: (program.table[d, 1], program.table[d, 1] + program.table[d, 2] * program.table[d, 3])
        for d in spans
    }
    shared = 0
    for d in spans:
        for e in spans:
            if d < e and memory[d][0] < memory[e][1] and memory[e][0] < memory[d][1]:
                shared += 1
                assert spans[d][1] < spans[e][0] or spans[e][1] < spans[d][0], (d, e)
    assert shared > 0  # some room is lent
    assert program.scratch.size < 1 + sum(b - a for a, b in memory.values())


@needs_layers
def test_a_compiled_function_of_relu_layers_replays_in_numba_calls_as_eager():
    rng = np.random.default_rng(5)
    shapes = [(64, 32), (32,), (32, 10), (10,)]
    weights = [rng.normal(scale=0.3, size=shape) for shape in shapes]
    x = rng.normal(size=(40, 64))
    onehot = np.eye(10)[rng.integers(0, 10, size=40)]

    def loss(w1, b1, w2, b2, x, t):
        return cr.losses.cross_entropy(cr.relu(x @ w1 + b1) @ w2 + b2, t)

    f = cr.compile(loss)
    for _ in range(2):  # the second call replays
        tensors = [cr.tensor(w, requires_grad=True) for w in weights]
        value, grads = f(*tensors, x, onehot)
        eager = loss(*tensors, cr.tensor(x), cr.tensor(onehot))
        eager.backward()
        assert value == pytest.approx(eager.item(), abs=1e-12)
        for g, t in zip(grads, tensors, strict=True):
            np.testing.assert_allclose(g, t.grad, rtol=0, atol=1e-12)
        weights = [w - 0.5 * g for w, g in zip(weights, grads, strict=True)]
    ((program, _),) = f._programs.values()
    assert program.layers is not None
    grads[0][...] = 0.0  # the gradients handed out are the caller's to change
    _, again = f(*[cr.tensor(w, requires_grad=True) for w in weights], x, onehot)
    assert np.abs(again[0]).sum() > 0


@needs_layers
@pytest.mark.parametrize("detail", [False, True])
def test_a_layer_replayed_run_diverges_and_records_its_steps_as_the_eager_one(detail):
    data = load_dataset("digits")
    X, y = data.X[:256], data.target[:256]
    runs = []
    for compile_ in (False, True):
        model = nn.MLP([64, 16, 10], activation="relu", seed=4)
        trainer = cr.Trainer(
            model, (X, y), loss="cross_entropy", optimizer="sgd", learning_rate=1e5,
            batch_size=64, stop={"max_steps": 40}, detail=detail, compile=compile_,
        )  # fmt: skip
        trainer.advance()
        runs.append((model, trainer))
    (m_eager, eager), (m_layers, layered) = runs
    assert all(p is not None for p in _layer_programs(layered))
    e, c = eager.history, layered.history
    assert c.stop_reason == e.stop_reason == "diverged"
    assert c.divergence.kind == e.divergence.kind and c.num_steps == e.num_steps
    assert c.divergence.loss == pytest.approx(e.divergence.loss, rel=1e-12)
    np.testing.assert_allclose(c.losses, e.losses, rtol=1e-12)
    for p, q in zip(m_layers.parameters(), m_eager.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12)  # the last step undone alike
    if detail:
        assert len(c.steps) == len(e.steps) == c.num_steps
        for step, other in zip(c.steps, e.steps, strict=True):
            assert step.slopes == pytest.approx(other.slopes, rel=1e-10, abs=1e-12)
            assert step.new_values == pytest.approx(other.new_values, rel=1e-10, abs=1e-12)


@needs_layers
def test_a_nan_in_the_data_reaches_the_layer_replays_slopes_as_eager():
    rng = np.random.default_rng(8)
    w1, b1, w2 = rng.normal(size=(6, 5)), rng.normal(size=5), rng.normal(size=(5, 3))
    x = rng.normal(size=(8, 6))
    x[2, 1] = np.nan
    onehot = np.eye(3)[rng.integers(0, 3, size=8)]

    def loss(w1, b1, w2, b2, x, t):
        return cr.losses.cross_entropy(cr.relu(x @ w1 + b1) @ w2 + b2, t)

    tensors = [cr.tensor(a, requires_grad=True) for a in (w1, b1, w2, np.zeros(3))]
    eager = loss(*tensors, cr.tensor(x), cr.tensor(onehot))
    eager.backward()
    f = cr.compile(loss)
    value, grads = f(*[cr.tensor(t.data, requires_grad=True) for t in tensors], x, onehot)
    ((program, _),) = f._programs.values()
    assert program.layers is not None and np.isnan(value) and np.isnan(eager.item())
    for g, t in zip(grads, tensors, strict=True):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(t.grad))
        np.testing.assert_allclose(g, t.grad, rtol=1e-12, atol=0)  # (NaN where eager's)


def test_a_layer_replay_that_numba_cannot_compile_leaves_the_numpy_replay(monkeypatch):
    def cannot_compile(*args):
        raise numba.core.errors.TypingError("scipy's BLAS is not usable here")

    monkeypatch.setattr(kernels, "_layers", None)
    monkeypatch.setattr(kernels, "_layers_unusable", False)
    monkeypatch.setattr(kernels, "_make_layers", lambda: cannot_compile)
    assert kernels.layers() is None and kernels._layers_unusable
    assert kernels.layers() is None  # (not tried again)
    model, trainer = _classifier_run(monkeypatch)  # (undoes the patches when done)
    assert _layer_programs(trainer) == [None, None]
    _assert_same_numbers((model, trainer), _classifier_run(monkeypatch, layers=None))
