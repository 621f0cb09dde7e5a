"""Training: data forms, stop rules, detail and memory, divergence, freezing, evaluation."""

import gc
import json
import math
import tracemalloc

import numpy as np
import pytest
from seed import DOSAGE, FITTED, FORMULA, OBSERVED

import chainrule.training as training
from chainrule import Formula, nn
from chainrule.datasets import Dataset, dosage, load_dataset
from chainrule.errors import ChainruleError
from chainrule.explain import stop_message
from chainrule.optim import SGD, GradientDescent
from chainrule.training import History, Stop, evaluate, train


def seed_formula(trained=("b3",)) -> Formula:
    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    model.freeze()
    model.unfreeze(*trained)
    return model


# ---------------------------------------------------------------------------------------
# Stop rules
# ---------------------------------------------------------------------------------------


def test_stop_on_loss_fires_before_a_step():
    history = train(seed_formula(), dosage(), stop=Stop(loss=0.01))
    # losses before steps 1..6: 20.4, 3.27, 0.523, 0.0837, 0.0134, 0.0022 < 0.01
    assert history.stop_reason == "loss"
    assert history.num_steps == len(history.steps) == 5
    assert history.final_loss == pytest.approx(0.0022043731, abs=6e-11)
    assert history.final_values["b3"] == pytest.approx(2.5824666785, abs=6e-11)
    assert stop_message(history) == "b3 = 2.58 after 5 steps: the loss 0.0022 is below 0.01"


def test_stop_on_max_steps():
    history = train(seed_formula(), dosage(), stop={"max_steps": 3})
    assert history.stop_reason == "max_steps"
    assert history.num_steps == 3
    assert history.final_values["b3"] == pytest.approx(2.4421969074, abs=6e-11)
    assert stop_message(history).startswith("b3 = 2.44 after 3 steps: reached the limit of 3 steps")


def test_combined_rules_first_that_fires_wins():
    # max_steps fires at 5, before the step-size rule (at 10)
    history = train(seed_formula(), dosage(), stop=Stop(step_size=0.001, max_steps=5))
    assert (history.stop_reason, history.num_steps) == ("max_steps", 5)
    # the loss falls below 1e-4 before step 9, before the step-size rule fires
    history = train(seed_formula(), dosage(), stop={"step_size": 0.001, "loss": 1e-4})
    assert (history.stop_reason, history.num_steps) == ("loss", 8)
    history = train(seed_formula(), dosage(), stop={"step_size": 0.001, "loss": 1e-6})
    assert (history.stop_reason, history.num_steps) == ("step_size", 10)


def test_default_stop_is_1000_steps():
    history = train(seed_formula(), dosage(), learning_rate=0.01)
    assert (history.stop_reason, history.num_steps) == ("max_steps", 1000)


def test_max_steps_0_trains_nothing_and_records_the_start():
    model = seed_formula()
    history = train(model, dosage(), stop={"max_steps": 0})
    assert (history.stop_reason, history.num_steps, history.steps) == ("max_steps", 0, [])
    assert model.scalar("b3").value == 0.0  # untouched
    assert history.final_loss == pytest.approx(20.4235976776, abs=1e-9)  # SSR at b3 = 0
    assert history.final_values["b3"] == 0.0


@pytest.mark.parametrize(
    "stop, message",
    [
        ({"steps": 3}, "unknown rule 'steps'; the rules are: step_size, loss, max_steps"),
        ({"max_steps": -1}, "max_steps: expected a whole number >= 0"),
        ({"step_size": -1}, "step_size: expected a number > 0"),
        ({"loss": float("nan")}, "loss: expected a number > 0"),
        ("often", "give a Stop or a dict"),
    ],
)
def test_bad_stop_rules(stop, message):
    with pytest.raises(ChainruleError, match=message):
        train(seed_formula(), dosage(), stop=stop)


# ---------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------


