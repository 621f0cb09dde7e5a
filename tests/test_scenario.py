"""Tests for chainrule.scenario: the built-in scenarios, the file format and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from seed import (
    DOSAGE,
    FITTED,
    FORMULA,
    MAIN_IDEAS,
    OBSERVED,
    START_SLOPES,
    THREE_AFTER,
    THREE_SLOPES,
)

from chainrule.errors import ChainruleError
from chainrule.explain import stop_message
from chainrule.scenario import (
    TEMPLATE,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from chainrule.scenario.source import Source

BAD = Path(__file__).parent / "bad_scenarios"


# ---------------------------------------------------------------------------------------
# Built-in scenarios
# ---------------------------------------------------------------------------------------


def test_builtin_scenarios_are_listed_with_titles_and_descriptions():
    infos = {info.name: info for info in builtin_scenarios()}
    assert {"main-ideas", "three-parameters", "all-parameters", "moons", "circles"} <= set(infos)
    for info in infos.values():
        assert info.title and info.title != info.name
        assert len(info.description) > 80, f"{info.name} needs a description for teachers"


def test_main_ideas_is_the_seed():
    scenario = load_scenario("main-ideas")
    assert scenario.title == "Backpropagation main ideas: estimate b3"
    assert scenario.data.inputs["dosage"].tolist() == DOSAGE
    assert scenario.data.target.tolist() == OBSERVED
    assert scenario.data.target_name == "observed"
    assert scenario.data.task == "regression"
    assert scenario.parameter_names == ["w1", "b1", "w2", "b2", "w3", "w4", "b3"]
    assert scenario.optimize == ["b3"]
    assert (scenario.loss, scenario.optimizer, scenario.learning_rate) == (
        "ssr",
        "gradient_descent",
        0.1,
    )
    assert (scenario.stop.step_size, scenario.stop.max_steps) == (0.001, 1000)
    starts = {name: p.item() for name, p in scenario.model.named_parameters()}
    assert starts == FITTED


def test_main_ideas_run_reproduces_statquest():
    trained = load_scenario("main-ideas").run()
    model, history = trained.model, trained.history
    assert history.trained == ["b3"]
    assert len(history.steps) == len(MAIN_IDEAS)
    for record, (step, b3, ssr, slope, size, new) in zip(history.steps, MAIN_IDEAS, strict=True):
        assert record.step == step
        assert record.values["b3"] == pytest.approx(b3, abs=1e-9)
        assert record.loss == pytest.approx(ssr, abs=1e-9)
        assert record.slopes["b3"] == pytest.approx(slope, abs=1e-9)
        assert record.step_sizes["b3"] == pytest.approx(size, abs=1e-9)
        assert record.new_values["b3"] == pytest.approx(new, abs=1e-9)
    assert history.stop_reason == "step_size"
    assert stop_message(history).startswith("b3 = 2.61 after 10 steps")
    # The frozen six kept their values.
    for name in ("w1", "b1", "w2", "b2", "w3", "w4"):
        assert model.scalar(name).value == FITTED[name]


def test_three_parameters_first_step_and_end():
    scenario = load_scenario("three-parameters")
    assert scenario.optimize == ["w3", "w4", "b3"]
    trained = scenario.run()
    model, history = trained.model, trained.history
    first = history.steps[0]
    assert first.loss == pytest.approx(1.3976679, abs=1e-6)
    assert first.slopes == pytest.approx(THREE_SLOPES, abs=1e-6)
    assert first.new_values == pytest.approx(THREE_AFTER, abs=1e-8)
    assert history.stop_reason == "step_size"
    final = [round(model.scalar(name).value, 2) for name in ("w3", "w4", "b3")]
    assert final == [-1.22, -2.30, 2.61]
    for name in ("w1", "b1", "w2", "b2"):
        assert model.scalar(name).value == FITTED[name]


def test_all_parameters_first_slopes_and_convergence():
    scenario = load_scenario("all-parameters")
    assert scenario.optimize == scenario.parameter_names
    trained = scenario.run()
    history = trained.history
    slopes = history.steps[0].slopes
    expected = list(START_SLOPES.values())
    assert [slopes[name] for name in scenario.parameter_names] == pytest.approx(expected, abs=1e-7)
    assert history.steps[0].loss == pytest.approx(1.89587816, abs=1e-7)
    # The comment in the file promises convergence: the step-size rule fires.
    assert history.stop_reason == "step_size"
    assert history.final_loss < 1e-4


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_classifiers_reach_high_accuracy(name):
    scenario = load_scenario(name)
    assert scenario.data.task == "binary"
    assert scenario.loss == "binary_cross_entropy_with_logits"
    trained = scenario.run()
    _, history = trained.model, trained.history
    assert history.final_accuracy >= 0.95


def test_run_is_repeatable_and_leaves_the_scenario_model_alone():
    scenario = load_scenario("main-ideas")
    trained = scenario.run()
    first, history1 = trained.model, trained.history
    trained = scenario.run()
    second, history2 = trained.model, trained.history
    assert first is not second and first is not scenario.model
    assert history1.to_dict() == history2.to_dict()
    assert scenario.model.scalar("b3").value == 0.0
    assert [n for n, p in scenario.build_model().named_parameters() if not p.frozen] == ["b3"]


def test_template_loads_and_runs(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(TEMPLATE)
    scenario = load_scenario(path)
    assert scenario.title == "My scenario"
    trained = scenario.run()
    _, history = trained.model, trained.history
    assert history.stop_reason == "step_size"


# ---------------------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------------------

SEED_FORMULA = f'formula = """{FORMULA}"""'


def test_defaults_and_explicit_target():
    scenario = parse_scenario(
        """
