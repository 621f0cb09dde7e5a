"""Figures: each one carries the engine's numbers, and is written in the format asked for.

The numbers a figure drew are checked against the ledger, the scan and the seed's
reference values (StatQuest's backpropagation example); the files against their magic
bytes and sizes; three small text-free pictures against golden images.
Set CHAINRULE_UPDATE_GOLDEN=1 to rewrite the golden images after a deliberate change.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from seed import BLUE, GREEN, MAIN_IDEAS, ORANGE, SCAN, THREE_AFTER, THREE_START

pytest.importorskip("matplotlib")

import chainrule as cr  # noqa: E402
import chainrule.cli  # noqa: E402, F401  (cr.cli: the command line, patched below)
from chainrule import plots  # noqa: E402
from chainrule.errors import ChainruleError  # noqa: E402
from chainrule.explain import stop_message
from chainrule.nn import MLP  # noqa: E402
from chainrule.plots import _style as style  # noqa: E402
from chainrule.plots.animation import frame_steps  # noqa: E402
from chainrule.plots.scenario_figures import (  # noqa: E402
    UNTRAINED_KINDS,
    figure_of_model,
    figure_of_run,
)
from chainrule.scenario import load_scenario  # noqa: E402
from chainrule.text import significant  # noqa: E402
from chainrule.training import train  # noqa: E402

GOLDEN = Path(__file__).parent / "golden_images"
SMALL = {"size": (3.0, 2.0), "dpi": 100}  # 300 x 200 pixels

# The seed's numbers (tests/seed.py) as the figures show them: b3, SSR and the slope for
# the first five steps, and the SSR curve at b3 = 0, 1, ..., 4.
B3_STEPS, SSR_STEPS, SLOPES = np.array(MAIN_IDEAS)[:5, 1:4].T
SSR_CURVE = dict(zip([0.0, 1.0, 2.0, 3.0, 4.0], SCAN[::2], strict=True))


def figure_of_scenario(scenario, kind, *args):
    """The figure ``chainrule plot`` draws: of the model, or of a run of the scenario."""
    if kind in UNTRAINED_KINDS:
        return figure_of_model(scenario.build_model(), scenario.data, scenario.loss, kind)
    return figure_of_run(scenario.run(), kind, *args)


@pytest.fixture(scope="module")
def seed():
    """The main-ideas scenario, trained: (scenario, trained model, history)."""
    scenario = load_scenario("main-ideas")
    trained = scenario.run()
    model, history = trained.model, trained.history
    return scenario, model, history


@pytest.fixture(scope="module")
def three():
    scenario = load_scenario("three-parameters")
    trained = scenario.run()
    model, history = trained.model, trained.history
    return scenario, model, history


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------------------------------
# Importing and the missing extra
# ---------------------------------------------------------------------------------------


def test_importing_chainrule_and_plots_does_not_import_matplotlib():
    code = "import sys, chainrule, chainrule.plots; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_without_matplotlib_the_error_says_how_to_install(monkeypatch, seed):
    scenario, model, _ = seed
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(ChainruleError, match=r"pip install 'chainrule\[plot\]'"):
        plots.network(model)


def test_the_backend_is_headless(seed):
    import matplotlib

    plots.network(seed[1], **SMALL)
    assert matplotlib.get_backend().lower() == "agg"


# ---------------------------------------------------------------------------------------
# squiggle
# ---------------------------------------------------------------------------------------


def test_squiggle_curve_at_the_data_points_equals_the_predictions(seed):
    scenario, model, history = seed
    fig = plots.squiggle(model, scenario.data, history, ["start", 2, "end"], **SMALL)
    assert fig.steps == [0, 2, len(history.steps)]
    x = scenario.data.inputs["dosage"]
    at_points = np.searchsorted(fig.curve_x, x)
    assert np.array_equal(fig.curve_x[at_points], x)  # the data's x are on the grid
    for k in fig.steps:
        np.testing.assert_allclose(fig.curves[k][at_points], fig.predictions[k], rtol=1e-12)
    # ... and the predictions are the history's own: before step 1, before step 3, at the end.
    np.testing.assert_allclose(fig.predictions[0], GREEN, atol=1e-9)
    np.testing.assert_allclose(fig.predictions[0], history.steps[0].predictions, rtol=1e-12)
    np.testing.assert_allclose(fig.predictions[2], history.steps[2].predictions, rtol=1e-12)
    np.testing.assert_allclose(fig.predictions[10], history.final_predictions, rtol=1e-12)
    assert fig.parameter_values[2] == {"b3": history.steps[2].values["b3"]}


def test_squiggle_does_not_change_the_model(seed):
    scenario, model, history = seed
    before = model.state_dict()
    plots.squiggle(model, scenario.data, history, ["start"], decompose=True, **SMALL)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert [p.frozen for p in model.parameters()] == [True] * 6 + [False]


def test_squiggle_decomposition_is_the_engines_terms_and_sums_to_the_prediction(seed):
    scenario, model, history = seed
    fig = plots.squiggle(model, scenario.data, history, ["start"], decompose=True, **SMALL)
    assert list(fig.terms) == ["w3 × y1", "w4 × y2", "b3"]
    total = sum(fig.terms.values())
    np.testing.assert_allclose(total, fig.curve_y, rtol=1e-12, atol=1e-12)
    at_points = np.searchsorted(fig.curve_x, scenario.data.inputs["dosage"])
    np.testing.assert_allclose(fig.terms["w3 × y1"][at_points], BLUE, atol=1e-9)
    np.testing.assert_allclose(fig.terms["w4 × y2"][at_points], ORANGE, atol=1e-9)
    assert np.all(fig.terms["b3"] == 0.0)
    end = plots.squiggle(model, scenario.data, history, ["end"], decompose=True, **SMALL)
    np.testing.assert_allclose(end.terms["b3"], history.final_values["b3"])


def test_squiggle_decomposed_at_several_steps_draws_a_panel_for_each(seed):
    # --steps used to be ignored with --decompose: only the last step was drawn.
    scenario, model, history = seed
    fig = plots.squiggle(
        model, scenario.data, history, ["start", 1, 2, "end"], decompose=True, **SMALL
    )
    assert sorted(fig.step_terms) == fig.steps == [0, 1, 2, 10]
    assert len(fig.figure.axes) == 4
    titles = [ax.get_title() for ax in fig.figure.axes]
    assert titles == [
        "start: b3 = 0",
        "after 1 step: b3 = 1.57",
        "after 2 steps: b3 = 2.19",
        "end (10 steps): b3 = 2.61",
    ]
    for k, terms in fig.step_terms.items():
        np.testing.assert_allclose(sum(terms.values()), fig.curves[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            terms["b3"], history.steps[k].values["b3"] if k < 10 else history.final_values["b3"]
        )
    assert list(fig.terms) == list(fig.step_terms[10]) == ["w3 × y1", "w4 × y2", "b3"]
    assert all(np.array_equal(fig.terms[t], fig.step_terms[10][t]) for t in fig.terms)


def test_squiggle_without_history_draws_the_model_as_it_is():
    model = cr.Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 2.0, "b": 0.0})
    data = load_scenario("main-ideas").data
    fig = plots.squiggle(model, data, **SMALL)
    np.testing.assert_allclose(fig.curve_y, 2.0 * fig.curve_x)
    with pytest.raises(ChainruleError, match="history"):
        plots.squiggle(model, data, steps=[3])
    with pytest.raises(ChainruleError, match="formula model"):
        plots.squiggle(MLP([1, 2, 1]), data, decompose=True)


def test_squiggle_refuses_steps_the_history_does_not_have(seed):
    scenario, model, history = seed
    with pytest.raises(ChainruleError, match="has 10 steps"):
        plots.squiggle(model, scenario.data, history, [11])
    with pytest.raises(ChainruleError, match="'start' or 'end'"):
        plots.squiggle(model, scenario.data, history, ["middle"])


def test_decision_regions_for_two_inputs():
    data = load_scenario("circles").data
    model = MLP([2, 4, 1], activation="tanh", seed=0)
    history = train(
        model,
        data,
        loss="binary_cross_entropy_with_logits",
        optimizer="adam",
        learning_rate=0.1,
        stop={"max_steps": 60},
    )
    fig = plots.squiggle(model, data, history, ["start", "end"], **SMALL)
    assert isinstance(fig, plots.DecisionFigure)
    assert fig.steps == [0, 60]
    p = fig.probabilities[60]
    assert p.shape == (fig.grid_y.size, fig.grid_x.size)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_array_equal(fig.classes[60], (p >= 0.5).astype(int))
    # The accuracy drawn is the one training reported (logits > 0 <=> probability > 0.5).
    assert fig.accuracy[60] == pytest.approx(history.final_accuracy)


def test_squiggle_refuses_data_it_cannot_draw():
    data = load_scenario("circles").data
    regression = cr.datasets.Dataset.from_matrix(
        np.zeros((4, 3)), np.zeros(4), ["a", "b", "c"], "y", "three", "regression"
    )
    with pytest.raises(ChainruleError, match="has 3 inputs"):
        plots.squiggle(MLP([3, 2, 1]), regression)
    with pytest.raises(ChainruleError, match="one input"):
        plots.squiggle(MLP([2, 2, 1]), data, decompose=True)


# ---------------------------------------------------------------------------------------
# loss_curve and contour
# ---------------------------------------------------------------------------------------


def test_loss_curve_points_and_tangents_are_the_ledgers_rows(seed):
    scenario, model, history = seed
    from chainrule.explain.ledger import ledger

    fig = plots.loss_curve(model, scenario.data, scenario.loss, "b3", history, **SMALL)
    table = ledger(history).document()[0]
    header = [column.text for column in table.columns]
    b3, ssr, slope = header.index("b3"), header.index("SSR"), header.index("dSSR/db3")
    assert len(fig.points) == len(table.rows) == 10
    for (value, loss), tangent, row in zip(fig.points, fig.tangent_slopes, table.rows, strict=True):
        assert (value, loss, tangent) == (row[b3], row[ssr], row[slope])
    np.testing.assert_allclose(fig.points[:5, 0], B3_STEPS, atol=1e-9)
    np.testing.assert_allclose(fig.points[:5, 1], SSR_STEPS, atol=1e-9)
    np.testing.assert_allclose(fig.tangent_slopes[:5], SLOPES, atol=1e-9)
    assert fig.end_point == (history.final_values["b3"], history.final_loss)


def test_loss_curve_is_the_scan_and_the_tangents_touch_it(seed):
    scenario, model, history = seed
    from chainrule.explain.scan import scan

    values = np.linspace(0.0, 4.0, 401)
    fig = plots.loss_curve(model, scenario.data, scenario.loss, "b3", history, values, **SMALL)
    expected = scan(model, scenario.data, scenario.loss, "b3", values)
    np.testing.assert_array_equal(fig.curve_y, expected.loss)
    for b3, ssr in SSR_CURVE.items():
        assert fig.curve_y[np.argmin(np.abs(fig.curve_x - b3))] == pytest.approx(ssr, abs=1e-6)
    # Each step's point lies on the scanned curve, and its slope (from backpropagation)
    # is the curve's own slope there (central differences on the scan).
    h = 1e-5
    for (b3, ssr), slope in zip(fig.points, fig.tangent_slopes, strict=True):
        around = scan(model, scenario.data, scenario.loss, "b3", [b3 - h, b3, b3 + h]).loss
        assert around[1] == pytest.approx(ssr, rel=1e-12)
        assert (around[2] - around[0]) / (2 * h) == pytest.approx(slope, rel=1e-6, abs=1e-8)


def test_loss_curve_default_range_shows_the_path_and_the_minimum(seed):
    scenario, model, history = seed
    fig = plots.loss_curve(model, scenario.data, scenario.loss, "b3", history, **SMALL)
    assert fig.curve_x.min() < 0.0 and fig.curve_x.max() > 3.5  # StatQuest's 0 to 4
    assert fig.curve_x[np.argmin(fig.curve_y)] == pytest.approx(2.609, abs=0.03)


def test_loss_curve_refuses_a_parameter_the_history_did_not_train(seed):
    scenario, model, history = seed
    with pytest.raises(ChainruleError, match="did not train 'w3'"):
        plots.loss_curve(model, scenario.data, scenario.loss, "w3", history)
    with pytest.raises(ChainruleError, match="no parameter 'b4'"):
        plots.loss_curve(model, scenario.data, scenario.loss, "b4", history)


def test_contour_is_the_two_parameter_scan_with_the_descent_path(three):
    scenario, model, history = three
    fig = plots.contour(
        model, scenario.data, scenario.loss, "w3", "w4", history, points=21, **SMALL
    )
    assert fig.losses.shape == (21, 21)
    assert fig.path.shape == (len(history.steps) + 1, 2)
    np.testing.assert_allclose(fig.path[0], [THREE_START["w3"], THREE_START["w4"]])
    np.testing.assert_allclose(fig.path[1], [THREE_AFTER["w3"], THREE_AFTER["w4"]], atol=1e-8)
    from chainrule.explain.scan import scan

    expected = scan(
        model,
        scenario.data,
        scenario.loss,
        "w3",
        fig.values[:3],
        parameter2="w4",
        values2=fig.values2[:2],
    )
    np.testing.assert_array_equal(fig.losses[:3, :2], expected.loss)
    with pytest.raises(ChainruleError, match="two different"):
        plots.contour(model, scenario.data, scenario.loss, "w3", "w3", history)


def test_contour_legend_shows_the_descent_line(three):
    # The path is a white line (it crosses dark rings); in the legend's white box it
    # used to vanish. Its sample there must have dark pixels.
    scenario, model, history = three
    fig = plots.contour(model, scenario.data, scenario.loss, "w3", "w4", history, points=21)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig.figure)
    canvas.draw()
    legend = fig.figure.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    sample = legend.legend_handles[texts.index("gradient descent")]
    box = sample.get_window_extent(canvas.get_renderer())
    pixels = np.asarray(canvas.buffer_rgba())[::-1]  # rows from the bottom, as the box counts
    patch = pixels[int(box.y0) - 2 : int(box.y1) + 3, int(box.x0) : int(box.x1) + 1, :3]
    assert patch.size and patch.sum(axis=-1).min() < 200


def test_contour_says_where_the_other_trained_parameters_are_held(three):
    # b3 is trained too: the picture is the slice with b3 where the run ended, and the
    # loss under each point of the path is the slice's, not the run's (b3 moved).
    scenario, model, history = three
    fig = plots.contour(
        model, scenario.data, scenario.loss, "w3", "w4", history, points=21, **SMALL
    )
    b3 = history.final_values["b3"]
    assert fig.held == {"b3": b3}
    # Wrapped to the small figure's width: read as one line.
    assert " ".join(fig.figure.axes[0].get_title().splitlines()[1:]) == (
        f"b3 = {b3:.3g} held where the run ended (it moved too)"
    )
    from chainrule.explain.scan import scan

    at_end = model.at(history.final_values)
    for k in (0, 5, len(fig.path) - 1):
        (w3, w4), shown = fig.path[k], fig.path_losses[k]
        assert shown == scan(at_end, scenario.data, scenario.loss, "w3", [w3], "w4", [w4]).loss
    # At the start the slice (b3 at 2.61) is far from the run's loss (b3 at 0): 26.7 and 1.40.
    assert fig.path_losses[0] > 10 * history.losses[0]
    assert fig.path_losses[-1] == pytest.approx(history.final_loss, rel=1e-9)


def test_loss_curve_puts_each_point_on_its_own_curve_when_others_move(three):
    # w4 and b3 move too: a step's loss was measured with them at that step's values, so
    # each point lies on, and its tangent touches, the curve drawn with those values.
    # Asked for with per_point=True (by default the picture shows the one bold curve).
    scenario, model, history = three
    fig = plots.loss_curve(model, scenario.data, scenario.loss, "w3", history, per_point=True)
    ax = fig.figure.axes[0]
    curves = [line for line in ax.lines if line.get_color() == style.PINK]
    tangents = [line for line in ax.lines if line.get_color() == style.TANGENT]
    assert len(curves) == len(fig.shown) + 1 and len(tangents) >= 3

    def curve_through(x, y):
        for line in curves:
            xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
            j = int(np.argmin(np.abs(xs - x)))
            if abs(xs[j] - x) < 1e-9 and ys[j] == pytest.approx(y, rel=1e-9, abs=1e-12):
                return xs, ys, j
        return None

    for x, y in ax.collections[0].get_offsets():  # the step points drawn
        assert curve_through(x, y) is not None, (x, y)
    for tangent in tangents:
        (x0, x1), (y0, y1) = tangent.get_xdata(), tangent.get_ydata()
        found = curve_through((x0 + x1) / 2, (y0 + y1) / 2)
        assert found is not None
        xs, ys, j = found  # the SSR is quadratic in w3: np.gradient's slope is exact
        assert np.gradient(ys, xs)[j] == pytest.approx((y1 - y0) / (x1 - x0), rel=1e-6)
    for i, k in enumerate(fig.shown):
        assert fig.held[i] == {n: history.steps[k].values[n] for n in ("w4", "b3")}
    title = ax.get_title().replace("\n", " ")
    assert "w4 and b3 move too" in title and "own step's curve (faint)" in title
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    w4, b3 = (history.final_values[n] for n in ("w4", "b3"))
    assert f"SSR, the others at the end: w4 = {w4:.3g}, b3 = {b3:.3g}" in legend


def test_loss_curve_shows_the_sum_alone_by_default_and_joins_the_steps(three):
    # The faint curve of each point crowded the picture: by default there is one curve,
    # the loss summed over the data with the others where the run ended, and the steps
    # are joined in order (the points are off that curve: they show the run's own loss).
    scenario, model, history = three
    fig = plots.loss_curve(model, scenario.data, scenario.loss, "w3", history)
    ax = fig.figure.axes[0]
    assert [line.get_color() for line in ax.lines].count(style.PINK) == 1
    assert fig.step_curves.shape == (0, fig.curve_x.size)
    (path,) = [line for line in ax.lines if line.get_label() == "the steps, in order"]
    drawn = fig.points[fig.shown]
    assert np.array_equal(np.asarray(path.get_xdata())[: len(drawn)], drawn[:, 0])
    assert "(faint)" not in ax.get_title()


def test_loss_curve_draws_the_zig_zag_of_an_overshooting_run_without_crossed_tangents(tmp_path):
    # At learning rate 0.3 b3 jumps across the valley and back: the steps are joined, and
    # no two tangents cross (at the bottom they used to make an X).
    from chainrule.plots.loss import _crosses

    scenario = load_scenario(
        scenario_copy(tmp_path, "main-ideas", "learning_rate = 0.1", "learning_rate = 0.3")
    )
    trained = scenario.run()
    model, history = trained.model, trained.history
    fig = plots.loss_curve(model, scenario.data, scenario.loss, "b3", history)
    ax = fig.figure.axes[0]
    (path,) = [line for line in ax.lines if line.get_label() == "the steps, in order"]
    xs = np.asarray(path.get_xdata())
    assert np.sum(np.diff(np.sign(np.diff(xs))) != 0) >= 4  # it turns back, again and again
    to_display = ax.transData.transform
    segments = [
        tuple(to_display(np.column_stack([t.get_xdata(), t.get_ydata()])).ravel())
        for t in ax.lines
        if t.get_color() == style.TANGENT
    ]
    assert len(segments) >= 3
    assert not any(_crosses(a, b) for i, a in enumerate(segments) for b in segments[i + 1 :])


# ---------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------


def test_history_figure_holds_the_losses_and_values(seed):
    _, _, history = seed
    fig = plots.history(history, **SMALL)
    np.testing.assert_array_equal(fig.losses, [*history.losses, history.final_loss])
    np.testing.assert_allclose(fig.values["b3"][:5], B3_STEPS, atol=1e-9)
    assert fig.values["b3"][-1] == history.final_values["b3"]
    assert fig.log_scale  # 20.4 down to 6e-5: more than two decades
    assert fig.figure.axes[0].get_yscale() == "log"


def test_history_uses_a_linear_scale_for_a_short_span():
    model = cr.Formula("p = 0 * dosage + b", inputs=["dosage"])
    history = train(
        model, load_scenario("main-ideas").data, stop={"max_steps": 2}, learning_rate=0.01
    )
    fig = plots.history(history, **SMALL)
    assert not fig.log_scale and fig.figure.axes[0].get_yscale() == "linear"


# ---------------------------------------------------------------------------------------
# network and graph
# ---------------------------------------------------------------------------------------


def test_network_of_the_seed_formula(seed):
    scenario, model, _ = seed
    fig = plots.network(model, **SMALL)
    edges = {(e.source, e.target): (e.parameter, e.value, e.trained) for e in fig.edges}
    assert edges == {
        ("dosage", "y1"): ("w1", 3.34, False),
        ("dosage", "y2"): ("w2", -3.53, False),
        ("y1", "predicted"): ("w3", -1.22, False),
        ("y2", "predicted"): ("w4", -2.30, False),
    }
    nodes = {n.key: n for n in fig.nodes}
    assert [n.caption for n in fig.nodes] == ["", "x1 → y1", "x2 → y2", "predicted"]
    assert nodes["y1"].title == "softplus" and nodes["predicted"].title == "+"
    assert nodes["predicted"].bias_parameters == ["b3"]
    assert nodes["predicted"].bias[0][1] == model.scalar("b3").value  # the trained value
    assert fig.trained == ["b3"] and fig.frozen == ["w1", "b1", "w2", "b2", "w3", "w4"]
    texts = [t.get_text() for t in fig.figure.axes[0].texts]
    assert "w1 = 3.34" in texts and "+ b3 = 2.61" in texts
    assert [t.get_text() for t in fig.figure.axes[0].get_legend().get_texts()] == [
        "trained",
        "frozen",
    ]


def test_network_reads_the_graph_not_the_text():
    model = cr.Formula(
        "h = relu(a * x - c)\nout = 2 * h + x * k",
        inputs=["x"],
        values={"a": 1.5, "c": 0.5, "k": -1.0},
    )
    fig = plots.network(model, **SMALL)
    edges = {(e.source, e.target, e.parameter, e.label) for e in fig.edges}
    assert ("x", "h", "a", "a = 1.50") in edges
    assert ("x", "out", "k", "k = -1.00") in edges
    assert ("h", "out", None, "2 × h") in edges
    assert {n.key: n.bias for n in fig.nodes}["h"] == [("− c = 0.50", 0.5)]


def test_network_of_formulas_with_constants():
    # The engine records no op on the data alone: dosage + 1 and dosage ** 2 used to be
    # bare one-element arrays in the graph, and labelling them crashed.
    fig = plots.network(cr.Formula("p = w * (dosage + 1) + b", inputs=["dosage"]), **SMALL)
    assert [(e.source, e.target, e.label) for e in fig.edges] == [
        ("dosage", "p", "w × (dosage + 1)\nw = 0.13")
    ]
    model = cr.Formula(
        "p = w * dosage ** 2 + b - 0.5", inputs=["dosage"], values={"w": 2.0, "b": 0.0}
    )
    model.freeze("b")
    fig = plots.network(model, **SMALL)
    assert [e.label for e in fig.edges] == ["w × dosage^2\nw = 2.00"]
    p = {n.key: n for n in fig.nodes}["p"]
    assert p.bias == [("+ b = 0.00", 0.0), ("− 0.5", 0.5)]
    assert p.bias_trained == [False, False] and p.bias_parameters == ["b"]
    texts = [t.get_text() for t in fig.figure.axes[0].texts]
    assert "+ b = 0.00" in texts and "− 0.5" in texts  # each bias written, none dropped
    fig = plots.network(cr.Formula("y = softplus(w * log(x) + 1)", inputs=["x"]), **SMALL)
    assert {n.key: n.bias for n in fig.nodes}["y"] == [("+ 1", 1.0)]


def test_squiggle_decomposes_formulas_with_constants(seed):
    data = seed[0].data
    model = cr.Formula(
        "p = w * (dosage + 1) + v * dosage ** 2 + b - 0.5",
        inputs=["dosage"],
        values={"w": 2.0, "v": -1.0, "b": 0.25},
    )
    fig = plots.squiggle(model, data, decompose=True, **SMALL)
    x = fig.curve_x
    assert list(fig.terms) == ["w × (dosage + 1)", "v × dosage^2", "b", "-0.5"]
    np.testing.assert_allclose(fig.terms["w × (dosage + 1)"], 2.0 * (x + 1))
    np.testing.assert_allclose(fig.terms["v × dosage^2"], -(x**2))
    np.testing.assert_allclose(sum(fig.terms.values()), fig.curve_y, rtol=1e-12)
    legend = [t.get_text() for t in fig.figure.axes[0].get_legend().get_texts()]
    assert "p = the sum + b − 0.5 (-0.25)" in legend


def test_network_of_a_layer_model_labels_few_edges_and_colours_many():
    small = MLP([2, 3, 1], activation="tanh", seed=1)
    small.freeze("hidden.*")
    fig = plots.network(small, ["x1", "x2"], **SMALL)
    assert len(fig.edges) == 2 * 3 + 3 * 1
    for edge in fig.edges:
        assert edge.value == small.scalar(edge.parameter).value
        assert edge.trained == edge.parameter.startswith("output.")
        assert edge.label == f"{edge.value:.2f}"
    big = MLP([2, 8, 8, 1], activation="tanh")
    fig = plots.network(big, **SMALL)
    assert len(fig.edges) == 2 * 8 + 8 * 8 + 8
    assert all(edge.label == "" for edge in fig.edges)
    with pytest.raises(ChainruleError, match="formula models and layer models"):
        plots.network(cr.nn.Module())


def test_graph_dot_shows_names_ops_values_and_the_engines_gradients(seed):
    scenario, _, _ = seed
    fig = plots.model_graph(scenario.build_model(), scenario.data, scenario.loss)
    assert fig.dot.startswith("digraph computation {") and fig.dot.rstrip().endswith("}")
    by_name = {n.name: n for n in fig.nodes if n.name}
    assert {"dosage", "x1", "y1", "x2", "y2", "predicted", "b3", "w1", "observed"} <= set(by_name)
    assert by_name["y1"].op == "softplus" and by_name["x1"].op == "add"
    assert by_name["b3"].kind == "trained" and by_name["w1"].kind == "frozen"
    assert by_name["dosage"].kind == "input"
    assert fig.nodes[0].grad == 1.0  # d SSR / d SSR
    assert by_name["b3"].value == 0.0
    assert by_name["b3"].grad == pytest.approx(SLOPES[0], abs=1e-9)
    np.testing.assert_allclose(by_name["predicted"].value, GREEN, atol=1e-9)
    assert 'label="b3\\nparameter (trained)\\nvalue 0\\ngrad -15.66"' in fig.dot


def test_graph_names_the_target_as_the_data_does():
    # The loss calls its target leaf "observed"; the graph uses the data's own name.
    Dataset = cr.datasets.Dataset
    data = Dataset.from_matrix(
        np.array([[0.0], [0.5], [1.0]]),
        np.array([0.0, 1.0, 0.0]),
        ["dosage"],
        "efficacy",
        "d",
        "regression",
    )
    model = cr.Formula("predicted = w * (dosage + 1) + b", inputs=["dosage"])
    names = [n.name for n in plots.model_graph(model, data, "ssr").nodes]
    assert "efficacy" in names and "observed" not in names
    circles = load_scenario("circles")
    fig = plots.model_graph(circles.build_model(), circles.data, circles.loss)
    assert "label" in [n.name for n in fig.nodes] and "observed" not in fig.dot
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    three = Dataset.from_matrix(X, np.array([0, 1, 2]), ["x1", "x2"], "kind", "k", "multiclass")
    fig = plots.model_graph(MLP([2, 3], seed=0), three, "cross_entropy")
    assert "kind (one-hot)" in [n.name for n in fig.nodes]


def test_graph_after_backward(tmp_path):
    w = cr.tensor(2.0, requires_grad=True, name="w")
    y = (w * w).sum()
    y.backward()  # frees the graph: the nodes below y are gone
    assert [(n.name, n.op, n.grad) for n in plots.graph(y).nodes] == [("", "sum", None)]
    # With the graph kept, the gradients are d y / d node from the engine, whatever the
    # leaves' accumulated .grad holds (8 here: two backward passes).
    y = (w * w).sum()
    y.backward(retain_graph=True)
    assert float(w.grad) == 8.0
    nodes = plots.graph(y).nodes
    assert [(n.name, n.op, n.kind, n.grad) for n in nodes] == [
        ("", "sum", "op", 1.0),
        ("", "mul", "op", 1.0),
        ("w", None, "trained", 4.0),
    ]
    with pytest.raises(ChainruleError, match="needs a Tensor"):
        plots.graph(3.0)


def test_graph_images_need_graphviz(tmp_path, monkeypatch, seed):
    scenario, model, _ = seed
    fig = plots.model_graph(model, scenario.data, scenario.loss)
    assert fig.save(tmp_path / "g.dot").read_text().startswith("digraph")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ChainruleError, match="Graphviz's 'dot' program"):
        fig.save(tmp_path / "g.svg")
    assert fig._repr_svg_() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]  # nothing half-written


@pytest.mark.skipif(not plots.dot_available(), reason="Graphviz's dot is not installed")
def test_graph_images_with_graphviz(tmp_path, seed):
    scenario, model, _ = seed
    fig = plots.model_graph(model, scenario.data, scenario.loss)
    assert b"<svg" in fig.save(tmp_path / "g.svg").read_bytes()[:400]
    assert fig.save(tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert fig.save(tmp_path / "g.pdf").read_bytes()[:4] == b"%PDF"
    assert "<svg" in fig._repr_svg_()


# ---------------------------------------------------------------------------------------
# animation
# ---------------------------------------------------------------------------------------


def test_frames_are_thinned_for_long_runs():
    assert frame_steps(10) == list(range(11))
    frames = frame_steps(1354)
    assert len(frames) <= 60 and frames[0] == 0 and frames[-1] == 1354
    assert frames == sorted(set(frames))


def test_animation_draws_each_frames_point_on_that_frames_curve(three):
    scenario, model, history = three
    film = plots.animation(
        model, scenario.data, scenario.loss, "w3", history, max_frames=6, size=(4.0, 2.0), dpi=40
    )
    for i, (x, y) in enumerate(film.points):
        j = np.flatnonzero(film.loss_x == x)
        assert j.size == 1 and film.frame_curves[i][j[0]] == pytest.approx(y, rel=1e-9)


def test_animation_frames_carry_the_history(tmp_path, seed):
    scenario, model, history = seed
    film = plots.animation(
        model, scenario.data, scenario.loss, "b3", history, max_frames=4, size=(4.0, 2.0), dpi=40
    )
    assert film.frames == [0, 3, 7, 10]
    np.testing.assert_allclose(
        film.points[:3, 0], [history.steps[k].values["b3"] for k in (0, 3, 7)]
    )
    assert film.slopes[0] == history.steps[0].slopes["b3"] and np.isnan(film.slopes[-1])
    assert film.points[-1].tolist() == [history.final_values["b3"], history.final_loss]
    gif = film.save(tmp_path / "descent.gif").read_bytes()
    assert gif[:4] == b"GIF8"
    from PIL import Image

    with Image.open(tmp_path / "descent.gif") as image:
        assert image.n_frames == 4 and image.size == (160, 80)
    html = film.save(tmp_path / "descent.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<div" in html and "<script" in html
    assert film._repr_png_() is None and "<div" in film._repr_html_()


# ---------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<svg")]
)
def test_static_figures_are_written_in_the_format_of_the_suffix(tmp_path, seed, suffix, magic):
    scenario, model, history = seed
    fig = plots.squiggle(model, scenario.data, history, **SMALL)
    data = fig.save(tmp_path / f"fit.{suffix}").read_bytes()
    assert magic in data[:400]
    if suffix == "png":
        assert png_size(data) == (300, 200)
        assert png_size(fig.save(tmp_path / "big.png", dpi=200).read_bytes()) == (600, 400)
        assert png_size(fig._repr_png_()) == (300, 200)
    assert os.listdir(tmp_path) == [f"fit.{suffix}"] + (["big.png"] if suffix == "png" else [])


def test_saving_refuses_a_format_the_kind_cannot_write(tmp_path, seed):
    scenario, model, history = seed
    fig = plots.history(history, **SMALL)
    with pytest.raises(ChainruleError, match=r"cannot be saved as '\.gif'.*\.png, \.svg, \.pdf"):
        fig.save(tmp_path / "h.gif")
    with pytest.raises(ChainruleError, match="no suffix"):
        fig.save(tmp_path / "h")
    assert not os.listdir(tmp_path)


def test_saving_to_an_unwritable_place_names_it(tmp_path, seed):
    fig = plots.history(seed[2], **SMALL)
    missing = tmp_path / "no" / "such" / "h.png"
    with pytest.raises(ChainruleError, match=f"cannot write {missing}"):
        fig.save(missing)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ChainruleError, match="folder.png: it is a folder"):
        fig.save(tmp_path / "folder.png")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ChainruleError, match=f"cannot write {locked / 'h.png'}"):
            fig.save(locked / "h.png")


def test_a_failed_write_leaves_nothing_behind(tmp_path, seed, monkeypatch):
    fig = plots.history(seed[2], **SMALL)

    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ChainruleError, match=r"cannot write .*h\.png: Permission denied"):
        fig.save(tmp_path / "h.png")
    assert not os.listdir(tmp_path)


def test_saving_replaces_an_existing_file_atomically(tmp_path, seed):
    fig = plots.history(seed[2], **SMALL)
    target = tmp_path / "h.png"
    target.write_bytes(b"old")
    fig.save(target)
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path) == ["h.png"]


# ---------------------------------------------------------------------------------------
# Golden images (text-free, 300 x 200 pixels)
# ---------------------------------------------------------------------------------------


def _text_free(fig):
    """Remove every piece of text (fonts differ between machines), keep the drawing."""
    for ax in fig.figure.axes:
        ax.set_title("")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xticks([])
        ax.set_yticks([])
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        for text in list(ax.texts):
            if text.get_text():
                text.remove()
    return fig


def _golden_figures(seed):
    scenario, model, history = seed
    return {
        "squiggle_decomposed": plots.squiggle(
            model, scenario.data, history, ["end"], decompose=True, **SMALL
        ),
        "loss_curve": plots.loss_curve(
            model, scenario.data, scenario.loss, "b3", history, label_slopes=False, **SMALL
        ),
        "network": plots.network(model, size=(3.0, 2.0), dpi=100),
    }


@pytest.mark.parametrize("name", ["squiggle_decomposed", "loss_curve", "network"])
def test_golden_images(tmp_path, seed, name):
    from matplotlib.testing.compare import compare_images

    fig = _text_free(_golden_figures(seed)[name])
    actual = fig.save(tmp_path / f"{name}.png")
    expected = GOLDEN / f"{name}.png"
    if os.environ.get("CHAINRULE_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        expected.write_bytes(actual.read_bytes())
    assert png_size(actual.read_bytes()) == (300, 200)
    difference = compare_images(str(expected), str(actual), tol=2)
    assert difference is None, difference


# ---------------------------------------------------------------------------------------
# Scenario figures (what the command line draws)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("squiggle", plots.SquiggleFigure),
        ("loss-curve", plots.LossCurveFigure),
        ("contour", plots.ContourFigure),
        ("history", plots.HistoryFigure),
        ("network", plots.NetworkFigure),
        ("graph", plots.GraphFigure),
    ],
)
def test_every_kind_for_the_seed_scenario(kind, cls):
    fig = figure_of_scenario(load_scenario("three-parameters"), kind)
    assert isinstance(fig, cls)
    if kind == "contour":
        assert (fig.parameter, fig.parameter2) == ("w3", "w4")
    fig.close()


def scenario_copy(folder: Path, name: str, old: str, new: str) -> Path:
    """A copy of a built-in scenario with one line changed (e.g. a larger learning rate)."""
    from importlib.resources import files

    text = (files("chainrule") / "scenarios" / f"{name}.toml").read_text(encoding="utf-8")
    assert old in text
    path = folder / f"{name}-changed.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["0.4", "3", "1e200"])
def diverging(request, tmp_path_factory):
    """main-ideas with a learning rate too large: at 0.4 the loss doubles every other step
    (b3 swings further each time), at 3 it grows 300-fold per step, at 1e200 the first
    step makes it infinite. Training stops each run and says why."""
    folder = tmp_path_factory.mktemp(f"lr{request.param}")
    rate = f"learning_rate = {request.param}"
    return load_scenario(scenario_copy(folder, "main-ideas", "learning_rate = 0.1", rate))


def _warning(fig) -> str:
    """The line above the figure (wrapped to its width: read as one line)."""
    heading = fig.figure._suptitle
    return "" if heading is None else heading.get_text().replace("\n", " ")


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [
        ("squiggle", "png"),
        ("loss-curve", "png"),
        ("contour", "png"),
        ("history", "png"),
        ("network", "png"),
        ("graph", "dot"),
        ("animation", "gif"),
    ],
)
def test_every_kind_for_a_diverging_run(tmp_path, diverging, kind, suffix):
    fig = figure_of_scenario(diverging, kind, "b3", "w3" if kind == "contour" else None)
    fig.save(tmp_path / f"figure.{suffix}")  # drawing used to fail on limits of 1e+306
    if kind in ("network", "graph"):
        return  # drawn before training: nothing diverged yet
    trained = diverging.run()
    _, run = trained.model, trained.history
    assert _warning(fig).startswith(f"The run diverged: {stop_message(run)}")
    for ax in fig.figure.axes:
        assert np.all(np.isfinite(ax.get_xlim())) and np.all(np.isfinite(ax.get_ylim()))
    start = run.losses[0]
    if kind == "loss-curve":
        # The first overshoots are in view (each one on the other side, higher up) until
        # the loss passes 1e4 times its start; the end is not.
        shown = fig.points[fig.shown]
        assert fig.shown.tolist() == list(range(len(fig.shown))) and len(fig.shown) >= 1
        assert np.all(shown[1:, 1] > shown[:-1, 1]) and np.all(shown[3:, 1] <= 1e4 * start)
        if len(fig.shown) < len(fig.points):
            assert fig.points[len(fig.shown), 1] > 1e4 * start  # the next one is out of view
        assert fig.figure.axes[0].get_ylim()[1] < 1e7
        assert "end" not in " ".join(t.get_text() for t in fig.figure.axes[0].get_legend().texts)
    if kind == "history":
        assert len(fig.losses) == len(run.losses)  # the undone last step has no loss
        top = max(np.abs(series).max() for series in fig.values.values())
        assert (fig.figure.axes[1].get_yscale() == "symlog") == (top > 1e4)
    if kind == "squiggle":
        assert "off the chart" in _warning(fig)
        assert fig.figure.axes[0].get_ylim()[1] < 10


def test_history_of_a_loss_that_overflows_draws_every_finite_loss():
    # A diverged run's losses may reach 1e+306 before training stops it: matplotlib's own
    # limits and ticks for a log axis over 300 decades reach past the largest float.
    from array import array

    from chainrule.history import Divergence, History

    losses = array("d", [20.0 * 2.0**k for k in range(1014)])
    run = History(
        [("b", ())],
        "ssr",
        False,
        0.1,
        losses=losses,
        final_loss=np.inf,
        stop_reason="diverged",
        divergence=Divergence("growth", loss=1.8e306),
    )
    fig = plots.history(run, **SMALL)
    fig.to_bytes("png")
    low, high = fig.figure.axes[0].get_ylim()
    assert fig.log_scale and low < 20 and 1e300 < high < np.inf
    assert _warning(fig) == f"The run diverged: {stop_message(run)}"


def test_a_run_that_converges_is_not_called_diverged(seed, three):
    for _, _, history in (seed, three):
        assert plots.replay.divergence(history) is None
        assert plots.replay.steps_in_view(history) == len(history.steps)
    assert _warning(plots.history(seed[2], **SMALL)) == ""


def test_scenario_figures_refuse_unknown_kinds_and_parameters(tmp_path):
    scenario = load_scenario("main-ideas")
    with pytest.raises(ChainruleError, match="unknown kind 'pie'; choose one of: squiggle"):
        plots.plot_scenario(scenario, "pie", tmp_path / "x.png")
    with pytest.raises(ChainruleError, match="no parameter 'b9'"):
        plots.plot_scenario(scenario, "loss-curve", tmp_path / "x.png", parameter="b9")
    with pytest.raises(ChainruleError, match=r"animation figure cannot be saved as '\.png'"):
        plots.plot_scenario(scenario, "animation", tmp_path / "x.png")
    with pytest.raises(ChainruleError, match=r"a contour figure draws a training run"):
        plots.plot_scenario(scenario, "contour", tmp_path / "x.png")
    with pytest.raises(ChainruleError, match="--param2"):
        plots.plot_scenario(scenario, "contour", tmp_path / "x.png", run=scenario.run())
    assert not os.listdir(tmp_path)


def test_demo_figures(tmp_path, seed):
    scenario, _, history = seed
    paths = plots.demo_figures(scenario.run(), tmp_path / "demo")
    assert [p.name for p in paths] == list(plots.scenario_figures.DEMO_FILES)
    for path in paths:
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000


# ---------------------------------------------------------------------------------------
# The command line: chainrule plot, and the demo's figures
# ---------------------------------------------------------------------------------------


def run_cli(*args: str) -> int:
    from chainrule.cli import main

    return main(list(args))


@pytest.mark.parametrize(
    ("kind", "suffix", "magic"),
    [
        ("loss-curve", "png", b"\x89PNG"),
        ("squiggle", "svg", b"<svg"),
        ("history", "pdf", b"%PDF"),
        ("graph", "dot", b"digraph"),
        ("animation", "html", b"<html"),
    ],
)
def test_cli_plot_writes_the_file(tmp_path, capsys, kind, suffix, magic):
    out = tmp_path / f"figure.{suffix}"
    assert run_cli("plot", "main-ideas", "--kind", kind, "--out", str(out)) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert magic in out.read_bytes()[:2000]


def test_cli_plot_options(tmp_path, capsys):
    out = tmp_path / "fit.png"
    code = run_cli(
        "plot",
        "main-ideas",
        "--kind",
        "squiggle",
        "--steps",
        "start",
        "3",
        "end",
        "--decompose",
        "--dpi",
        "50",
        "--out",
        str(out),
    )
    # One decomposed panel per step asked for (three), and the legend beside them.
    assert code == 0 and png_size(out.read_bytes()) == (660, 200)
    out = tmp_path / "c.png"
    code = run_cli(
        "plot",
        "three-parameters",
        "--kind",
        "contour",
        "--param",
        "b3",
        "--param2",
        "w4",
        "--out",
        str(out),
    )
    assert code == 0 and out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "pie", "--out", "{tmp}/x.png"], "unknown kind 'pie'; choose one of:"),
        (
            ["--kind", "loss-curve", "--param", "b4", "--out", "{tmp}/x.png"],
            "--param 'b4': the model has no such parameter",
        ),
        (
            ["--kind", "contour", "--param2", "w9", "--out", "{tmp}/x.png"],
            "--param 'w9': the model has no such parameter",
        ),
        (
            ["--kind", "squiggle", "--out", "{tmp}/x.gif"],
            "a squiggle figure cannot be saved as '.gif'",
        ),
        (
            ["--kind", "network", "--out", "{tmp}/no/such/x.png"],
            "cannot write {tmp}/no/such/x.png: the folder {tmp}/no/such does not exist",
        ),
        (
            ["--kind", "squiggle", "--steps", "11", "--out", "{tmp}/x.png"],
            "step '11': the history has 10 steps",
        ),
    ],
)
def test_cli_plot_errors_are_one_line(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli("plot", "main-ideas", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chainrule: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not list(tmp_path.rglob("*.*"))


def test_cli_plot_turns_a_figure_that_fails_to_draw_into_one_line(tmp_path, capsys, monkeypatch):
    def fails(*args, **kwargs):
        raise ValueError("Axis limits cannot be NaN or Inf")

    monkeypatch.setattr(cr.cli, "plot_scenario", fails)
    args = ["plot", "main-ideas", "--kind", "loss-curve", "--out", str(tmp_path / "x.png")]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err == (
        "chainrule: error: could not draw the loss-curve figure of main-ideas: "
        "ValueError: Axis limits cannot be NaN or Inf (--debug shows where)\n"
    )
    with pytest.raises(ValueError, match="Axis limits"):
        run_cli("--debug", *args)


def test_cli_plot_draws_a_diverging_run_and_formulas_with_constants(tmp_path, capsys):
    changed = scenario_copy(tmp_path, "main-ideas", "learning_rate = 0.1", "learning_rate = 3")
    for kind, suffix in (("loss-curve", "png"), ("history", "png"), ("animation", "gif")):
        out = tmp_path / f"{kind}.{suffix}"
        assert run_cli("plot", str(changed), "--kind", kind, "--out", str(out)) == 0
    constant = scenario_copy(
        tmp_path, "main-ideas", "predicted = w3 * y1", "predicted = w3 * (y1 + 1) * dosage ** 2"
    )
    for extra in (["--kind", "network"], ["--kind", "squiggle", "--decompose"]):
        out = tmp_path / "constant.png"
        assert run_cli("plot", str(constant), *extra, "--out", str(out)) == 0
    assert capsys.readouterr().err == ""


def test_cli_demo_draws_the_seeds_figures(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in plots.scenario_figures.DEMO_FILES:
        assert f"wrote chainrule-demo/{name}" in done.stdout
        assert (tmp_path / "chainrule-demo" / name).read_bytes()[:4] == b"\x89PNG"


def test_cli_demo_without_matplotlib_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from chainrule.cli import main\n"
        f"sys.exit(main(['demo', '--out', {str(tmp_path / 'figures')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'chainrule[plot]'" in done.stderr
    assert "wrote" not in done.stdout and not (tmp_path / "figures").exists()


# ---------------------------------------------------------------------------------------
# Every figure kind on every built-in scenario: no text covers another, none is cut off
# ---------------------------------------------------------------------------------------

BUILT_IN = ["main-ideas", "three-parameters", "all-parameters", "circles", "moons"]
DRAWN_KINDS = [k for k in plots.KINDS if k != "graph"]  # graph is drawn by Graphviz


@pytest.fixture(scope="module")
def trained_once():
    """Scenario.run, remembered: each built-in scenario is trained once for all kinds."""
    from chainrule.scenario import Scenario

    original = Scenario.run
    runs: dict = {}

    def remembered(self, detail=None):
        key = (str(self.path), detail)
        if key not in runs:
            runs[key] = original(self, detail)
        return runs[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Scenario, "run", remembered)
        yield


def drawn_texts(figure) -> list:
    """(text, its box in pixels) for every piece of text drawn on the canvas."""
    from matplotlib.text import Text

    found = []
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            found.append((self.get_text(), self.get_window_extent(renderer)))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Text, "draw", record)
        figure.canvas.draw()
    return found


def text_problems(figure) -> list[str]:
    """Texts that overlap another (by more than a pixel each way) or leave the canvas."""
    texts = drawn_texts(figure)
    page = figure.bbox
    problems = []
    for text, box in texts:
        if box.x0 < page.x0 - 1 or box.x1 > page.x1 + 1 or box.y0 < page.y0 - 1:
            problems.append(f"{text!r} is cut by the canvas")
        elif box.y1 > page.y1 + 1:
            problems.append(f"{text!r} is cut by the canvas")
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            wide = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            high = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if wide > 1 and high > 1:
                problems.append(f"{a!r} overlaps {b!r}")
    return problems


@pytest.mark.parametrize("kind", DRAWN_KINDS)
@pytest.mark.parametrize("name", BUILT_IN)
def test_no_text_overlaps_or_leaves_the_canvas(trained_once, name, kind):
    try:
        fig = figure_of_scenario(load_scenario(name), kind)
    except ChainruleError as refused:  # e.g. a contour of a run that trains one parameter
        assert str(refused) and "\n" not in str(refused)
        return
    fig.figure.set_dpi(50)
    film = getattr(fig, "animation", None)
    frames = [0, len(getattr(fig, "frames", [0])) - 1] if film is not None else [None]
    for frame in frames:
        if frame is not None:
            film._func(frame)
        problems = text_problems(fig.figure)
        assert not problems, f"{name} {kind} (frame {frame}): " + "; ".join(problems)
    fig.close()


def test_the_text_check_sees_overlaps_and_cut_text():
    from chainrule.plots._base import matplotlib_figure

    mpl = matplotlib_figure(3, 2, dpi=50)
    ax = mpl.add_subplot()
    ax.text(0.5, 0.5, "slope 5.5", transform=ax.transAxes)
    ax.text(0.52, 0.5, "legend entry", transform=ax.transAxes)
    mpl.text(-0.1, 0.2, "a title cut on the left")
    problems = text_problems(mpl)
    assert "'slope 5.5' overlaps 'legend entry'" in problems
    assert "'a title cut on the left' is cut by the canvas" in problems


# ---------------------------------------------------------------------------------------
# The new figures: the backward pass, the hidden units, a classifier's film
# ---------------------------------------------------------------------------------------


def test_backward_labels_each_edge_with_the_engines_first_slopes(seed):
    # At the start the engine's gradients are the first step's slopes: dSSR/db3 = -15.66.
    scenario, _, history = seed
    fig = plots.backward(scenario.build_model(), scenario.data, scenario.loss)
    assert fig.gradients["b3"] == pytest.approx(SLOPES[0], abs=1e-4)
    assert fig.gradients["b3"] == pytest.approx(history.steps[0].slopes["b3"], rel=1e-12)
    assert fig.loss == pytest.approx(SSR_STEPS[0], abs=1e-4)
    labels = {e.parameter: e.label for e in fig.edges}
    assert labels["w3"] == f"dSSR/dw3 = {significant(fig.gradients['w3'])}"
    # dSSR/dpredicted per point is -2 (observed - predicted): the chain rule's first factor.
    predicted = np.array([p for p in history.steps[0].predictions])
    assert fig.node_gradients["predicted"] == pytest.approx(-2 * (np.array([0, 1, 0]) - predicted))
    # The frozen parameters have a derivative too, and the model is not changed.
    assert set(fig.gradients) == set(MAIN_IDEAS_NAMES)
    assert scenario.build_model().scalar("b3").parameter.grad is None


MAIN_IDEAS_NAMES = ["w1", "b1", "w2", "b2", "w3", "w4", "b3"]


def test_backward_flow_goes_from_the_loss_back_to_the_inputs(tmp_path, seed):
    scenario = seed[0]
    film = plots.backward_flow(scenario.build_model(), scenario.data, scenario.loss, dpi=30)
    assert film.frames == [[], ["predicted"], ["y1", "y2"]]
    ax = film.figure.axes[0]
    film.animation._func(1)  # the edges into predicted carry their gradient; not yet w1's
    shown = {t.get_text() for t in ax.texts if t.get_visible() and t.get_text()}
    assert any(text.startswith("dSSR/dw3 = ") for text in shown)
    assert not any(text.startswith("dSSR/dw1 = ") for text in shown)
    film.animation._func(2)
    shown = {t.get_text() for t in ax.texts if t.get_visible() and t.get_text()}
    assert any(text.startswith("dSSR/dw1 = ") for text in shown)
    path = film.save(tmp_path / "flow.gif")
    assert path.read_bytes()[:6] == b"GIF89a"


def test_units_draws_what_each_hidden_unit_computes(seed):
    scenario, model, _ = seed
    fig = plots.units(model, scenario.data, points=11)
    assert fig.layers == [["y1", "y2"]]
    w1, b1 = model.scalar("w1").value, model.scalar("b1").value
    softplus = np.log1p(np.exp(w1 * fig.grid + b1))
    assert fig.outputs["y1"] == pytest.approx(softplus, rel=1e-12)
    layer_model = MLP([2, 3, 2, 1], activation="tanh", seed=0)
    data = cr.datasets.circles(n=20, seed=0)
    two = plots.units(layer_model, data, points=7)
    assert two.layers == [["hidden1[0]", "hidden1[1]", "hidden1[2]"], ["hidden2[0]", "hidden2[1]"]]
    assert two.outputs["hidden1[0]"].shape == (7, 7)
    # The unit's value at a grid point is the engine's tanh of that point's pre-activation.
    w, b = layer_model.hidden1.weight.data, layer_model.hidden1.bias.data
    x, y = two.grid[2], two.grid2[5]
    assert two.outputs["hidden1[0]"][5, 2] == pytest.approx(
        np.tanh(x * w[0, 0] + y * w[1, 0] + b[0])
    )


def test_a_classifiers_film_shows_its_decision_regions_after_each_step(tmp_path):
    scenario = load_scenario(
        scenario_copy(tmp_path, "circles", "max_steps = 300", "max_steps = 12")
    )
    trained = scenario.run()
    model, history = trained.model, trained.history
    film = plots.animation(model, scenario.data, scenario.loss, None, history, dpi=30, max_frames=4)
    assert film.frames == [0, 4, 8, 12]
    assert film.curves.shape[0] == 4 and film.accuracies.shape == (4,)
    assert film.accuracies[-1] == pytest.approx(history.final_accuracy)
    assert film.save(tmp_path / "film.gif").read_bytes()[:6] == b"GIF89a"


@pytest.mark.parametrize("kind", ["animation", "backward-animation"])
def test_html_films_load_nothing_from_the_network(tmp_path, seed, kind):
    # matplotlib's player loads its icon font from a CDN: offline its buttons were blank.
    import re

    scenario, model, history = seed
    if kind == "animation":
        film = plots.animation(model, scenario.data, scenario.loss, "b3", history, dpi=30)
    else:
        film = plots.backward_flow(scenario.build_model(), scenario.data, scenario.loss, dpi=30)
    out = film.save(tmp_path / "film.html")
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"https?://", page), re.findall(r"https?://\S+", page)
    assert 'title="Play"' in page and "&#9654;</button>" in page.replace("\n", "").replace(" ", "")


def test_cli_plot_draws_the_new_kinds_and_each_steps_curve(tmp_path, capsys):
    for kind in ("units", "backward"):
        out = tmp_path / f"{kind}.png"
        assert run_cli("plot", "main-ideas", "--kind", kind, "--out", str(out)) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "per-point.png"
    args = ["plot", "three-parameters", "--kind", "loss-curve", "--per-point", "--out", str(out)]
    assert run_cli(*args) == 0 and out.exists()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------
# Golden images of the fixed cases and the new figures, and the README's images
# ---------------------------------------------------------------------------------------


def _without_text(fig):
    """Like _text_free, and the figure's own legends and heading too."""
    _text_free(fig)
    for legend in list(fig.figure.legends):
        legend.remove()
    if fig.figure._suptitle is not None:
        fig.figure._suptitle.set_text("")
    return fig


