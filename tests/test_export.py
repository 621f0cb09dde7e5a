"""Hand-over to PyTorch and ONNX: the same outputs, slopes and training, and back again.

Every built-in scenario and an MLP on the digits is exported; the torch module must give
chainrule's outputs to 1e-12 in float64, the same gradient of the loss for every
parameter, and the same values after 10 steps of the same optimizer; onnxruntime must
give the outputs to 1e-5 in float32.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import cli, nn
from chainrule.datasets import load_dataset
from chainrule.errors import ChainruleError
from chainrule.losses import get_loss
from chainrule.scenario import builtin_scenarios, load_scenario

torch = pytest.importorskip(
    "torch", reason="the export tests need PyTorch: pip install 'chainrule[torch]'"
)
from chainrule.export import (  # noqa: E402
    OPSET,
    from_torch,
    to_onnx,
    to_torch,
    to_torch_source,
    torch_loss,
    torch_optimizer,
)

ROOT = Path(__file__).parent.parent
SCENARIOS = [info.name for info in builtin_scenarios()]
# iris with leaky ReLUs: the activation that keeps 0.01 of the slope below 0
CASES = [*SCENARIOS, "iris-leaky", "digits", "digits-momentum"]


def _case(name: str):
    """(model at its start, data, loss, optimizer, learning rate) of a scenario or digits."""
    if name.startswith("digits"):
        data = load_dataset("digits")
        model = nn.MLP([64, 16, 10], activation="tanh", seed=0)
        optimizer, lr = ("momentum", 0.1) if name == "digits-momentum" else ("adam", 0.01)
        return model, data, "cross_entropy", optimizer, lr
    if name == "iris-leaky":
        scenario = load_scenario("iris", overrides={"model.activation": "leaky_relu"})
    else:
        scenario = load_scenario(name)
    return (
        scenario.build_model(),
        scenario.data,
        scenario.loss,
        scenario.optimizer,
        scenario.learning_rate,
    )


def _chainrule_outputs(model, data) -> np.ndarray:
    x = dict(data.inputs) if isinstance(model, cr.Formula) else data.X
    return model(x).data


def _torch_inputs(model, data) -> list:
    """What the torch module takes: one column per input (formula) or the matrix."""
    if isinstance(model, cr.Formula):
        return [torch.tensor(data.inputs[name]) for name in model.inputs]
    return [torch.tensor(data.X)]


def _torch_layout(model) -> dict[str, np.ndarray]:
    """chainrule's gradients in PyTorch's layout (layer weights transposed)."""
    from chainrule.export._common import linear_weights

    transposed = linear_weights(model)
    return {
        name: (p.grad.T if name in transposed else p.grad)
        for name, p in model.named_parameters()
        if p.grad is not None
    }


# ---------------------------------------------------------------------------------------
# The same model in PyTorch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES[:-1])
def test_torch_module_gives_the_same_outputs_to_1e_12(name):
    model, data, *_ = _case(name)
    module = to_torch(model)
    expected = _chainrule_outputs(model, data)
    got = module(*_torch_inputs(model, data))
    assert got.dtype == torch.float64 and tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", CASES[:-1])
def test_torch_module_has_the_same_names_layout_and_frozen_parameters(name):
    model, *_ = _case(name)
    module = to_torch(model)
    chainrule_named = dict(model.named_parameters())
    torch_named = dict(module.named_parameters())
    assert list(torch_named) == list(chainrule_named)
    for key, p in chainrule_named.items():
        q = torch_named[key]
        values = q.detach().numpy()
        np.testing.assert_array_equal(values.T if p.ndim == 2 else values, p.data)
        assert q.requires_grad == (not p.frozen), key


@pytest.mark.parametrize("name", CASES[:-1])
def test_gradients_of_the_loss_are_the_same_for_every_parameter(name):
    model, data, loss, *_ = _case(name)
    module = to_torch(model)
    get_loss(loss)(
        model(dict(data.inputs) if isinstance(model, cr.Formula) else data.X), data.target
    ).backward()
    torch_loss(loss)(module(*_torch_inputs(model, data)), torch.tensor(data.target)).backward()
    expected = _torch_layout(model)
    got = {key: q.grad.numpy() for key, q in module.named_parameters() if q.grad is not None}
    assert set(got) == set(expected) == {k for k, p in model.named_parameters() if not p.frozen}
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", CASES)
def test_ten_steps_of_the_same_optimizer_end_at_the_same_values(name):
    model, data, loss, optimizer, lr = _case(name)
    module = to_torch(model)
    history = cr.train(
        model, data, loss=loss, optimizer=optimizer, learning_rate=lr, stop={"max_steps": 10}
    )
    assert history.num_steps == 10
    trained = [p for p in module.parameters() if p.requires_grad]
    opt = torch_optimizer(optimizer, trained, lr)
    loss_fn, x, y = torch_loss(loss), _torch_inputs(model, data), torch.tensor(data.target)
    for _ in range(10):
        opt.zero_grad()
        loss_fn(module(*x), y).backward()
        opt.step()
    back = from_torch(module, like=model)
    moved = 0
    for (key, p), (_, q) in zip(model.named_parameters(), back.named_parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-12, atol=1e-12, err_msg=key)
        moved += not p.frozen
    assert moved == len(trained) > 0


def test_softplus_and_every_formula_function_match_far_from_zero():
    # torch's F.softplus returns z itself above 20: the export must not.
    text = """
    a = softplus(w * x) + relu(x) + sigmoid(x) + tanh(x) + exp(x / 10) + abs(x) + leaky_relu(-x)
    b = log(x * x + 1) + ln(x * x + 2) + sqrt(x * x + 3) + maximum(x, 0) + minimum(w, x)
    y = a - b * -(x / w) ** 2 / 4 + 2 ** (x / 10)
    """
    model = cr.Formula(text, inputs=["x"], values={"w": 1.5})
    x = np.array([-40.0, -2.0, -0.5, 0.0, 0.5, 1.5, 2.0, 30.0])
    expected = model({"x": x})
    module = to_torch(model)
    got = module(torch.tensor(x))
    np.testing.assert_allclose(got.detach().numpy(), expected.data, rtol=1e-12, atol=0)
    expected.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(module.w.grad.numpy(), model.parameter("w").grad, rtol=1e-12)


def test_every_formula_function_has_a_torch_and_an_onnx_form():
    from chainrule.export._common import TORCH_FUNCTIONS
    from chainrule.formula_lang import FUNCTIONS

    assert set(TORCH_FUNCTIONS) == set(FUNCTIONS)
    pytest.importorskip("onnx", reason="needs onnx: pip install 'chainrule[onnx]'")
    from chainrule.export._onnx import ONNX_OPERATORS

    assert set(FUNCTIONS) <= set(ONNX_OPERATORS)


def test_formula_module_keeps_the_learner_names_in_trace_and_repr():
    model, data, *_ = _case("main-ideas")
    module = to_torch(model)
    values = module.trace(*_torch_inputs(model, data))
    assert list(values) == ["dosage", "w1", "b1", "w2", "b2", "w3", "w4", "b3"] + [
        "x1",
        "y1",
        "x2",
        "y2",
        "predicted",
    ]
    np.testing.assert_allclose(
        values["y1"].detach().numpy(), model.trace(dict(data.inputs))["y1"].data, atol=1e-12, rtol=0
    )
    assert "y1 = softplus(x1)" in repr(module)
    assert module.input_names == ("dosage",)


def test_formula_names_that_a_torch_module_needs_are_refused():
    with pytest.raises(ChainruleError, match="parameter 'training' would hide"):
        to_torch(cr.Formula("y = training * x", inputs=["x"]))
    with pytest.raises(ChainruleError, match="'torch' is one that the exported Python code"):
        to_torch_source(cr.Formula("torch = w * x\ny = torch + 1", inputs=["x"]))


def test_unknown_models_are_refused_naming_what_export_knows():
    class Line(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(1.0)

        def forward(self, x):
            return self.w * x

    with pytest.raises(ChainruleError, match="cannot export a Line: export knows a Formula"):
        to_torch(Line())
    with pytest.raises(ChainruleError, match="inputs are not known yet"):
        to_torch(cr.Formula("y = w * x"))


# ---------------------------------------------------------------------------------------
# The generated source
# ---------------------------------------------------------------------------------------


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", CASES[:-1])
def test_generated_source_imports_and_gives_the_same_module(tmp_path, name):
    model, data, *_ = _case(name)
    path = tmp_path / f"exported_{name.replace('-', '_')}.py"
    path.write_text(to_torch_source(model, title=f"The {name} model."))
    built = _import(path).build()
    module = to_torch(model)
    assert list(built.state_dict()) == list(module.state_dict())
    for (key, p), (_, q) in zip(built.named_parameters(), module.named_parameters(), strict=True):
        assert torch.equal(p, q) and p.requires_grad == q.requires_grad, key
    x = _torch_inputs(model, data)
    np.testing.assert_allclose(
        built(*x).detach().numpy(), _chainrule_outputs(model, data), rtol=0, atol=1e-12
    )


def test_formula_source_reads_like_the_formula():
    model, *_ = _case("main-ideas")
    source = to_torch_source(model)
    assert "        x1 = self.w1 * dosage + self.b1\n        y1 = softplus(x1)\n" in source
    assert "        return predicted\n" in source
    assert "FROZEN = ('w1', 'b1', 'w2', 'b2', 'w3', 'w4')" in source


def test_parentheses_are_kept_where_python_needs_them(tmp_path):
    text = "y = (x - w) - (w - x) * (-x) ** 2 / (x * w) ** -1 - -x ** 2 + 2 ** -x + (x ** 2) ** w"
    model = cr.Formula(text, inputs=["x"], values={"w": 1.25})
    path = tmp_path / "parens.py"
    path.write_text(to_torch_source(model))
    x = np.array([0.5, 1.0, 2.0])
    got = _import(path).build()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, model({"x": x}).data, rtol=1e-12)


@pytest.mark.parametrize("name", ["main-ideas", "moons"])
def test_generated_source_runs_on_its_own(tmp_path, name):
    model, *_ = _case(name)
    path = tmp_path / "model.py"
    path.write_text(to_torch_source(model))
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "tensor(" in done.stdout and "float64" in done.stdout


# ---------------------------------------------------------------------------------------
# Back from PyTorch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        nn.MLP([2, 5, 3, 1], activation="relu", output_activation="sigmoid", seed=2),
        nn.Sequential(nn.Linear(2, 3, seed=1), nn.Softplus(), nn.Linear(3, 1, bias=False)),
        nn.Linear(4, 2, dtype="float32"),
        cr.Formula("y = w * x + b", inputs=["x"], values={"w": 0.25, "b": 0.0}),
    ],
    ids=["mlp", "sequential", "linear-float32", "formula"],
)
def test_from_torch_round_trips_names_shapes_values_and_frozen(model):
    model.freeze(next(name for name, _ in model.named_parameters()))
    module = to_torch(model)
    for source in (module, module.state_dict()):
        back = from_torch(source, like=model)
        assert type(back) is type(model) and back is not model
        for (key, p), (key2, q) in zip(
            model.named_parameters(), back.named_parameters(), strict=True
        ):
            assert key == key2 and q.dtype == p.dtype and q.frozen == p.frozen, key
            np.testing.assert_array_equal(q.data, p.data)


def test_from_torch_takes_torch_training_and_frozen_flags():
    model = nn.MLP([1, 2, 1], activation="softplus")
    module = to_torch(model)
    with torch.no_grad():
        module.output.bias.fill_(0.5)
    module.hidden.weight.requires_grad_(False)
    back = from_torch(module, like=model)
    assert back.output.bias.data.tolist() == [0.5] and model.output.bias.data.tolist() != [0.5]
    assert [name for name, p in back.named_parameters() if p.frozen] == ["hidden.weight"]


def test_from_torch_refuses_mismatches_with_one_clear_error():
    model = nn.MLP([2, 3, 1])
    state = to_torch(model).state_dict()
    with pytest.raises(ChainruleError, match=r"missing output.bias\); the model has: hidden"):
        from_torch({k: v for k, v in state.items() if k != "output.bias"}, like=model)
    with pytest.raises(ChainruleError, match="unexpected extra.weight"):
        from_torch({**state, "extra.weight": torch.zeros(1)}, like=model)
    wrong = {**state, "hidden.weight": state["hidden.weight"].T}  # chainrule's layout
    with pytest.raises(
        ChainruleError,
        match=r"hidden.weight has shape \(2, 3\) in the torch weights; the model needs "
        r"\(3, 2\) \(PyTorch's \(out, in\) layout\)",
    ):
        from_torch(wrong, like=model)
    with pytest.raises(ChainruleError, match="give a torch.nn.Module or its state_dict"):
        from_torch([1, 2], like=model)
    with pytest.raises(ChainruleError, match="does not hold numbers"):
        from_torch({**state, "output.bias": np.array(["a"])}, like=model)


# ---------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------


def _onnx_session(path: Path):
    onnx = pytest.importorskip("onnx", reason="needs onnx: pip install 'chainrule[onnx]'")
    ort = pytest.importorskip(
        "onnxruntime", reason="needs onnxruntime: pip install 'chainrule[onnx]'"
    )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import] == [OPSET]
    return proto, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", CASES[:-1])
def test_onnxruntime_gives_the_same_outputs_to_1e_5_in_float32(tmp_path, name):
    model, data, *_ = _case(name)
    path = to_onnx(model, tmp_path / "model.onnx", columns=list(data.input_names))
    proto, session = _onnx_session(path)
    names = [i.name for i in session.get_inputs()]
    assert names == list(data.input_names)  # the data's column names
    feeds = {n: data.inputs[n].astype(np.float32) for n in names}
    (got,) = session.run(None, feeds)
    expected = _chainrule_outputs(model, data)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    output = session.get_outputs()[0].name
    assert output == (model.output_name if isinstance(model, cr.Formula) else "output")


def test_onnx_graph_names_values_as_the_learner_does(tmp_path):
    model, data, *_ = _case("main-ideas")
    proto, _ = _onnx_session(to_onnx(model, tmp_path / "seed.onnx"))
    outputs = {out for node in proto.graph.node for out in node.output}
    assert {"x1", "y1", "x2", "y2", "predicted"} <= outputs
    assert {init.name for init in proto.graph.initializer} >= {"w1", "b3"}


def test_onnx_layer_model_takes_one_matrix_without_column_names(tmp_path):
    model, data, *_ = _case("digits")
    _, session = _onnx_session(to_onnx(model, tmp_path / "digits.onnx"))
    (only,) = session.get_inputs()
    assert only.name == "input" and only.shape[1] == 64
    (got,) = session.run(None, {"input": data.X[:50].astype(np.float32)})
    np.testing.assert_allclose(got, model(data.X[:50]).data, rtol=1e-5, atol=1e-5)
    with pytest.raises(ChainruleError, match="takes 64 inputs, but 2 columns"):
        to_onnx(model, tmp_path / "bad.onnx", columns=["a", "b"])
    seed = cr.Formula("y = w * dosage", inputs=["dosage"])
    with pytest.raises(ChainruleError, match="the formula's inputs are dosage, not dose"):
        to_onnx(seed, tmp_path / "bad.onnx", columns=["dose"])


# ---------------------------------------------------------------------------------------
# Missing packages, the command line, the DDP example, the docstrings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "call", "extra"),
    [
        ("torch", lambda m, p: to_torch(m), "chainrule[torch]"),
        ("torch", lambda m, p: to_torch_source(m), "chainrule[torch]"),
        ("onnx", lambda m, p: to_onnx(m, p), "chainrule[onnx]"),
    ],
)
def test_a_missing_package_names_the_extra_to_install(monkeypatch, tmp_path, package, call, extra):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    model = cr.Formula("y = w * x", inputs=["x"])
    with pytest.raises(
        ChainruleError, match=re.escape(f"needs the {package} package: pip install '{extra}'")
    ):
        call(model, tmp_path / "m.onnx")


def test_cli_missing_package_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code = cli.main(["export", "main-ideas", "--to", "onnx", "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "chainrule: error: exporting to ONNX needs the onnx package: "
        "pip install 'chainrule[onnx]'\n"
    )


def test_cli_exports_a_trained_scenario_to_each_format(capsys, tmp_path):
    scenario = load_scenario("main-ideas")
    trained = scenario.run().model
    for to, name in [("torch", "seed.pt"), ("torch-source", "seed.py"), ("onnx", "seed.onnx")]:
        out = tmp_path / name
        assert cli.main(["export", "main-ideas", "--to", to, "--out", str(out)]) == 0
        assert capsys.readouterr().out == f"wrote {out}\n"
    state = torch.load(tmp_path / "seed.pt", weights_only=True)
    assert state["b3"].item() == trained.parameter("b3").item() != 0.0  # trained, as run does
    built = _import(tmp_path / "seed.py").build()
    assert built.b3.item() == trained.parameter("b3").item() and not built.w1.requires_grad
    _, session = _onnx_session(tmp_path / "seed.onnx")
    assert [i.name for i in session.get_inputs()] == ["dosage"]


def test_cli_exports_a_saved_model_as_saved(capsys, tmp_path):
    pytest.importorskip("safetensors")
    model = nn.MLP([2, 4, 1], activation="tanh", seed=5)
    cr.save(model, tmp_path / "net.safetensors")
    out = tmp_path / "net.pt"
    code = cli.main(
        ["export", str(tmp_path / "net.safetensors"), "--to", "torch", "--out", str(out)]
    )
    assert code == 0
    state = torch.load(out, weights_only=True)
    np.testing.assert_array_equal(state["hidden.weight"].numpy(), model.hidden.weight.data.T)


def test_cli_export_mistakes_exit_2(capsys, tmp_path):
    code = cli.main(["export", "no-such", "--to", "onnx", "--out", str(tmp_path / "x.onnx")])
    assert code == 2 and capsys.readouterr().err.startswith("chainrule: error: 'no-such'")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "moons", "--to", "pdf", "--out", "x"])
    assert exit_.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_ddp_example_ends_at_the_single_process_weights():
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "ddp.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "2 processes (gloo, CPU) end at the weights of 1 process" in done.stdout


@pytest.mark.parametrize(
    "module",
    [
        "chainrule.export",
        "chainrule.export._common",
        "chainrule.export._torch",
        "chainrule.export._torch_modules",
    ],
)
def test_docstring_examples(module):
    pytest.importorskip("onnx")
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_importing_chainrule_export_loads_neither_torch_nor_onnx():
    code = (
        "import sys, chainrule, chainrule.export\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_torch_loss_and_optimizer_names_follow_chainrule():
    with pytest.raises(ChainruleError, match="unknown loss 'hinge'"):
        torch_loss("hinge")
    with pytest.raises(ChainruleError, match="unknown optimizer 'lbfgs'"):
        torch_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 0.1)
    p = torch.zeros(1, requires_grad=True)
    assert torch_optimizer("momentum", [p], 0.1).defaults["momentum"] == 0.9
    assert torch_optimizer("adamw", [p], 0.1).defaults["weight_decay"] == 0.01
    # the losses take (n, 1) predictions with (n,) targets, as chainrule does
    predictions = torch.tensor([[1.0], [2.0]])
    assert torch_loss("mse")(predictions, torch.tensor([1.0, 0.0])).item() == 2.0


def test_scaling_guide_python_example_runs():
    text = (ROOT / "docs" / "scaling.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.DOTALL)[0]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) > 0.95  # the moons, learned by PyTorch, judged by chainrule