[data]
x = [0.0, 1.0, 2.0]
y = [1.0, 3.0, 5.0]
target = "y"
[model]
formula = "y_hat = w * x + b"
[parameters]
init = "random"
w = 0.5
"""
    )
    assert scenario.data.input_names == ("x",)
    assert scenario.data.target_name == "y"
    assert scenario.title == "scenario"
    assert (scenario.loss, scenario.optimizer, scenario.learning_rate) == (
        "ssr",
        "gradient_descent",
        0.1,
    )
    assert scenario.optimize == ["w", "b"]
    assert scenario.model.scalar("w").value == 0.5
    assert scenario.model.scalar("b").value == 0.0  # a b... name starts at 0


def test_unnamed_parameters_start_seeded():
    text = '[data]\nx = [0.0, 1.0]\ny = [0.0, 1.0]\n[model]\nformula = "p = w * x + b"\n'
    text += '[parameters]\ninit = "random"\n'
    a = parse_scenario(text + "[train]\nseed = 1\n").model.scalar("w").value
    b = parse_scenario(text + "[train]\nseed = 1\n").model.scalar("w").value
    c = parse_scenario(text + "[train]\nseed = 2\n").model.scalar("w").value
    assert a == b != c


def test_csv_relative_to_the_file(tmp_path):
    (tmp_path / "doses.csv").write_text("id,dosage,efficacy\n1,0,0\n2,0.5,1\n3,1,0\n")
    path = tmp_path / "s.toml"
    path.write_text(
        '[data]\ncsv = "doses.csv"\ninputs = ["dosage"]\ntarget = "efficacy"\n'
        f'[model]\n{SEED_FORMULA}\n[parameters]\ninit = "random"\nb3 = 1.0\n'
    )
    scenario = load_scenario(path)
    assert scenario.data.input_names == ("dosage",)
    assert scenario.data.target.tolist() == OBSERVED
    assert scenario.data.task == "regression"  # the loss (ssr) decides, not the 0/1 values


def test_csv_inputs_and_target_from_the_formula(tmp_path):
    (tmp_path / "doses.csv").write_text("dosage,efficacy\n0,0\n0.5,1\n1,0\n")
    path = tmp_path / "s.toml"
    path.write_text(
        f'[data]\ncsv = "doses.csv"\n[model]\n{SEED_FORMULA}\n[parameters]\ninit = "random"\n'
    )
    scenario = load_scenario(path)
    assert (scenario.data.input_names, scenario.data.target_name) == (("dosage",), "efficacy")


def test_layer_model_with_starting_values_and_optimize_globs():
    scenario = parse_scenario(
        """
[data]
dataset = "xor"
n = 40
[model]
layers = [2, 3, 1]
[parameters]
"hidden.weight[0,1]" = 0.25
"output.bias" = [0.5]
[train]
loss = "binary_cross_entropy_with_logits"
optimize = ["output.*"]
"""
    )
    model = scenario.build_model()
    assert model.scalar("hidden.weight[0,1]").value == 0.25
    assert model.scalar("output.bias[0]").value == 0.5
    assert scenario.optimize == ["output.weight", "output.bias"]
    assert [n for n, p in model.named_parameters() if not p.frozen] == scenario.optimize
    assert scenario.model.activation_name == "tanh"


def test_formula_on_a_builtin_data_set():
    scenario = parse_scenario(
        """
