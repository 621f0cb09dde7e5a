"""What a training run did, in words (diagnose), and quizzing the learner on its steps."""

from __future__ import annotations

import json

import pytest
from seed import BLUE, FITTED, FORMULA, GREEN, THREE_START

from chainrule import ChainruleError, nn
from chainrule.datasets import dosage, load_dataset
from chainrule.explain import Question, check_answer, diagnose, quiz_questions
from chainrule.formula import Formula
from chainrule.training import train


def b3_run(learning_rate: float, **stop: float):
    """The seed: b3 alone from 0, the other six at their fitted values."""
    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    model.freeze()
    model.unfreeze("b3")
    return train(model, dosage(), learning_rate=learning_rate, stop=stop or {"step_size": 0.001})


# -- diagnose ----------------------------------------------------------------------------


def test_the_seed_run_converges_by_a_factor_of_0_4():
    d = diagnose(b3_run(0.1))
    assert d.kind == "converged"
    assert d.factor == 0.4
    assert d.learning_rate_limit == pytest.approx(1 / 3)
    assert "multiplies the distance to the best b3 by 0.4 (= 1 - 2 x 3 x 0.1)" in d.message
    assert "b3 = 2.61 after 10 steps" in d.message
    assert d.render("text") == d.message
    assert json.loads(d.render("json")) == {
        "kind": "converged",
        "message": d.message,
        "factor": 0.4,
        "learning_rate_limit": pytest.approx(1 / 3),
    }


def test_the_mean_squared_error_contracts_by_the_curvature_of_one_row():
    # MSE is SSR / 3 here: b3's curvature is 2 (not 2 x 3), so 1 - 2 x 0.1 = 0.8
    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    model.freeze()
    model.unfreeze("b3")
    history = train(model, dosage(), loss="mse", learning_rate=0.1, stop={"max_steps": 20})
    d = diagnose(history)
    assert d.factor == 0.8 and d.learning_rate_limit == 1.0
    assert "by 0.8 (= 1 - 2 x 0.1)" in d.message
    assert "Learning rates below 1 converge" in d.message


def test_a_loss_without_a_constant_curvature_reads_it_from_the_slopes():
    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    model.freeze()
    model.unfreeze("b3")

    def ssr_twice(predictions, target):  # curvature 4 x 3 rows, but the record knows none
        return ((predictions - target.reshape(predictions.shape)) ** 2).sum() * 2

    history = train(model, dosage(), loss=ssr_twice, learning_rate=0.01, stop={"max_steps": 20})
    d = diagnose(history)
    assert d.factor == pytest.approx(0.88) and d.learning_rate_limit == pytest.approx(2 / 12)
    assert "(= 1 - 12 x 0.01)" in d.message and "below 0.1667 converge" in d.message


def test_learning_rate_1_diverges_and_names_the_largest_stable_rate():
    history = b3_run(1.0)
    d = diagnose(history)
    assert history.stop_reason == "diverged"
    assert d.kind == "diverged"
    assert d.factor == -5
    assert "by -5 (= 1 - 2 x 3 x 1)" in d.message
    assert "Learning rates below 1/3 = 0.3333 converge" in d.message
    assert "best b3 (2.6092)" in d.message  # the closed form: 2.609184730096


def test_a_growing_run_cut_short_by_the_step_limit_is_growing_not_diverged():
    # Training's one divergence rule has not fired: the diagnosis does not contradict it.
    history = b3_run(0.5, max_steps=8)
    d = diagnose(history)
    assert history.stop_reason == "max_steps" and not history.diverged
    assert d.kind == "growing" and d.factor == -2
    assert "on its way to diverging" in d.message and "1e+10 times the first" in d.message
    assert "Learning rates below 1/3 = 0.3333 converge" in d.message


