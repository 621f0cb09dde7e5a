"""The explainer's ledger and scan on the seed's numbers, and the renderings they share."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from seed import FITTED, FORMULA, MAIN_IDEAS, SCAN, THREE_AFTER, THREE_SLOPES, THREE_START

from chainrule import ChainruleError, nn
from chainrule.datasets import dosage, load_dataset
from chainrule.explain import (
    FORMATS,
    Diagnosis,
    Ledger,
    chain_rule,
    diagnose,
    ledger,
    render,
    scan,
    stop_message,
)
from chainrule.formula import Formula
from chainrule.training import train

GOLDEN = Path(__file__).parent / "golden"

# StatQuest's main ideas as the explainer's ledger rows (tests/seed.py).
REFERENCE = np.array(MAIN_IDEAS)


def seed_model(train_only: tuple[str, ...] = ("b3",), **values: float) -> Formula:
    model = Formula(FORMULA, inputs=["dosage"], values={**FITTED, **values})
    model.freeze()
    model.unfreeze(*train_only)
    return model


@pytest.fixture(scope="module")
def seed_history():
    return train(seed_model(), dosage(), learning_rate=0.1, stop={"step_size": 0.001})


@pytest.fixture(scope="module")
def three_history():
    model = seed_model(("w3", "w4", "b3"), **THREE_START)
    return train(model, dosage(), learning_rate=0.1, stop={"max_steps": 30})


def assert_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME (which ends with a newline); CHAINRULE_UPDATE_GOLDEN=1
    rewrites the file."""
    path = GOLDEN / name
    if os.environ.get("CHAINRULE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")


# -- the ledger ---------------------------------------------------------------------------


def ledger_rows(table: Ledger, name: str) -> np.ndarray:
    return np.array(
        [
            [s["step"], s["values"][name], s["loss"], s["gradients"][name]]
            + [s["step_sizes"][name], s["new_values"][name]]
            for s in table.steps
        ]
    )


def test_seed_ledger_equals_the_reference(seed_history):
    table = ledger(seed_history)
    np.testing.assert_allclose(ledger_rows(table, "b3"), REFERENCE, rtol=0, atol=1e-9)
    assert table.stop_reason == "step_size"
    assert table.columns == ("b3",)
    assert table.loss_name == "SSR"


def test_seed_ledger_markdown_and_latex_match_the_golden_files(seed_history):
    table = ledger(seed_history)
    assert_golden("ledger_seed.md", table.render("markdown"))
    assert_golden("ledger_seed.tex", table.render("latex"))


def test_ledger_headers_use_the_learners_notation(seed_history):
    header = ledger(seed_history).render("text").splitlines()[0].split()
    assert header == ["step", "b3", "SSR", "dSSR/db3", "step", "size", "new", "b3"]
    latex = ledger(seed_history).render("latex")
    assert r"step & $b_3$ & $\mathrm{SSR}$ & $\frac{d\,\mathrm{SSR}}{d\,b_3}$" in latex
    assert r"step size & new $b_3$ \\" in latex


def test_ledger_says_why_the_run_stopped(seed_history):
    text = ledger(seed_history).render("text")
    assert text.endswith("stopped: b3 = 2.61 after 10 steps: every step size is below 0.001")


def test_ledger_json_is_the_history(seed_history):
    assert ledger(seed_history).to_dict() == seed_history.to_dict()
    shown = json.loads(render(ledger(seed_history), "json"))
    assert shown == seed_history.to_dict()  # full precision survives the text
    first = shown["steps"][0]
    assert (first["step"], first["loss"], first["gradients"]) == (
        1,
        pytest.approx(20.4235976776, abs=1e-9),
        {"b3": pytest.approx(-15.6551083806, abs=1e-9)},
    )
    chosen = ledger(seed_history, first=2, last=1).to_dict()
    assert [s["step"] for s in chosen["steps"]] == [1, 2, 10]
    assert chosen["final"] == seed_history.to_dict()["final"]
    assert set(chosen) == set(seed_history.to_dict())


def test_ledger_csv_keeps_full_precision(seed_history):
    rows = list(csv.reader(io.StringIO(ledger(seed_history).render("csv"))))
    assert rows[0] == ["step", "b3", "SSR", "dSSR/db3", "step size", "new b3"]
    values = np.array([[float(c) for c in row] for row in rows[1:]])
    expected = [[s.step, s.values["b3"], s.loss, s.slopes["b3"]] for s in seed_history.steps]
    np.testing.assert_array_equal(values[:, :4], expected)