[data]
dataset = "moons"
n = 20
[model]
formula = "logit = w1 * x1 + w2 * x2 + b"
[parameters]
init = "random"
[train]
loss = "binary_cross_entropy_with_logits"
"""
    )
    assert scenario.data.input_names == ("x1", "x2")
    assert scenario.parameter_names == ["w1", "w2", "b"]


def test_cross_entropy_layers_need_one_output_per_class():
    text = '[data]\ndataset = "moons"\n[model]\nlayers = [2, 4, {k}]\n[train]\nloss = "mse"\n'
    assert parse_scenario(text.format(k=1)).loss == "mse"
    with pytest.raises(ChainruleError, match=r"last size must be 1"):
        parse_scenario(text.format(k=2))


def test_a_formula_with_a_multiclass_data_set_names_the_data_set():
    text = '[data]\ndataset = "digits"\n[model]\nformula = "p = w * p0 + b"\n'
    with pytest.raises(ChainruleError) as info:
        parse_scenario(text, label="digits.toml")
    message = str(info.value)
    assert message.startswith("digits.toml:2: [data] dataset: the data has 10 classes")
    assert "e.g. layers = [1, 8, 10]" in message
    # The same data with a loss that one output can feed loads.
    assert (
        parse_scenario(text + '[parameters]\ninit = "random"\n[train]\nloss = "mse"\n').loss
        == "mse"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '[data]\ndataset = "moons"\nn = 1000000000\n[model]\nlayers = [2, 4, 1]\n',
            ":3: [data] n: at most 100,000 data points, got 1,000,000,000",
        ),
        (
            '[data]\ndataset = "moons"\n[model]\nlayers = [2, 100000000, 1]\n',
            ":4: [model] layers: these layers have 400,000,001 weights and biases; at most "
            "1,000,000",
        ),
        (
            '[data]\ndataset = "moons"\n[model]\nlayers = [2, 4, 1]\n'
            "[train]\nstop = { max_steps = 10000000000 }\n",
            ":6: [train] stop: max_steps: at most 1,000,000, got 10,000,000,000",
        ),
    ],
)
def test_unreasonable_sizes_are_refused_before_any_work(text, fragment):
    with pytest.raises(ChainruleError) as info:
        parse_scenario(text, label="big.toml")
    assert str(info.value) == f"big.toml{fragment}"


def test_too_many_data_points_in_a_csv_or_in_the_file(tmp_path, monkeypatch):
    import chainrule.scenario.data_table

    monkeypatch.setattr(chainrule.scenario.data_table, "MAX_DATA_POINTS", 2)
    (tmp_path / "doses.csv").write_text("dosage,efficacy\n0,0\n0.5,1\n1,0\n")
    csv_file = tmp_path / "csv.toml"
    csv_file.write_text('[data]\ncsv = "doses.csv"\n[model]\nformula = "p = w * dosage"\n')
    with pytest.raises(
        ChainruleError, match=r"csv.toml:2: \[data\] csv: at most 2 data points, got 3"
    ):
        load_scenario(csv_file)
    inline = '[data]\nx = [0.0, 1.0, 2.0]\ny = [1.0, 3.0, 5.0]\n[model]\nformula = "p = w * x"\n'
    with pytest.raises(ChainruleError, match=r":1: \[data\]: at most 2 data points, got 3"):
        parse_scenario(inline)


def test_source_finds_keys_but_not_inside_multiline_strings():
    source = Source(
        "f.toml",
        'title = "t"\n[model]\nformula = """\nloss = 1\n"""\n[train]\nloss = "ssr"\n',
    )
    assert source.line_of("train", "loss") == 7
    assert ("model", "loss") not in source.keys  # a line of the formula, not a key
    assert source.line_of("model", "loss") == 2  # so the table header is the place
    assert source.line_of("model", "formula") == 3
    assert source.line_of(None, "title") == 1


@pytest.mark.parametrize(
    ("formula", "line"),
    [
        ('formula = """\nx = w * dosage\ny = softplux(x)\n"""', 4),  # starts on the next line
        ('formula = """x = w * dosage\ny = softplux(x)\n"""', 3),  # starts on the key's line
        ('formula = "y = softplux(w * dosage)"', 2),  # a one-line string
    ],
)
def test_formula_errors_give_the_line_of_the_file(formula, line):
    text = f"[model]\n{formula}\n[data]\ndosage = [1.0]\nobserved = [2.0]\n"
    with pytest.raises(ChainruleError) as info:
        parse_scenario(text, label="f.toml")
    assert str(info.value).startswith(f"f.toml:{line}: [model] formula: formula line")
    assert "did you mean 'softplus'?" in str(info.value)


def test_unknown_name_or_missing_file():
    with pytest.raises(ChainruleError, match=r"did you mean 'main-ideas'\?"):
        load_scenario("main-idea")
    with pytest.raises(ChainruleError, match=r"nope\.toml: no such file"):
        load_scenario("nope.toml")


# ---------------------------------------------------------------------------------------
# The corpus of bad files: each error names the file, the line and the key
# ---------------------------------------------------------------------------------------

BAD_FILES = {
    "array-with-text.toml": [":4: [data] dosage:", "value 2 is 'half', expected a finite number"],
    "arrays-different-length.toml": [":4: [data] dosage:", "has 3 values but the target"],
    "binary-target-not-labels.toml": [":5: [data] observed:", "needs targets 0 or 1"],
    "cross-entropy-formula.toml": [
        ":26: [train] loss:",
        "'cross_entropy' needs one output per class, but a formula has one output (predicted)",
        "use ssr, mse, mae or, for 0/1 targets, binary_cross_entropy_with_logits",
    ],
    "csv-and-arrays.toml": [":5: [data] dosage:", "unknown key 'dosage'"],
    "csv-bad-cell.toml": [":4: [data] csv:", "line 3, column 'dosage': 'half' is not a number"],
    "csv-missing-file.toml": [":4: [data] csv:", "no-such-file.csv: no such file"],
    "csv-no-target-column.toml": [":4: [data] csv:", "no column named 'efficacy'"],
    "dataset-unknown-option.toml": [":5: [data] noice:", "did you mean 'noise'?"],
    "formula-and-layers.toml": [":8: [model] layers:", "either formula or layers"],
    "formula-syntax.toml": [":12: [model] formula:", "formula line 4", "never closed"],
    "formula-unknown-function.toml": [":10: [model] formula:", "did you mean 'softplus'?"],
    "formula-used-before.toml": [":9: [model] formula:", "'x1' is used before it is assigned"],
    "input-as-parameter.toml": [":17: [parameters] dosage:", "is an input, not a parameter"],
    "layers-wrong-inputs.toml": [":7: [model] layers:", "must start with 2, not 3"],
    "learning-rate-negative.toml": [":28: [train] learning_rate:", "greater than 0, got -0.1"],
    "learning-rate-text.toml": [":28: [train] learning_rate:", "expected a number, got 'fast'"],
    "missing-model.toml": ["the [model] table is missing"],
    "not-toml.toml": [":28: not valid TOML"],
    "optimize-not-list.toml": [":27: [train] optimize:", 'expected a list of names, e.g. ["b3"]'],
    "optimize-unknown.toml": [":27: [train] optimize:", "no parameter 'b4'"],
    "parameter-text.toml": [":17: [parameters] w1:", "expected a number, got '3.34'"],
    "sigmoid-with-bce.toml": [":9: [model] output:", "takes logits"],
    "stop-max-steps-fraction.toml": [":29: [train] stop:", "max_steps: expected a whole number"],
    "stop-unknown-key.toml": [":29: [train] stop:", "did you mean 'step_size'?"],
    "two-unused-arrays.toml": [":3: [data]:", "observed, weight", 'target = "..."'],
    "unknown-dataset.toml": [":4: [data] dataset:", "did you mean 'moons'?"],
    "unknown-loss.toml": [":26: [train] loss:", "did you mean 'ssr'?"],
    "unknown-optimizer.toml": [":28: [train] optimizer:", "did you mean 'adam'?"],
    "unknown-parameter.toml": [":24: [parameters] b4:", "'b4' is not a parameter"],
    "unknown-top-key.toml": [":25: [trian]:", "did you mean [train]?"],
    "unknown-train-key.toml": [":28: [train] learning_rat:", "did you mean 'learning_rate'?"],
}


def test_the_corpus_is_complete():
    assert sorted(BAD_FILES) == sorted(path.name for path in BAD.glob("*.toml"))


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_scenario_files(name):
    path = BAD / name
    with pytest.raises(ChainruleError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    for fragment in BAD_FILES[name]:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_no_data():
    with pytest.raises(ChainruleError, match=r"<scenario>:1: \[data\]: no data"):
        parse_scenario('[data]\n[model]\nformula = "p = w * x"\n')


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ('x = [0.0, 1.0]\ny = [0.0, 1.0]\ntarget = "z"', "no array named 'z'"),
        ("x = [0.0, 1.0]\ny = []", "[data] y: the array is empty"),
        ("x = [0.0, 1.0]", "no array for the target"),
        ("x = 3\ny = [1.0]", "[data] x: expected an array of numbers"),
        ('x = [0.0, 1.0]\ny = [0.0, 1.0]\ntarget = "x"', "'x' is the target"),
    ],
)
def test_inline_data_errors(data, fragment):
    text = f'[data]\n{data}\n[model]\nformula = "p = w * x"\n'
    with pytest.raises(ChainruleError) as info:
        parse_scenario(text)
    assert fragment in str(info.value)


def test_a_layer_model_takes_the_last_array_as_target():
    scenario = parse_scenario("[data]\na = [0.0, 1.0]\nb = [1.0, 0.0]\n[model]\nlayers = [1, 1]\n")
    assert (scenario.data.input_names, scenario.data.target_name) == (("a",), "b")
    with pytest.raises(ChainruleError, match="say which array is the target"):
        parse_scenario("[data]\na = [0.0]\nb = [1.0]\nc = [1.0]\n[model]\nlayers = [2, 1]\n")


def test_predictions_match_a_hand_forward_pass():
    scenario = load_scenario("main-ideas")
    x, v = np.array(DOSAGE), FITTED
    soft = (
        np.logaddexp(0, v["w1"] * x + v["b1"]) * v["w3"]
        + np.logaddexp(0, v["w2"] * x + v["b2"]) * v["w4"]
    )
    assert scenario.model({"dosage": x}).data == pytest.approx(soft)


def test_load_scenario_is_public_and_importing_chainrule_stays_light():
    import subprocess
    import sys

    import chainrule

    assert chainrule.load_scenario is load_scenario
    code = (
        "import sys, chainrule; chainrule.load_scenario('main-ideas'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'matplotlib', 'torch'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_model_inputs_pick_columns_in_their_order(tmp_path):
    text = (
        "[data]\na = [0.0, 1.0]\nb = [2.0, 3.0]\ny = [1.0, 0.0]\n"
        '[model]\nlayers = [2, 1]\ninputs = ["b", "a"]\n'
    )
    assert parse_scenario(text).data.input_names == ("b", "a")
    with pytest.raises(ChainruleError, match=r"\[model\] inputs names 'c'"):
        parse_scenario(text.replace('"a"]', '"c"]'))
    (tmp_path / "d.csv").write_text("a,b,y\n0,2,1\n1,3,0\n")
    path = tmp_path / "s.toml"
    path.write_text('[data]\ncsv = "d.csv"\n[model]\nlayers = [2, 1]\ninputs = ["b", "c"]\n')
    with pytest.raises(ChainruleError, match=r"no column named 'c'"):
        load_scenario(path)


# -- no silent traps: a typo or a missing starting value is an error ----------------------


def seed_file(formula: str = FORMULA, parameters: str = "") -> str:
    return (
        "[data]\ndosage = [0.0, 0.5, 1.0]\nobserved = [0.0, 1.0, 0.0]\n"
        f'[model]\nformula = """{formula}"""\n[parameters]\n{parameters}'
    )


FITTED_LINES = "w1 = 3.34\nb1 = -1.43\nw2 = -3.53\nb2 = 0.57\nw3 = -1.22\nw4 = -2.30\nb3 = 0.0\n"


def test_a_typo_in_a_scenario_formula_names_the_file_line_and_the_intended_name():
    text = seed_file(FORMULA.replace("w3 * y1", "w3 * y"), FITTED_LINES)
    with pytest.raises(ChainruleError) as info:
        parse_scenario(text, label="typo.toml")
    assert str(info.value) == (
        "typo.toml:7: [model] formula: formula line 2, column 1: y1 is computed on line 2 but "
        "never used; line 5 uses y, which no line computes: did you mean y1?"
    )


def test_a_parameter_left_out_is_an_error_unless_the_file_asks_for_random_starts():
    without_w2 = FITTED_LINES.replace("w2 = -3.53\n", "")
    with pytest.raises(ChainruleError) as info:
        parse_scenario(seed_file(parameters=without_w2), label="s.toml")
    assert str(info.value).startswith(
        "s.toml:12: [parameters]: no starting value for w2 (the formula's parameters: "
        "w1, b1, w2, b2, w3, w4, b3; [parameters] lists: w1, b1, b2, w3, w4, b3); give each "
        'a value in [parameters], or write init = "random" there'
    )
    random = parse_scenario(seed_file(parameters='init = "random"\n' + without_w2))
    assert random.model.scalar("w1").value == 3.34 and random.model.scalar("w2").value != 0
    with pytest.raises(ChainruleError, match=r"\[parameters\] init: unknown value 'zeros'"):
        parse_scenario(seed_file(parameters='init = "zeros"\n' + without_w2))


def test_a_scenario_with_a_sigmoid_output_trains_with_probabilities_not_logits():
    text = (
        '[data]\ndataset = "moons"\nn = 40\n[model]\nlayers = [2, 4, 1]\noutput = "sigmoid"\n'
        '[train]\nloss = "{loss}"\nstop = {{ max_steps = 3 }}\n'
    )
    assert parse_scenario(text.format(loss="binary_cross_entropy")).run().history.steps
    with pytest.raises(ChainruleError, match=r":6: \[model\] output: .* applied twice"):
        parse_scenario(text.format(loss="binary_cross_entropy_with_logits"))
    without = text.replace('output = "sigmoid"\n', "")
    with pytest.raises(ChainruleError, match=r":7: \[train\] loss: .* applies no sigmoid"):
        parse_scenario(without.format(loss="binary_cross_entropy"))


def test_overrides_are_checked_as_the_file_and_named_in_errors():
    scenario = load_scenario(
        "main-ideas", overrides={"train.learning_rate": 0.3, "parameters.b3": 1}
    )
    assert scenario.learning_rate == 0.3 and scenario.model.scalar("b3").value == 1.0
    assert load_scenario("main-ideas").learning_rate == 0.1  # the file is unchanged
    with pytest.raises(ChainruleError) as info:
        load_scenario("main-ideas", overrides={"parameters.b4": 1})
    assert str(info.value).startswith(
        "main-ideas.toml: --set parameters.b4=1: [parameters] b4: 'b4' is not a parameter"
    )
    with pytest.raises(ChainruleError, match=r"^--set title.x=1: title is a value, not a table"):
        load_scenario("main-ideas", overrides={"title.x": 1})


@pytest.mark.parametrize("name", ["main-ideas", "iris", "circles"])
def test_a_scenario_that_asks_to_compile_trains_to_the_same_numbers(name):
    # [train] compile = true replays one traced step (chainrule.train's compile=True):
    # a teacher's larger example runs faster and tells the same story
    compiled = load_scenario(name, overrides={"train.compile": True})
    assert compiled.compile and compiled.train_settings()["compile"] is True
    assert load_scenario(name).compile is False  # the default: eager
    fast, eager = compiled.run().history, load_scenario(name).run().history
    assert len(fast.steps) == len(eager.steps) and fast.stop_reason == eager.stop_reason
    np.testing.assert_allclose(
        [s.loss for s in fast.steps], [s.loss for s in eager.steps], rtol=0, atol=1e-12
    )
    for (_, a), (_, b) in zip(
        compiled.run().model.named_parameters(),
        load_scenario(name).run().model.named_parameters(),
        strict=True,
    ):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12)


def test_compile_takes_true_or_false_and_says_so_at_its_line():
    text = (
        'title = "t"\n[data]\ndataset = "dosage"\n[model]\nformula = "predicted = w * dosage"\n'
        "[parameters]\nw = 1.0\n[train]\ncompile = 1\n"
    )
    with pytest.raises(
        ChainruleError, match=r":9: \[train\] compile: expected true or false, got 1"
    ):
        parse_scenario(text)
    assert parse_scenario(text.replace("compile = 1", "compile = false")).compile is False