def test_learning_rate_0_35_for_10_steps_agrees_in_training_diagnosis_ledger_and_figures():
    # The case where three divergence rules used to disagree: training said max_steps,
    # the diagnosis said diverged, the figures showed nothing.
    from chainrule.explain import ledger
    from chainrule.run import Run

    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    model.freeze()
    model.unfreeze("b3")
    run = Run.train(model, dosage(), learning_rate=0.35, stop={"max_steps": 10})
    history = run.history
    assert history.stop_reason == "max_steps" and not history.diverged
    assert history.losses_with_final()[-1] > history.losses[0]  # the loss did grow
    d = diagnose(history)
    assert d.kind == "growing" and d.factor == pytest.approx(-1.1)
    table = ledger(history)
    assert table.to_dict()["stop_reason"] == "max_steps"
    plots = pytest.importorskip("chainrule.plots")
    for figure in (
        plots.history(history),
        plots.loss_curve(run.start, run.data, run.loss, "b3", history),
        plots.squiggle(run.start, run.data, history),
    ):
        assert plots.replay.divergence(history) is None
        assert not any("diverged" in t.get_text() for t in figure.figure.texts)
        figure.close()


@pytest.mark.parametrize(("learning_rate", "factor"), [(1 / 3, -1.0), (0.32, -0.92)])
def test_a_slope_that_flips_sign_every_step_oscillates(learning_rate, factor):
    d = diagnose(b3_run(learning_rate, max_steps=20))
    assert d.kind == "oscillating"
    assert d.factor == pytest.approx(factor, abs=1e-9)
    assert "The slope of b3 changes sign every step" in d.message


def test_tiny_steps_crawl():
    d = diagnose(b3_run(0.001, max_steps=50))
    assert d.kind == "crawling"
    assert d.factor == pytest.approx(0.994)
    assert "more steps would bring it within 0.001 of the best b3" in d.message


def test_a_zigzag_that_converges_is_converged_and_says_it_oscillated():
    d = diagnose(b3_run(0.3))
    assert d.kind == "converged" and d.factor == pytest.approx(-0.8)
    assert "It oscillated on the way: the slope of b3 changed sign at every step" in d.message


def test_a_step_size_rule_that_fires_far_from_the_best_value_stopped_early():
    history = b3_run(0.001)
    assert history.stop_reason == "step_size"
    d = diagnose(history)
    assert d.kind == "crawling"
    assert d.message.startswith("The run stopped early: b3 = 2.44 after 459 steps")
    assert "still 0.1648 from the best b3 (2.6092)" in d.message
    assert "converged" not in d.message
    assert "by 0.994 (= 1 - 2 x 3 x 0.001)" in d.message


def test_a_step_size_rule_that_fires_while_the_loss_still_falls_stopped_early():
    model = Formula(FORMULA, inputs=["dosage"], values={**FITTED, **THREE_START})
    model.freeze()
    model.unfreeze("w3", "w4", "b3")
    history = train(model, dosage(), learning_rate=0.02, stop={"step_size": 0.002})
    assert history.stop_reason == "step_size"
    d = diagnose(history)
    assert d.kind == "crawling" and d.factor is None
    assert d.message.startswith("The run stopped early: ")
    assert "The loss was still falling: it fell by 0.0253 over the last 50 steps" in d.message


def test_a_loss_that_grows_until_the_step_limit_is_growing_without_a_factor():
    model = Formula(FORMULA, inputs=["dosage"], values={**FITTED, **THREE_START})
    model.freeze()
    model.unfreeze("w3", "w4", "b3")
    # 6 steps: the loss grows 25-fold a step, and at 1e10 times the first train() stops
    history = train(model, dosage(), learning_rate=0.4, stop={"max_steps": 6})
    assert history.stop_reason == "max_steps"
    d = diagnose(history)
    assert d.kind == "growing" and d.factor is None
    assert d.message.startswith("The loss grows: ")
    assert d.message.endswith("Try a smaller learning rate.")


def test_several_parameters_have_no_single_factor():
    model = Formula(FORMULA, inputs=["dosage"], values=THREE_START)
    model.freeze()
    model.unfreeze("w3", "w4", "b3")
    d = diagnose(train(model, dosage(), learning_rate=0.1, stop={"max_steps": 30}))
    assert d.kind == "crawling" and d.factor is None
    assert "Try a larger learning rate, or more steps." in d.message