def test_first_and_last_rows_with_an_ellipsis(seed_history):
    table = ledger(seed_history, first=2, last=2)
    assert [s["step"] for s in table.steps] == [1, 2, 9, 10]
    text = table.render("text").splitlines()
    assert text[4].split() == ["..."] * 6  # header, rule, two rows, then the gap
    assert "| ... | ... | ... | ... | ... | ... |" in table.render("markdown")
    assert r"$\vdots$ & $\vdots$" in table.render("latex")
    assert "..." not in table.render("csv")
    assert "..." in table.render("table")
    only_last = ledger(seed_history, last=1)
    assert [s["step"] for s in only_last.steps] == [10]
    assert only_last.render("text").splitlines()[2].split()[0] == "..."
    everything = ledger(seed_history, first=6, last=6)
    assert len(everything.steps) == 10 and "..." not in everything.render("text")


def test_every_kth_step_keeps_the_last(seed_history):
    assert [s["step"] for s in ledger(seed_history, every=4).steps] == [1, 5, 9, 10]
    assert [s["step"] for s in ledger(seed_history, every=3).steps] == [1, 4, 7, 10]


def test_several_parameters_and_chosen_columns(three_history):
    header = ledger(three_history).render("csv").splitlines()[0]
    assert header == (
        "step,w3,w4,b3,SSR,dSSR/dw3,dSSR/dw4,dSSR/db3,step size (w3),step size (w4),"
        "step size (b3),new w3,new w4,new b3"
    )
    first = ledger(three_history).steps[0]
    assert first["gradients"] == pytest.approx(THREE_SLOPES)
    assert first["new_values"] == pytest.approx(THREE_AFTER)
    only = ledger(three_history, columns=["w4"])
    assert only.render("csv").splitlines()[0] == "step,w4,SSR,dSSR/dw4,step size,new w4"
    assert only.to_dict()["steps"][0]["gradients"] == {"w4": pytest.approx(THREE_SLOPES["w4"])}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": ["w9"]}, "'w9' was not trained; the trained parameters are: b3"),
        ({"every": 0}, "every must be a whole number >= 1"),
        ({"first": -1}, "first must be a whole number >= 0"),
        ({"last": 1.5}, "last must be a whole number >= 0"),
    ],
)
def test_ledger_options_are_checked(seed_history, options, message):
    with pytest.raises(ChainruleError, match=message):
        ledger(seed_history, **options)


def test_a_history_without_detail_gives_the_loss_per_step():
    model = nn.MLP([2, 4, 1], activation="tanh")
    history = train(
        model,
        load_dataset("xor", n=20),
        loss="binary_cross_entropy_with_logits",
        detail=False,
        stop={"max_steps": 5},
    )
    table = ledger(history)
    assert table.render("csv").splitlines()[0] == "step,BCE"
    assert len(table.steps) == 5
    assert table.to_dict() == history.to_dict()


# -- renderings ---------------------------------------------------------------------------


def test_every_format_renders(seed_history):
    table = ledger(seed_history)
    for fmt in FORMATS:
        assert table.render(fmt) == render(table, fmt)
        assert "1.5655" in table.render(fmt)
    assert str(table) == table.render("text")
    with pytest.raises(ChainruleError, match="unknown format 'html'; choose one of table, text"):
        table.render("html")