@pytest.fixture(scope="module")
def fixed_cases(tmp_path_factory):
    """The figures of the issue's cases and the new kinds, small and without text."""
    folder = tmp_path_factory.mktemp("cases")
    relu = folder / "relu.toml"
    relu.write_text(RELU_SCENARIO, encoding="utf-8")
    cases = {}
    scenario = load_scenario(relu)
    trained = scenario.run()
    model, history = trained.model, trained.history
    cases["contour_relu"] = plots.contour(
        model, scenario.data, scenario.loss, "w1", "b1", history, points=31, **SMALL
    )
    overshoot = load_scenario(
        scenario_copy(folder, "main-ideas", "learning_rate = 0.1", "learning_rate = 0.3")
    )
    trained = overshoot.run()
    model, history = trained.model, trained.history
    cases["loss_curve_zigzag"] = plots.loss_curve(
        model, overshoot.data, overshoot.loss, "b3", history, label_slopes=False, **SMALL
    )
    three = load_scenario("three-parameters")
    trained = three.run()
    model, history = trained.model, trained.history
    cases["loss_curve_sum"] = plots.loss_curve(
        model, three.data, three.loss, "w3", history, label_slopes=False, **SMALL
    )
    circles = load_scenario(scenario_copy(folder, "circles", "max_steps = 300", "max_steps = 15"))
    trained = circles.run()
    model, history = trained.model, trained.history
    cases["decision_regions"] = plots.squiggle(model, circles.data, history, ["end"], **SMALL)
    cases["history_grouped"] = plots.history(history, size=(6.0, 2.0), dpi=100)
    film = plots.animation(model, circles.data, circles.loss, None, history, size=(6.0, 2.4))
    film.animation._func(len(film.frames) - 1)
    cases["film_decision_regions"] = film
    main = load_scenario("main-ideas")
    cases["backward"] = plots.backward(main.build_model(), main.data, main.loss, size=(4.0, 2.0))
    moons = load_scenario("moons")
    cases["units_two_inputs"] = plots.units(moons.build_model(), moons.data, points=21, dpi=40)
    cases["units_one_input"] = plots.units(main.build_model(), main.data, points=21, dpi=40)
    yield {name: _without_text(fig) for name, fig in cases.items()}