def test_a_non_finite_slope_stops_before_the_step_is_taken():
    model = Formula("p = sqrt(w * x) + b", inputs=["x"], values={"w": 0.0, "b": 0.5})
    history = train(model, ([1.0, 2.0], [1.0, 2.0]))
    assert history.stop_reason == "diverged"
    assert history.num_steps == 0
    assert stop_message(history) == (
        "the slope of w is infinite (-inf) at the starting values: check the data and the "
        "starting values"
    )
    assert model.scalar("w").value == 0.0 and model.scalar("b").value == 0.5


def test_a_loss_that_is_nan_from_the_start():
    model = Formula("p = log(w) * x", inputs=["x"], values={"w": -1.0})
    with np.errstate(invalid="ignore"):
        history = train(model, ([1.0], [1.0]))
    assert history.stop_reason == "diverged"
    assert stop_message(history).startswith("the loss is NaN (not a number) at the starting values")
    assert json.dumps(history.to_dict(), allow_nan=False)  # JSON has no NaN: it becomes null


# ---------------------------------------------------------------------------------------
# Freezing and what is reported
# ---------------------------------------------------------------------------------------


def test_frozen_parameters_are_unchanged_and_not_reported():
    model = nn.MLP([2, 3, 1], activation="tanh", seed=0)
    model.freeze("hidden.weight", "output.bias")
    frozen = {n: p.data.copy() for n, p in model.named_parameters() if p.frozen}
    data = load_dataset("moons", n=40)
    history = train(model, data, loss="mse", stop={"max_steps": 5}, detail=True)
    for name, value in frozen.items():
        np.testing.assert_array_equal(model.parameter(name).data, value)
    assert history.trained == [
        "hidden.bias[0]",
        "hidden.bias[1]",
        "hidden.bias[2]",
        "output.weight[0,0]",
        "output.weight[1,0]",
        "output.weight[2,0]",
    ]
    for record in history.steps:
        for per_scalar in (record.values, record.slopes, record.step_sizes, record.new_values):
            assert list(per_scalar) == history.trained
    assert len(history.final_values) == 6 + 3 + 3 + 1  # every scalar, frozen ones too
    assert history.final_values["output.bias[0]"] == float(frozen["output.bias"][0])


def test_everything_frozen_is_refused():
    model = seed_formula()
    model.freeze()
    with pytest.raises(ChainruleError, match="nothing to train"):
        train(model, dosage())


def test_records_match_the_model_and_each_other():
    model = nn.MLP([1, 2, 1], activation="softplus", seed=4)
    history = train(model, dosage(), learning_rate=0.05, stop={"max_steps": 4})
    assert history.detail and len(history.steps) == 4
    for before, after in zip(history.steps, history.steps[1:], strict=False):
        assert after.values == before.new_values
    last = history.steps[-1]
    for name in history.trained:
        assert last.values[name] - last.step_sizes[name] == pytest.approx(last.new_values[name])
        assert last.step_sizes[name] == pytest.approx(0.05 * last.slopes[name])
        assert history.final_values[name] == last.new_values[name]


# ---------------------------------------------------------------------------------------
# Data forms
# ---------------------------------------------------------------------------------------


def test_data_as_a_pair_a_dict_or_a_dataset_give_the_same_run():
    x, y = DOSAGE, OBSERVED
    runs = [
        train(seed_formula(), dosage(), stop={"max_steps": 3}),
        train(seed_formula(), (x, y), stop={"max_steps": 3}),
        train(seed_formula(), (np.array(x).reshape(3, 1), y), stop={"max_steps": 3}),
        train(seed_formula(), ({"dosage": x}, y), stop={"max_steps": 3}),
    ]
    for history in runs[1:]:
        assert list(history.losses) == list(runs[0].losses)