def test_adam_is_not_explained_by_a_gradient_descent_factor():
    model = nn.MLP([2, 4, 1], activation="tanh")
    history = train(
        model,
        load_dataset("moons", n=40),
        loss="binary_cross_entropy_with_logits",
        optimizer="adam",
        learning_rate=0.05,
        stop={"max_steps": 20},
    )
    d = diagnose(history)
    assert d.factor is None and d.kind in ("crawling", "oscillating")


def test_a_learning_rate_too_small_to_move_b3_is_stalled_not_converged():
    history = b3_run(1e-320)
    assert history.stop_reason == "step_size" and history.num_steps == 1
    d = diagnose(history)
    assert d.kind == "stalled"
    assert "converged" not in d.message.replace("did not converge", "")
    assert "The learning rate 1e-320 is too small to move the parameters" in d.message
    assert "the slope of b3 is -15.7, but its step size (-1.57e-319)" in d.message
    assert "float64 numbers near b3 (2.22e-16, np.spacing)" in d.message
    # the suggestion makes the first step about 0.1: 0.1 / 15.66 -> 0.001 (a power of ten)
    assert d.message.endswith("Try a larger learning rate: learning_rate=0.001.")
    # the command line's reader gets the command line's words
    assert "Try a larger learning rate: --set train.learning_rate=0.001." in (
        diagnose(history, "cli").message
    )


def test_a_learning_rate_that_leaves_the_values_unchanged_is_stalled():
    model = Formula(FORMULA, inputs=["dosage"], values={**FITTED, "b3": 1.0})
    model.freeze()
    model.unfreeze("b3")
    history = train(model, dosage(), learning_rate=1e-20, stop={"max_steps": 5})
    assert [r.new_values["b3"] for r in history.steps] == [1.0] * 5  # not one bit moved
    d = diagnose(history)
    assert d.kind == "stalled" and "reached the limit of 5 steps" in d.message


def test_a_run_that_starts_at_its_lowest_point_is_not_stalled():
    # the slope is rounding noise (-2.2e-16), not one a larger learning rate would follow
    model = Formula("predicted = 0 * dosage + b", inputs=["dosage"], values={"b": 1 / 3})
    d = diagnose(train(model, dosage(), learning_rate=0.1, stop={"step_size": 0.001}))
    assert d.kind == "converged" and "too small" not in d.message


def test_every_slope_exactly_0_is_a_flat_point_and_says_so():
    model = Formula("predicted = relu(w * dosage + b)", inputs=["dosage"], values={"w": 1, "b": -3})
    d = diagnose(train(model, dosage(), learning_rate=0.1, stop={"step_size": 0.001}))
    assert d.kind != "dead"  # it may be the lowest point: the sentence says both
    assert "Every slope is exactly 0 since step 1 (w, b), so nothing moves" in d.message
    assert "That is its lowest point, or dead units." in d.message


def test_dead_relu_units_of_an_mlp_are_named_not_converged():
    # Both hidden ReLUs get a negative input at every dosage: only output.bias can learn.
    model = nn.MLP([1, 2, 1], activation="relu").at({"hidden.bias[0]": -5, "hidden.bias[1]": -5})
    history = train(model, dosage(), learning_rate=0.1, stop={"step_size": 0.001})
    assert history.stop_reason == "step_size"
    d = diagnose(history)
    assert d.kind == "dead"
    assert d.message.startswith("The run did not converge: trained 7 parameters for ")
    assert "6 of 7 slopes are exactly 0 since step 1 (hidden.weight[0,0]" in d.message
    assert "output.weight[1,0]), so those parameters do not move" in d.message
    assert "Dead units: units 0 and 1 of layer hidden." in d.message
    assert "output.bias" not in d.message
    # the remedy that keeps a slope, as each reader makes it (leaky_relu exists)
    assert '(softplus, or leaky_relu: activation="leaky_relu")' in d.message
    assert "leaky_relu: --set model.activation=leaky_relu)" in diagnose(history, "cli").message
    page = diagnose(history, "page").message
    assert 'leaky_relu: activation = "leaky_relu" under [model] in the scenario)' in page
    leaky = nn.MLP([1, 2, 1], activation="leaky_relu").at(
        {"hidden.bias[0]": -5, "hidden.bias[1]": -5}
    )
    revived = train(leaky, dosage(), learning_rate=0.1, stop={"step_size": 0.001})
    assert "exactly 0" not in diagnose(revived).message  # every slope lives