#: A five-parameter ReLU formula: most of its contour is a plateau where a unit is dead.
RELU_SCENARIO = '''
title = "ReLU, five parameters"
[data]
dosage = [0.0, 0.5, 1.0]
observed = [0.0, 1.0, 0.0]
[model]
formula = """
y1 = relu(w1 * dosage + b1)
y2 = relu(w2 * dosage + b2)
predicted = w3 * y1 + w4 * y2
"""
[parameters]
w1 = 2.74
b1 = 0.0
w2 = -1.13
b2 = 0.5
w3 = 0.36
w4 = 0.63
[train]
loss = "ssr"
optimize = ["w1", "b1", "w2", "w3", "w4"]
learning_rate = 0.05
stop = { step_size = 0.0001, max_steps = 2000 }
'''

FIXED_CASES = [
    "contour_relu",
    "loss_curve_zigzag",
    "loss_curve_sum",
    "decision_regions",
    "history_grouped",
    "film_decision_regions",
    "backward",
    "units_two_inputs",
    "units_one_input",
]


@pytest.mark.parametrize("name", FIXED_CASES)
def test_golden_images_of_the_fixed_cases_and_new_figures(tmp_path, fixed_cases, name):
    from matplotlib.testing.compare import compare_images

    actual = tmp_path / f"{name}.png"
    figure = fixed_cases[name].figure  # a film's last frame, drawn as a picture
    figure.savefig(actual, format="png", dpi=figure.dpi)
    expected = GOLDEN / f"{name}.png"
    if os.environ.get("CHAINRULE_UPDATE_GOLDEN"):
        expected.write_bytes(actual.read_bytes())
    difference = compare_images(str(expected), str(actual), tol=2)
    assert difference is None, difference