def test_a_formula_reads_its_inputs_by_name_from_a_dataset():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    data = Dataset(
        {"b": b, "noise": rng.normal(size=30), "a": a}, 2 * a - b, "y", "t", "regression"
    )
    model = Formula("y = wa * a + wb * b", inputs=["a", "b"])
    train(model, data, loss="mse", stop={"step_size": 1e-6, "max_steps": 5000})
    assert model.scalar("wa").value == pytest.approx(2, abs=1e-4)
    assert model.scalar("wb").value == pytest.approx(-1, abs=1e-4)
    # an unbound formula is bound to the data set's inputs, in the data's order ...
    used = Dataset({"b": b, "a": a}, 2 * a - b, "y", "t", "regression")
    unbound = Formula("y = wa * a + wb * b")
    train(unbound, used, loss="mse", stop={"max_steps": 2})
    assert unbound.inputs == ("b", "a")
    # ... each of which it must use (inputs=[...] names the ones it reads, as above)
    with pytest.raises(ChainruleError, match="the data has an input 'noise' that the formula"):
        train(Formula("y = wa * a + wb * b"), data, loss="mse")
    with pytest.raises(ChainruleError, match="reads input 'c', but data set 't' has: b, noise, a"):
        train(Formula("y = w * c", inputs=["c"]), data)


def test_a_misspelt_input_is_not_trained_as_a_parameter():
    model = Formula("p = w1*x1 + w2*x_2 + b")
    with pytest.raises(ChainruleError) as info:
        train(model, load_dataset("moons", n=20), loss="binary_cross_entropy_with_logits")
    assert str(info.value).startswith(
        "the data has an input 'x2' that the formula does not use; did you mean 'x_2' "
        "(line 1, column 16)?"
    )
    assert not model.is_bound
    for data in (dosage(), ({"dosage": DOSAGE}, OBSERVED)):
        with pytest.raises(ChainruleError) as info:
            train(Formula("p = w * dosgae + b"), data)
        assert str(info.value).startswith(
            "the formula uses none of the data's inputs (dosage): its free names are w, "
            "dosgae, b; did you mean 'dosgae' (line 1, column 9) for 'dosage'?"
        )


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2, 3], "data must be a Dataset or a pair"),
        (([[1.0], [2.0]], [1.0]), "the inputs have 2 rows but the target has shape"),
        ((np.zeros((2, 2, 2)), [1.0, 2.0]), "must be an \\(n, d\\) matrix"),
    ],
)
def test_bad_data_is_refused(data, message):
    with pytest.raises(ChainruleError, match=message):
        train(nn.MLP([1, 2, 1]), data)


def test_bad_names_and_settings_are_refused():
    with pytest.raises(ChainruleError, match="unknown loss 'hinge'"):
        train(seed_formula(), dosage(), loss="hinge")
    with pytest.raises(ChainruleError, match="unknown optimizer 'lbfgs'"):
        train(seed_formula(), dosage(), optimizer="lbfgs")
    with pytest.raises(ChainruleError, match="batch_size must be a whole number"):
        train(seed_formula(), dosage(), batch_size=0)
    model = seed_formula(trained=("b3", "w3"))
    with pytest.raises(ChainruleError, match="does not hold the trainable parameter\\(s\\) w3"):
        train(model, dosage(), optimizer=GradientDescent([model.parameter("b3")], lr=0.1))


def test_an_optimizer_instance_and_a_custom_loss():
    model = seed_formula(trained=("b3", "w3"))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.5)

    def half_ssr(predictions, target):
        return ((predictions - np.asarray(target)) ** 2).sum() / 2

    history = train(model, dosage(), loss=half_ssr, optimizer=opt, stop={"max_steps": 3})
    assert history.loss_name == "half_ssr" and history.learning_rate == 0.01
    assert opt.steps == 3


# ---------------------------------------------------------------------------------------
# Minibatches
# ---------------------------------------------------------------------------------------