def test_units_that_die_after_the_first_step_are_dead_since_step_2():
    model = Formula(
        "predicted = w3 * relu(w1 * dosage + b1) + b3",
        inputs=["dosage"],
        values={"w1": 1.0, "b1": 0.1, "w3": 5.0, "b3": 0.0},
    )
    history = train(model, dosage(), learning_rate=0.3, stop={"step_size": 0.001})
    assert history.steps[0].slopes["b1"] != 0 and history.steps[1].slopes["b1"] == 0
    d = diagnose(history)
    assert d.kind == "dead"
    assert "3 of 4 slopes are exactly 0 since step 2 (w3, w1, b1)" in d.message
    assert "write leaky_relu(...) in the formula where it says relu(...)" in d.message


def test_one_dead_unit_among_many_is_named_without_changing_the_verdict():
    model = nn.MLP([1, 3, 1], activation="relu", seed=1).at({"hidden.bias[2]": -5})
    model = model.at({"hidden.weight[0,2]": 0.5})
    history = train(model, dosage(), learning_rate=0.05, stop={"max_steps": 40})
    d = diagnose(history)
    assert d.kind != "dead"
    assert "3 of 10 slopes are exactly 0 since step 1" in d.message
    assert "Dead units: unit 2 of layer hidden." in d.message


DEAD_SCENARIO = """
[data]
dosage = [0.0, 0.5, 1.0]
observed = [0.0, 1.0, 0.0]
[model]
formula = \"\"\"
y1 = relu(w1 * dosage + b1)
y2 = relu(w2 * dosage + b2)
predicted = w3 * y1 + w4 * y2 + b3
\"\"\"
[parameters]
w1 = 1.0
b1 = -5.0
w2 = 2.0
b2 = -5.0
w3 = 1.0
w4 = 1.0
b3 = 0.0
[train]
learning_rate = 0.1
stop = { step_size = 0.001 }
"""


def test_the_cli_names_dead_units_and_a_learning_rate_too_small(tmp_path, capsys):
    from chainrule import cli

    path = tmp_path / "dead.toml"
    path.write_text(DEAD_SCENARIO)
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "The run did not converge" in out and "run converged" not in out
    assert "6 of 7 slopes are exactly 0 since step 1 (w1, b1, w2, b2, w3, w4)" in out
    assert cli.main(["run", "main-ideas", "--set", "train.learning_rate=1e-320"]) == 0
    out = capsys.readouterr().out
    assert "The learning rate 1e-320 is too small to move the parameters" in out
    assert "--set train.learning_rate=0.001" in out
    # the option it names works, and then the run converges
    assert cli.main(["run", "main-ideas", "--set", "train.learning_rate=0.001"]) == 0
    assert "is too small" not in capsys.readouterr().out


# -- quiz --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_history():
    return b3_run(0.1)


def test_questions_for_the_first_step(seed_history):
    slope, step_size, new = quiz_questions(seed_history, 1)
    assert [q.kind for q in (slope, step_size, new)] == ["slope", "step size", "new value"]
    assert {q.parameter for q in (slope, step_size, new)} == {"b3"}
    assert slope.answer == pytest.approx(-15.6551083806, abs=1e-9)
    assert step_size.answer == pytest.approx(-1.5655108381, abs=1e-9)
    assert new.answer == pytest.approx(1.5655108381, abs=1e-9)
    assert slope.prompt == "What is the slope dSSR/db3 at b3 = 0.0000?"
    assert step_size.prompt == (
        "The slope dSSR/db3 is -15.6551 and the learning rate is 0.1: what is the step size of b3?"
    )
    assert new.prompt == "b3 = 0.0000 and the step size is -1.5655: what is the new b3?"
    assert quiz_questions(seed_history, 2)[0].answer == pytest.approx(-6.2620433522, abs=1e-9)