def test_the_table_format_falls_back_to_text_without_rich(seed_history, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich now fails
    table = ledger(seed_history)
    assert table.render("table") == table.render("text")


class _Cells(HTMLParser):
    """The text of each <th>/<td> cell, row by row, and whether every tag was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.open: list[str] = []
        self.paragraphs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        assert self.open.pop() == tag

    def handle_data(self, data):
        if self.open and self.open[-1] in ("td", "th"):
            self.rows[-1][-1] += data
        elif self.open and self.open[-1] == "p":
            self.paragraphs.append(data)


def html_cells(page: str) -> _Cells:
    parser = _Cells()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    return parser


def test_notebooks_show_an_explanation_as_html_and_markdown(seed_history):
    model = seed_model()
    shown = [
        ledger(seed_history, first=2, last=1),
        scan(model, dosage(), "ssr", "b3", [0.0, 2.5]),
        chain_rule(model, dosage(), "ssr", "b3"),
        diagnose(seed_history),
    ]
    for obj in shown:
        assert obj._repr_markdown_() == obj.render("markdown")
        assert obj._repr_html_().startswith('<div class="chainrule">')
    table = html_cells(shown[0]._repr_html_())
    assert table.rows[0] == ["step", "b3", "SSR", "dSSR/db3", "step size", "new b3"]
    assert table.rows[1] == ["1", "0.0000", "20.4236", "-15.6551", "-1.5655", "1.5655"]
    assert table.rows[3] == ["\u22ee"] * 6 and table.rows[4][0] == "10"
    assert table.paragraphs == [f"stopped: {stop_message(seed_history)}"]
    rule = html_cells(shown[2]._repr_html_())
    # the data points (observed, predicted, residual), then the path's factors per point
    assert rule.rows[0] == ["dosage", "observed", "predicted", "residual"]
    assert rule.rows[1] == ["0.0000", "0.0000", "-2.6037", "2.6037"]
    assert rule.rows[5] == ["0.0000", "-5.2073", "1.0000", "-5.2073"]
    # the derivation as math that the notebook typesets, its plain text as the title
    math = shown[2].document()[0].lines[0][1]
    assert (
        '<div class="math" title="dSSR/db3 = dSSR/dpredicted x dpredicted/db3">'
        f"\\[ {html.escape(math)} \\]</div>"
    ) in shown[2]._repr_html_()
    assert r"\frac{d\,\mathrm{SSR}}{d\,b_3}" in math and "<pre>" not in shown[2]._repr_html_()
    for obj in shown:
        assert obj._repr_latex_() == obj.render("latex")
    said = html_cells(shown[3]._repr_html_()).paragraphs
    assert said == [shown[3].message]
    tricky = Diagnosis("crawling", "b < 1 & <script>")
    assert "<p>b &lt; 1 &amp; &lt;script&gt;</p>" in tricky._repr_html_()


def test_importing_the_explainer_does_not_import_rich():
    code = "import sys, chainrule.explain; sys.exit('rich' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- the scan -----------------------------------------------------------------------------


def test_seed_scan_of_b3():
    model = seed_model()
    result = scan(model, dosage(), "ssr", "b3", np.arange(0.0, 4.01, 0.5))
    np.testing.assert_allclose(result.loss, SCAN, rtol=0, atol=5e-7)
    assert result.best == {"value": 2.5, "loss": pytest.approx(0.035827, abs=1e-6)}
    assert result.loss_name == "SSR"
    assert model.scalar("b3").value == 0.0
    assert_golden("scan_seed.md", result.render("markdown"))
    out = result.to_dict()
    assert out["parameter"] == "b3" and out["values"][1] == 0.5
    assert out["losses"] == pytest.approx(SCAN, abs=5e-7)


def test_two_parameter_scan_is_a_grid():
    model = seed_model()
    w3, b3 = np.linspace(-2.0, 0.0, 5), np.linspace(0.0, 4.0, 9)
    result = scan(model, dosage(), "ssr", "w3", w3, parameter2="b3", values2=b3)
    assert result.loss.shape == (5, 9)
    i, j = np.unravel_index(np.argmin(result.loss), result.loss.shape)
    assert result.best == {"value": w3[i], "value2": b3[j], "loss": result.loss[i, j]}
    single = scan(seed_model(w3=w3[2]), dosage(), "ssr", "b3", b3)
    np.testing.assert_allclose(result.loss[2], single.loss)
    assert (model.scalar("w3").value, model.scalar("b3").value) == (-1.22, 0.0)
    keys = {"parameter", "values", "parameter2", "values2", "losses", "best"}
    assert set(result.to_dict()) >= keys
    assert "w3 \\ b3" in result.render("text")


def test_scan_restores_the_values_after_an_error():
    model = seed_model()
    calls = []

    def failing_loss(predicted, target):
        calls.append(1)
        if len(calls) == 2:
            raise ChainruleError("boom")
        return ((predicted - target) ** 2).sum()

    with pytest.raises(ChainruleError, match="boom"):
        scan(model, dosage(), failing_loss, "b3", [1.0, 2.0, 3.0])
    assert model.scalar("b3").value == 0.0


def test_a_loss_that_is_not_a_number_is_null_in_json():
    model = Formula(
        "predicted = log(w * dosage + b)", inputs=["dosage"], values={"w": 1.0, "b": 0.0}
    )
    result = scan(model, dosage(), "ssr", "b", [-1.0, 1.0])
    assert np.isnan(result.loss[0]) and result.best["value"] == 1.0
    out = result.to_dict()
    assert out["losses"][0] is None
    json.dumps(out, allow_nan=False)


def test_scan_of_a_layer_weight_and_bad_grids():
    model = nn.MLP([1, 2, 1], activation="softplus")
    before = model.hidden.weight.data.copy()
    result = scan(model, dosage(), "mse", "hidden.weight[0,1]", [-1.0, 0.0, 1.0])
    assert result.loss_name == "MSE" and np.isfinite(result.loss).all()
    np.testing.assert_array_equal(model.hidden.weight.data, before)
    with pytest.raises(ChainruleError, match="non-empty list of finite numbers"):
        scan(model, dosage(), "mse", "output.bias[0]", [])
    with pytest.raises(ChainruleError, match="scan: 100,001 grid points; at most 10,000"):
        scan(model, dosage(), "mse", "output.bias[0]", np.zeros(100_001))
    with pytest.raises(ChainruleError, match="both parameter2 and values2"):
        scan(model, dosage(), "mse", "output.bias[0]", [0.0], parameter2="hidden.bias[0]")