def test_minibatches_are_seeded_and_cover_every_row_each_epoch():
    data = load_dataset("moons", n=10, seed=0)

    def run(seed):
        model = nn.MLP([2, 3, 1], activation="tanh", seed=0)
        return train(
            model, data, loss="binary_cross_entropy_with_logits", batch_size=4, seed=seed,
            stop={"max_steps": 6}, detail=True,
        )  # fmt: skip

    a, b, c = run(1), run(1), run(2)
    assert list(a.losses) == list(b.losses)
    assert list(a.losses) != list(c.losses)
    # 10 rows in batches of 4: 4, 4, 2, then a new shuffle
    assert [len(r.predictions) for r in a.steps] == [4, 4, 2, 4, 4, 2]
    assert len(a.final_predictions) == 10  # the final pass sees every row


# ---------------------------------------------------------------------------------------
# Detail, memory, history contract
# ---------------------------------------------------------------------------------------


def test_detail_is_on_for_small_models_and_off_for_large_ones():
    assert train(seed_formula(), dosage(), stop={"max_steps": 2}).detail
    big = nn.MLP([1, 30, 1])  # 91 scalars
    history = train(big, dosage(), learning_rate=0.01, stop={"max_steps": 2})
    assert not history.detail and history.steps == [] and len(history.losses) == 2
    forced = train(big, dosage(), learning_rate=0.01, stop={"max_steps": 2}, detail=True)
    assert len(forced.steps) == 2 and len(forced.steps[0].slopes) == 91
    assert train(seed_formula(), dosage(), stop={"max_steps": 2}, detail=False).steps == []


def test_a_long_run_without_detail_keeps_one_float_per_step():
    model = nn.MLP([1, 30, 1], activation="tanh", seed=0)
    memory = {}

    def watch(step, loss):
        if step in (500, 4000):
            memory[step] = tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        history = train(
            model, dosage(), learning_rate=0.01, stop={"max_steps": 4000}, progress=watch
        )
    finally:
        tracemalloc.stop()
    assert history.steps == [] and len(history.losses) == 4000
    assert history.losses.itemsize == 8  # a packed array of floats, not a list of objects
    # 3500 more steps may cost their 3500 floats (28 kB) and nothing per parameter
    assert memory[4000] - memory[500] < 60_000


def test_a_large_model_costs_no_python_work_or_memory_per_weight(monkeypatch):
    def listed(*args, **kwargs):
        raise AssertionError("train() listed every scalar of the model")

    monkeypatch.setattr(nn.Module, "scalars", listed)
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(64, 64)), rng.integers(0, 10, size=64))
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        model = nn.MLP([64, 128, 64, 10], activation="relu", seed=0)  # 17,226 weights
        weights = sum(p.data.nbytes for p in model.parameters())
        history = train(model, data, loss="cross_entropy", stop={"max_steps": 3})
        model.zero_grad()  # the gradients belong to the model, not to the history
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert not history.detail and history.num_steps == 3
    # the model holds its weights, the history one copy of them (for final_values), and
    # little else: not a name and a float object per weight (about 3.6 MiB here), nor the
    # run's vectors of values, slopes and step sizes
    assert kept < 2.25 * weights
    assert history.parameters[0] == ("hidden1.weight", (64, 128))
    # the per-scalar names and values are still there, built when asked for
    assert len(history.trained) == len(history.final_values) == 17_226
    assert history.trained[1] == "hidden1.weight[0,1]"
    assert history.final_values["output.bias[9]"] == model.output.bias.data[9]


def test_detail_is_kept_as_arrays_and_read_as_records():
    model = nn.MLP([1, 2, 1], activation="softplus", seed=4)
    history = train(model, dosage(), learning_rate=0.05, stop={"max_steps": 40})
    arrays = history.steps.arrays()
    assert {k: v.shape for k, v in arrays.items()} == dict.fromkeys(
        ["values", "slopes", "step_sizes", "new_values"], (40, 7)
    )
    np.testing.assert_array_equal(arrays["new_values"][:-1], arrays["values"][1:])
    record = history.steps[-1]
    assert record is history.steps[39]  # built once, then kept
    assert record.step == 40 and record.loss == history.losses[39]
    assert list(record.slopes.values()) == arrays["slopes"][39].tolist()
    assert list(record.new_values) == history.trained
    assert [r.step for r in history.steps[-3:]] == [38, 39, 40]
    with pytest.raises(IndexError):
        history.steps[40]