@pytest.mark.parametrize(
    ("typed", "ok"),
    [
        ("-15.66", True),
        ("-15.655", True),
        ("-15.6551", True),
        ("-15.7", True),
        ("-16", True),
        ("\u221215.66", True),
        ("-15,66", True),
        ("-1.566e1", True),
        ("-15.65", False),
        ("-15.6", False),
        ("-15", False),
        ("15.66", False),
        ("-20", False),
    ],
)
def test_answers_count_at_the_precision_typed(seed_history, typed, ok):
    slope = quiz_questions(seed_history, 1)[0]
    assert check_answer(slope, typed).correct is ok


def test_feedback(seed_history):
    slope, step_size, new = quiz_questions(seed_history, 1)
    ok, feedback = check_answer(slope, "-15.66")
    assert ok and feedback == "Right: dSSR/db3 is -15.6551."
    ok, feedback = check_answer(step_size, "-1.5")
    assert not ok
    assert feedback.startswith("Not quite: the step size of b3 is -1.5655, not -1.5.")
    assert "step size = slope x learning rate = -15.6551 x 0.1 = -1.5655" in feedback
    assert check_answer(new, "1.5655").correct  # from the numbers the prompt shows
    assert check_answer(new, "1.57").correct
    not_a_number = (False, "Please type a number, e.g. 1.5.")
    assert check_answer(slope, "minus fifteen") == not_a_number
    assert check_answer(slope, "") == not_a_number
    # The example is never the answer, whatever is asked.
    for question in quiz_questions(seed_history, 2):
        message = check_answer(question, "?").message
        assert message == not_a_number[1]
        assert f"{question.answer:.2f}" not in message


def test_two_significant_digits_are_needed():
    q = Question("new value", "b", "?", 0.34, 1e-9)
    assert not check_answer(q, "0").correct
    assert not check_answer(q, "0.3").correct
    assert check_answer(q, "0.34").correct
    assert "two significant digits" in check_answer(q, "0.3").message
    assert check_answer(Question("slope", "b", "?", 0.3, 1e-9), "0.3").correct


def test_quiz_steps_are_checked(seed_history):
    with pytest.raises(ChainruleError, match="step must be between 1 and 10, got 11"):
        quiz_questions(seed_history, 11)
    history = train(
        nn.MLP([2, 3, 1]), load_dataset("xor", n=10), detail=False, stop={"max_steps": 2}
    )
    with pytest.raises(ChainruleError, match="no per-step detail"):
        quiz_questions(history, 1)


def test_no_step_size_question_for_adam():
    model = Formula("predicted = w * dosage + b", inputs=["dosage"])
    history = train(model, dosage(), optimizer="adam", stop={"max_steps": 3})
    kinds = [q.kind for q in quiz_questions(history, 2)]
    assert kinds == ["slope", "new value", "slope", "new value"]


def test_a_long_run_is_read_without_building_a_record_per_step():
    # 20,000 steps: the diagnosis reads the History's arrays and the ledger only the rows
    # it shows, so no per-step record (a few dicts each) is built for the others.
    from chainrule.explain import ledger

    history = b3_run(1e-6, max_steps=20_000)
    diagnose(history)
    table = ledger(history, first=3, last=3)
    assert len(table.steps) == 6
    built = [r for r in history.steps._records if r is not None]
    assert len(built) <= 6, len(built)


# -- wrong answers that teach ------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_run():
    from chainrule.run import Run

    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    model.freeze()
    model.unfreeze("b3")
    return Run.train(model, dosage(), learning_rate=0.1, stop={"step_size": 0.001})


def test_the_right_size_with_the_wrong_sign_is_named(seed_history):
    slope, step_size, _ = quiz_questions(seed_history, 1)
    assert check_answer(slope, "15.66") == (False, "Right size, wrong sign: dSSR/db3 is -15.6551.")
    assert check_answer(step_size, "1.57").message == (
        "Right size, wrong sign: the step size of b3 is -1.5655."
    )