def test_the_relu_contour_shows_the_valley_in_many_shades(fixed_cases):
    # Its colour bar had two bands (0.688 and 6.38e+04): now the rings spread evenly.
    fig = fixed_cases["contour_relu"]
    levels = plots.loss.contour_levels(fig.losses)
    assert len(levels) >= 10
    assert levels[0] == fig.losses.min() and levels[-1] == fig.losses.max()
    share = [np.mean(fig.losses <= level) for level in levels[1:-1]]
    assert np.all(np.diff(share) > 0)  # every ring holds some of the picture


def test_the_readme_images_are_what_the_code_draws_now(tmp_path):
    # docs/make_figures.py draws them with the demo's code; drawn again, they match the
    # committed ones (with a tolerance: fonts differ a little between machines).
    import importlib.util

    from matplotlib.testing.compare import compare_images
    from PIL import Image

    docs = Path(__file__).resolve().parent.parent / "docs"
    spec = importlib.util.spec_from_file_location("make_figures", docs / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.make(tmp_path)
    assert [p.name for p in paths] == [*plots.scenario_figures.DEMO_FILES, "descent.gif"]
    readme = (docs.parent / "README.md").read_text(encoding="utf-8")
    for path in paths:
        committed = docs / "images" / path.name
        if path.suffix == ".png":
            assert f"docs/images/{path.name}" in readme
            difference = compare_images(str(committed), str(path), tol=6)
            assert difference is None, f"run python docs/make_figures.py: {difference}"
            continue
        with Image.open(committed) as old, Image.open(path) as new:
            assert old.n_frames == new.n_frames and old.size == new.size
            for frame in (0, new.n_frames - 1):
                old.seek(frame)
                new.seek(frame)
                old.convert("RGB").save(tmp_path / "old.png")
                new.convert("RGB").save(tmp_path / "new.png")
                difference = compare_images(
                    str(tmp_path / "old.png"), str(tmp_path / "new.png"), tol=6
                )
                assert difference is None, f"run python docs/make_figures.py: {difference}"


@pytest.mark.parametrize("kind", ["loss-curve", "contour", "squiggle"])
def test_no_text_overlaps_in_the_relu_and_overshooting_cases(tmp_path, kind):
    # The cases: a ReLU loss curve's legend covered the first point's slope, its
    # contour's title was cut on the left; at learning rate 0.3 the steps zig-zag.
    relu = tmp_path / "relu.toml"
    relu.write_text(RELU_SCENARIO, encoding="utf-8")
    overshoot = scenario_copy(tmp_path, "main-ideas", "learning_rate = 0.1", "learning_rate = 0.3")
    for path, second in ((relu, "b1"), (overshoot, "w3")):
        fig = figure_of_scenario(load_scenario(path), kind, None, second)
        fig.figure.set_dpi(50)
        problems = text_problems(fig.figure)
        assert not problems, f"{path.name} {kind}: " + "; ".join(problems)


def test_a_squiggle_names_what_it_plots_on_its_y_axis(seed):
    # It plots predictions (and their terms), not only the observed values.
    scenario, model, history = seed
    plain = plots.squiggle(model, scenario.data, history, ["end"], **SMALL)
    assert plain.figure.axes[0].get_ylabel() == "predicted and observed"
    parts = plots.squiggle(model, scenario.data, history, ["end"], decompose=True, **SMALL)
    assert parts.figure.axes[0].get_ylabel() == "predicted and its terms"


def test_the_default_parameter_is_one_that_the_run_moves():
    # iris starts with hidden unit 0 off for every flower: hidden.weight[0,0] gets no
    # slope and never moves, so its loss curve would be flat; the first weight that
    # moves is drawn instead, and a named one is drawn as asked
    run = load_scenario("iris").run()
    assert (
        run.start.scalar("hidden.weight[0,0]").value == run.model.scalar("hidden.weight[0,0]").value
    )
    drawn = figure_of_run(run, "loss-curve")
    assert drawn.figure.axes[0].get_title().startswith("CE against hidden.weight[0,1]")
    asked = figure_of_run(run, "loss-curve", "hidden.weight[0,0]")
    assert asked.figure.axes[0].get_title().startswith("CE against hidden.weight[0,0]")
    contour = figure_of_run(run, "contour")
    assert "hidden.weight[0,1]" in contour.figure.axes[0].get_xlabel()
    assert "hidden.weight[1,1]" in contour.figure.axes[0].get_ylabel()