def test_a_minibatch_run_ends_with_the_loss_over_every_row():
    # the final pass goes through the rows in chunks of the batch size, so that it takes
    # no more memory than a step; the chunks' losses combine into the loss over all rows
    data = load_dataset("moons", n=50, seed=0)

    def half_ssr(predictions, target):  # a loss of one's own: computed once over all rows
        return ((predictions - np.asarray(target).reshape(-1, 1)) ** 2).sum() / 2

    for loss in ("binary_cross_entropy_with_logits", "ssr", "mse", half_ssr):
        model = nn.MLP([2, 4, 1], activation="tanh", seed=0)
        history = train(model, data, loss=loss, batch_size=16, stop={"max_steps": 5})
        whole = evaluate(model, data, loss=loss)
        assert history.final_loss == pytest.approx(whole.loss, rel=1e-12)
        assert history.final_predictions.shape == (50,)
        np.testing.assert_array_equal(history.final_predictions, model(data.X).data.ravel())


def test_an_optimizer_holding_the_parameters_in_another_order():
    model = seed_formula(trained=("w3", "b3"))
    params = model.parameters()[::-1]  # b3 ... w1: the records keep the model's order
    history = train(
        model, dosage(), optimizer=GradientDescent(params, lr=0.1), stop={"max_steps": 3}
    )
    assert history.trained == ["w3", "b3"]
    reference = train(seed_formula(trained=("w3", "b3")), dosage(), stop={"max_steps": 3})
    assert list(history.losses) == list(reference.losses)
    for mine, theirs in zip(history.steps, reference.steps, strict=True):
        assert mine.new_values == theirs.new_values and mine.slopes == theirs.slopes


def test_to_dict_is_the_json_contract():
    history = train(seed_formula(), dosage(), stop=Stop(step_size=0.001))
    out = json.loads(json.dumps(history.to_dict(), allow_nan=False))
    assert set(out) == {
        "schema_version",
        "trained",
        "loss_name",
        "loss_label",
        "steps",
        "stop_reason",
        "final",
    }
    assert out["trained"] == ["b3"] and (out["loss_name"], out["loss_label"]) == ("ssr", "SSR")
    assert out["stop_reason"] == "step_size"
    assert set(out["steps"][0]) == {
        "step",
        "loss",
        "values",
        "gradients",
        "step_sizes",
        "new_values",
    }
    assert out["steps"][9]["new_values"]["b3"] == pytest.approx(2.6089111372, abs=6e-11)
    assert set(out["final"]) == {"values", "loss", "predictions"}
    assert len(out["final"]["values"]) == 7 and len(out["final"]["predictions"]) == 3
    assert out["final"]["loss"] == history.final_loss
    off = train(seed_formula(), dosage(), stop={"max_steps": 2}, detail=False).to_dict()
    assert [s["step"] for s in off["steps"]] == [1, 2] and off["steps"][0]["values"] == {}


def test_history_type():
    history = train(seed_formula(), dosage(), stop={"max_steps": 1})
    assert isinstance(history, History) and history.loss_name == "ssr"
    assert history.final_predictions.shape == (3,)


# ---------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------


def test_progress_callback_sees_every_step():
    seen = []
    train(seed_formula(), dosage(), stop={"max_steps": 4}, progress=lambda s, l: seen.append(s))
    assert seen == [1, 2, 3, 4]


def test_a_progress_bar_can_be_forced(monkeypatch):
    pytest.importorskip("rich")
    monkeypatch.setattr(training, "PROGRESS_AFTER", 0.0)
    history = train(seed_formula(), dosage(), stop={"max_steps": 20}, progress=True)
    assert history.num_steps == 20


# ---------------------------------------------------------------------------------------
# Evaluation and real learning
# ---------------------------------------------------------------------------------------