def test_an_answer_off_by_the_learning_rate_is_named(seed_history):
    slope, step_size, _ = quiz_questions(seed_history, 1)
    assert check_answer(slope, "-1.566") == (
        False,
        "That is the step size (slope x learning rate 0.1); the slope dSSR/db3 is -15.6551.",
    )
    assert check_answer(step_size, "-15.66") == (
        False,
        "That is the slope; the step size is slope x learning rate = -15.6551 x 0.1 = -1.5655.",
    )


def test_a_slope_without_the_factor_2_is_named(seed_history):
    slope = quiz_questions(seed_history, 1)[0]
    assert check_answer(slope, "-7.83") == (
        False,
        "You left out the factor 2 of the squared residual's slope: dSSR/db3 is -15.6551.",
    )
    # cross entropy has no factor 2 to forget: no such sentence for its slopes
    history = train(
        nn.MLP([2, 2, 1]),
        load_dataset("xor", n=8),
        loss="binary_cross_entropy_with_logits",
        stop={"max_steps": 1},
    )
    for question in quiz_questions(history, 1):
        assert not any("factor" in m.message for m in question.mistakes)


def test_one_data_points_term_alone_is_named(seed_run):
    slope = quiz_questions(seed_run, 1)[0]
    terms = [m for m in slope.mistakes if "term alone" in m.message]
    # the chain rule's terms, one per data point, add up to the engine's slope
    assert len(terms) == 3
    assert sum(m.value for m in terms) == pytest.approx(slope.answer, abs=1e-12)
    assert check_answer(slope, "-5.218") == (
        False,
        "That is data point 2's term alone (dosage = 0.5); the slope adds the terms of all 3 "
        "points: dSSR/db3 is -15.6551.",
    )
    # from the History alone the terms are not known: a plain "not quite"
    alone = quiz_questions(seed_run.history, 1)[0]
    assert check_answer(alone, "-5.218").message.startswith("Not quite: dSSR/db3 is -15.6551")


def test_a_new_value_computed_with_plus_is_named(seed_history):
    new = quiz_questions(seed_history, 2)[2]  # b3 = 1.5655, step size -0.6262
    assert check_answer(new, "0.9393") == (
        False,
        "That adds the step size; the new b3 = old b3 - step size = 1.5655 - (-0.6262) = 2.1917.",
    )
    assert check_answer(new, "2.19").correct


def test_a_mistake_that_gives_the_right_answer_is_never_named():
    # learning rate 1: the step size is the slope, so "that is the slope" would be wrong
    history = b3_run(1.0, max_steps=1)
    slope, step_size, _ = quiz_questions(history, 1)
    assert check_answer(step_size, "-15.66").correct
    assert check_answer(slope, "-15.66").correct


# -- what the quiz shows -----------------------------------------------------------------


def test_the_points_show_what_the_first_slope_is_worked_out_from(seed_run):
    from chainrule.explain import quiz_points

    points = quiz_points(seed_run, 1)
    assert points.observed.tolist() == [0.0, 1.0, 0.0]
    assert points.predicted == pytest.approx(GREEN, abs=1e-9)  # b3 = 0: the green curve
    assert points.residual == pytest.approx([0 - GREEN[0], 1 - GREEN[1], 0 - GREEN[2]])
    # dSSR/db3 = sum of -2 x residual: the slope the engine gives
    slope = quiz_questions(seed_run, 1)[0].answer
    assert float(-2 * points.residual.sum()) == pytest.approx(slope, abs=1e-9)
    # before step 2 the model is at the new b3: the predictions training recorded
    later = quiz_points(seed_run, 2)
    assert later.predicted == pytest.approx(seed_run.history.steps[1].predictions, abs=1e-12)
    assert later.render("text").splitlines()[0].split() == [
        "dosage",
        "observed",
        "predicted",
        "residual",
    ]
    assert json.loads(later.render("json"))["points"][1] == {
        "inputs": {"dosage": 0.5},
        "observed": 1.0,
        "predicted": pytest.approx(seed_run.history.steps[1].predictions[1]),
        "residual": pytest.approx(1 - seed_run.history.steps[1].predictions[1]),
    }
    with pytest.raises(ChainruleError, match="step must be between 0 and 10, got 11"):
        quiz_points(seed_run, 11)