def test_evaluate_regression_and_classification():
    result = evaluate(seed_formula(), dosage())
    assert result.loss == pytest.approx(20.4235976776, abs=6e-11)
    assert result.accuracy is None and result.loss_name == "ssr" and result.n == 3
    X = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = Dataset.from_matrix(X, [0, 1, 1], ["a", "b"], "y", "t", "multiclass")
    layer = nn.Linear(2, 2)
    layer.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    result = evaluate(layer, labels)
    assert result.loss_name == "cross_entropy" and result.accuracy == pytest.approx(2 / 3)
    binary = evaluate(
        nn.Linear(2, 1, seed=1), Dataset.from_matrix(X, [0, 1, 1], ["a", "b"], "y", "t", "binary")
    )
    assert binary.loss_name == "binary_cross_entropy_with_logits" and binary.accuracy is not None


def test_moons_reach_95_percent():
    data = load_dataset("moons", n=400, seed=0)
    train_set, test_set = data.split(test_fraction=0.25, seed=0)
    model = nn.MLP([2, 16, 16, 1], activation="tanh", seed=0)
    history = train(
        model, train_set, loss="binary_cross_entropy_with_logits", optimizer="adam",
        learning_rate=0.01,
        stop={"max_steps": 500},
    )  # fmt: skip
    assert history.accuracies is not None and history.accuracies[-1] >= 0.95
    assert evaluate(model, test_set).accuracy >= 0.95


def test_digits_reach_97_percent():
    pytest.importorskip("sklearn")
    data = load_dataset("digits", seed=0)
    train_set, test_set = data.split(test_fraction=0.2, seed=0)
    model = nn.MLP([64, 128, 64, 10], activation="relu", seed=0)
    epochs, batch = 30, 64
    steps = epochs * math.ceil(train_set.n / batch)
    with _one_blas_thread():
        history = train(
            model, train_set, loss="cross_entropy", optimizer="momentum", learning_rate=0.1,
            batch_size=batch, stop={"max_steps": steps},
        )  # fmt: skip
    assert history.stop_reason == "max_steps" and not history.detail
    result = evaluate(model, test_set)
    assert result.loss_name == "cross_entropy"
    assert result.accuracy >= 0.97


def _one_blas_thread():
    """Small matrices gain nothing from BLAS threads, which stall on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def test_a_loss_that_no_trained_parameter_reaches_is_told_plainly():
    class Line(nn.Module):  # w1 is a parameter that forward never uses
        def __init__(self):
            self.w1 = nn.Parameter(1.0)
            self.b = nn.Parameter(0.0)

        def forward(self, x):
            return 2 * x[:, 0] + self.b

    model = Line()
    model.freeze()
    model.unfreeze("w1")
    with pytest.raises(ChainruleError, match=r"does not depend on any trained parameter \(w1\)"):
        train(model, dosage())


@pytest.mark.parametrize("detail", [True, False])
def test_a_run_advanced_a_step_at_a_time_is_the_run_trained_at_once(detail):
    # The web page's Step button advances a Trainer; the numbers must be train()'s.
    from chainrule.scenario import load_scenario

    for name, lr in (("main-ideas", 0.1), ("main-ideas", 1.0), ("three-parameters", 0.1)):
        scenario = load_scenario(name)
        settings = dict(loss=scenario.loss, learning_rate=lr, stop=scenario.stop, detail=detail)
        whole = training.train(scenario.build_model(), scenario.data, **settings)
        trainer = training.Trainer(scenario.build_model(), scenario.data, **settings)
        taken = []
        while not trainer.done:
            taken.append(trainer.advance(1))
        assert trainer.advance(1) == 0  # a finished run stays finished
        stepped = trainer.history
        assert sum(taken) == whole.num_steps == stepped.num_steps
        assert stepped.to_dict() == whole.to_dict()
        assert stepped.stop_reason == whole.stop_reason
        assert stepped.divergence == whole.divergence


def test_a_historys_repr_is_a_few_lines_with_the_detail_still_reachable():
    from chainrule.scenario import load_scenario

    history = load_scenario("main-ideas").run().history
    assert repr(history) == (
        "History(10 steps, stopped by step_size, final ssr 6.303e-05,\n"
        "        trained: b3 = 2.6089)"
    )
    big = load_scenario("moons").run().history
    text = repr(big)
    assert len(text) < 200 and "105 trained values (see .final_values)" in text
    assert len(big.final_values) == 105 and len(history.steps) == 10


# ---------------------------------------------------------------------------------------
# float32 throughout
# ---------------------------------------------------------------------------------------


def _float32_formula() -> Formula:
    return Formula(FORMULA, inputs=["dosage"], values=FITTED, dtype="float32")


def _float32_mlp() -> nn.MLP:
    return nn.MLP([1, 3, 1], activation="softplus", dtype="float32")


_ROWS = (np.array(DOSAGE).reshape(-1, 1), np.array(OBSERVED))  # float64 arrays


@pytest.mark.parametrize(
    "make, data",
    [(_float32_formula, dosage()), (_float32_mlp, dosage()), (_float32_mlp, _ROWS)],
    ids=["formula-dataset", "mlp-dataset", "mlp-float64-rows"],
)
def test_a_float32_model_trains_in_float32_throughout(make, data):
    from chainrule.losses import ssr
    from chainrule.tensor import topological_order

    seen = []

    class Watched(nn.Module):  # what training feeds the model, and what every op makes
        def __init__(self):
            self.inner = make()

        def forward(self, x):
            seen.append(("input", np.asarray(x).dtype))
            out = self.inner(x)
            seen.extend(("node", node.dtype) for node in topological_order(out))
            return out

    def loss(predictions, target):
        value = ssr(predictions, target)
        seen.append(("loss", value.dtype))
        return value

    model = Watched()
    history = train(model, data, loss=loss, stop={"max_steps": 3})
    assert history.num_steps == 3
    assert {kind for kind, _ in seen} == {"input", "node", "loss"}
    assert {dtype for _, dtype in seen} == {np.dtype(np.float32)}  # no silent upcast
    assert model.dtype == np.float32
    for p in model.parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32
    # The float32 run follows the float64 one to float32's precision.
    twin = Watched()
    for p in twin.parameters():
        p.data = p.data.astype(np.float64)
    train(twin, data, loss=ssr, stop={"max_steps": 3})
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-4, atol=1e-5)


def test_a_formula_dtype_must_be_a_float_type():
    with pytest.raises(ChainruleError, match="dtype must be float64 or float32"):
        Formula("y = w * x", inputs=["x"], dtype="int64")


@pytest.mark.parametrize("compile_", [False, True])
def test_a_value_given_a_new_array_between_two_advances_is_trained_on(compile_):
    from chainrule.scenario import load_scenario

    s = load_scenario("main-ideas")
    model = s.build_model()
    trainer = training.Trainer(model, s.data, learning_rate=0.1, stop=s.stop, compile=compile_)
    trainer.advance(2)
    b3 = model.parameter("b3")
    b3.data = np.array(1.0)  # the learner sets b3 by hand
    trainer.advance(1)
    step = trainer.history.steps[-1]
    assert step.new_values["b3"] == pytest.approx(1.0 - 0.1 * step.slopes["b3"], abs=1e-12)
    assert b3.item() == pytest.approx(step.new_values["b3"], abs=1e-12)


@pytest.mark.parametrize("compile_", [False, True])
def test_a_graph_recorded_before_a_step_of_the_trainer_is_stale(compile_):
    from chainrule.errors import GraphError
    from chainrule.scenario import load_scenario

    s = load_scenario("main-ideas")
    model = s.build_model()
    model.unfreeze()  # w3 too, which a product saves for its slope
    trainer = training.Trainer(model, s.data, learning_rate=0.1, stop=s.stop, compile=compile_)
    trainer.advance(1)
    loss = model(s.data.X).sum()  # recorded at the values after one step
    trainer.advance(1)
    with pytest.raises(GraphError, match="changed in place"):
        loss.backward()