def test_the_forward_pass_quiz_reads_the_models_own_forward_pass():
    from chainrule.explain import forward_questions

    model = Formula(FORMULA, inputs=["dosage"], values=FITTED)
    questions = forward_questions(model, dosage())
    assert [q.parameter for q in questions] == ["x1", "y1", "x2", "y2", "predicted"]
    assert {q.kind for q in questions} == {"forward"}
    x1, y1, _, _, predicted = questions
    assert x1.prompt == (
        "At dosage = 0.5, with w1 = 3.34 and b1 = -1.43: x1 = w1 * dosage + b1. What is x1?"
    )
    assert "softplus(x) = ln(1 + e^x)" in y1.prompt  # from the op table
    assert x1.answer == pytest.approx(3.34 * 0.5 - 1.43)
    assert FITTED["w3"] * y1.answer == pytest.approx(BLUE[1], abs=1e-9)
    assert predicted.answer == pytest.approx(GREEN[1], abs=1e-9)
    assert check_answer(predicted, "-1.609") == (
        True,
        "Right: predicted at dosage = 0.5 is -1.6090.",
    )
    assert check_answer(predicted, "1.609").message == (
        "Right size, wrong sign: predicted at dosage = 0.5 is -1.6090."
    )
    assert check_answer(predicted, "-1.5").message.startswith("Not quite")
    first = forward_questions(model, dosage(), 1)[-1]
    assert first.answer == pytest.approx(GREEN[0], abs=1e-9)
    with pytest.raises(ChainruleError, match="data point must be between 1 and 3, got 0"):
        forward_questions(model, dosage(), 0)


def test_the_forward_pass_quiz_of_a_layer_model_asks_for_its_output():
    from chainrule.explain import forward_questions

    model = nn.MLP([1, 2, 1], activation="softplus")
    (question,) = forward_questions(model, dosage(), 3)
    assert question.prompt == "At dosage = 1, what does the model predict?"
    assert question.answer == pytest.approx(float(model.predict([[1.0]])[0]))


def test_a_model_of_several_outputs_shows_one_column_and_asks_one_question_per_output():
    from chainrule.explain import forward_questions, quiz_points
    from chainrule.run import Run
    from chainrule.scenario import load_scenario

    s = load_scenario("iris-three")
    run = Run.train(s.build_model(), s.data, loss=s.loss, stop={"max_steps": 1})
    points = quiz_points(run, 1)
    header = points.render("text").splitlines()[0].split()
    assert header[-3:] == ["predicted[0]", "predicted[1]", "predicted[2]"]
    assert points.residual is None  # cross entropy has no residuals
    questions = forward_questions(run.start, s.data, 2)
    assert [q.parameter for q in questions] == ["output 1", "output 2", "output 3"]
    X = run.start.feed(s.data)
    assert [q.answer for q in questions] == pytest.approx(run.start.predict(X[1:2])[0].tolist())


def test_one_points_term_is_offered_only_when_the_table_shows_every_point():
    from chainrule.explain.quiz import MAX_POINTS
    from chainrule.run import Run

    data = load_dataset("xor", n=MAX_POINTS + 1)
    run = Run.train(nn.MLP([2, 2, 1]), data, loss="mse", stop={"max_steps": 1})
    for question in quiz_questions(run, 1):
        assert not any("term alone" in m.message for m in question.mistakes)
    small = Run.train(nn.MLP([2, 2, 1]), data.subset(range(4)), loss="mse", stop={"max_steps": 1})
    slope = quiz_questions(small, 1)[0]
    terms = [m.value for m in slope.mistakes if "term alone" in m.message]
    assert len(terms) == 4 and sum(terms) == pytest.approx(slope.answer, abs=1e-12)
