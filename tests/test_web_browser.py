"""The playground in a real headless Chromium, driven by Playwright for Python.

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs
it), never one that Playwright downloads. Set ``CHAINRULE_CHROMIUM`` to use another
executable. Screenshots are saved in ``test-artifacts/`` (or ``CHAINRULE_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")
# Waits measure the page, not the machine: on two cores shared with other work a Run
# frame can take seconds, so an expectation waits up to 20 s (Playwright's default is 5 s).
sync_api.expect.set_options(timeout=20_000)

CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) or set "
        "CHAINRULE_CHROMIUM",
        allow_module_level=True,
    )

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("CHAINRULE_ARTIFACTS", "test-artifacts"))

# The seed's numbers (StatQuest's b3 example), as the ledger prints them (4 decimals).
FIRST_SLOPE = "-15.6551"
FIRST_STEP_SIZE = "-1.5655"
FIRST_NEW_B3 = "1.5655"
B3_AFTER_10 = "2.6089"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    import uvicorn

    from chainrule.web.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the playground's server did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server_url):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server_url)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    page.close()
    assert errors == [], f"the page raised: {errors}"


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def ledger(page):
    return page.get_by_role("table", name="Ledger")


# Every text of the plots (fit, loss curve, contour) inside its drawing, and no axis
# label or tick on another: the labels are neither clipped nor piled up.
LABELS_INSIDE = """() => {
  const out = [];
  for (const svg of document.querySelectorAll("#fit svg, #loss-curve, #contour svg")) {
    const box = svg.getBoundingClientRect();
    const name = svg.id || svg.getAttribute("aria-label");
    const texts = [...svg.querySelectorAll("text")];
    for (const t of texts) {
      const r = t.getBoundingClientRect();
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
          r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        out.push(`${name}: '${t.textContent}' is cut off`);
      }
    }
    const labels = texts.filter((t) => t.matches(".axis-label, .tick"));
    labels.forEach((a, i) => labels.slice(i + 1).forEach((b) => {
      const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
      if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) {
        out.push(`${name}: '${a.textContent}' overlaps '${b.textContent}'`);
      }
    }));
  }
  return out;
}"""


def assert_labels_inside(page, plots: int) -> None:
    count = page.locator("#fit svg, #loss-curve, #contour svg").count()
    assert count == plots
    assert page.evaluate(LABELS_INSIDE) == []


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_step_once_reads_the_seeds_first_row(page):
    button(page, "Step").click()
    row = ledger(page).locator("tbody tr").first
    sync_api.expect(row).to_contain_text(FIRST_SLOPE)
    cells = row.locator("td").all_inner_texts()
    assert cells == ["1", "0.0000", "20.4236", FIRST_SLOPE, FIRST_STEP_SIZE, FIRST_NEW_B3]
    heads = ledger(page).locator("thead th").all_inner_texts()
    assert heads == ["step", "b3", "SSR", "dSSR/db3", "step size", "new b3"]
    sync_api.expect(page.get_by_role("button", name="select b3")).to_have_count(2)
    shot(page, "playground-1280x800.png")


def test_run_to_the_end(page):
    run = button(page, "Run")
    run.click()
    sync_api.expect(page.locator("#stop-message")).to_contain_text("after 10 steps", timeout=15000)
    sync_api.expect(ledger(page).locator("tbody tr")).to_have_count(10)
    last = ledger(page).locator("tbody tr").last.locator("td").all_inner_texts()
    assert last[0] == "10" and last[-1] == B3_AFTER_10
    sync_api.expect(button(page, "Run")).to_be_visible()  # Pause became Run again
    sync_api.expect(page.locator("#diagnosis")).to_contain_text("converged")


def test_run_becomes_pause(page):
    page.get_by_label("Max steps").fill("1000")
    page.get_by_label("Learning rate").fill("0.001")
    page.get_by_label("Learning rate").press("Enter")
    sync_api.expect(page.locator("#ledger tbody tr")).to_have_count(0)
    button(page, "Run").click()
    sync_api.expect(button(page, "Pause")).to_be_visible()
    button(page, "Pause").click()
    sync_api.expect(button(page, "Run")).to_be_visible()
    rows = ledger(page).locator("tbody tr").count()
    assert 0 < rows < 1000


def test_a_diverged_run_says_which_box_to_change_and_keeps_its_ticks_signed(page):
    page.get_by_label("Learning rate").fill("2")
    page.get_by_label("Learning rate").press("Enter")
    button(page, "Run").click()
    stop = page.locator("#stop-message")
    sync_api.expect(stop).to_contain_text("too large for this loss; try Learning rate 0.2")
    sync_api.expect(button(page, "Run")).to_be_visible()
    # b3 ran off to about -38,000: the fit's lowest tick is -4.13e+4, minus sign and all
    sync_api.expect(page.locator("#fit svg .tick").nth(2)).to_have_text("-4.13e+4")
    # the loss curve's axis starts at 0, the lowest an SSR can be (not at -2.8e+9)
    sync_api.expect(page.locator("#loss-curve .tick").nth(2)).to_have_text("0.00")
    assert_labels_inside(page, 2)


def test_freeze_and_unfreeze(page):
    train_w3 = page.get_by_role("checkbox", name="train w3").first
    assert not train_w3.is_checked()
    train_w3.check()
    sync_api.expect(page.locator("#parameters .trained")).to_have_count(2)
    button(page, "Step").click()
    sync_api.expect(ledger(page).locator("thead")).to_contain_text("new w3")
    page.get_by_role("checkbox", name="train w3").first.uncheck()
    sync_api.expect(page.locator("#parameters .trained")).to_have_count(1)
    button(page, "Step").click()
    sync_api.expect(ledger(page).locator("tbody tr")).to_have_count(1)
    sync_api.expect(ledger(page).locator("thead")).not_to_contain_text("w3")


def test_learning_rate_moves_the_step_size(page):
    rate = page.get_by_label("Learning rate")
    rate.fill("0.3")
    rate.press("Enter")
    sync_api.expect(rate).to_have_value("0.3")
    button(page, "Step").click()
    row = ledger(page).locator("tbody tr").first
    sync_api.expect(row).to_contain_text("-4.6965")  # 0.3 x -15.6551


def test_slider_moves_the_fit_and_the_loss(page):
    number = page.get_by_role("spinbutton", name="value of b3")
    # the tangent's slope is the chain rule's gradient (schema version 2's "gradient")
    sync_api.expect(page.locator("#loss-curve")).to_contain_text(f"slope = {FIRST_SLOPE}")
    before = page.locator("#loss-curve").inner_html()
    number.fill("2.6")
    number.press("Enter")
    sync_api.expect(page.locator("#loss-curve")).to_contain_text("b3 = 2.6000")
    assert page.locator("#loss-curve").inner_html() != before
    sync_api.expect(page.get_by_role("button", name="select b3").first).to_contain_text("2.60")


def test_backward_walks_node_by_node(page):
    walk = button(page, "Backward")
    walk.click()
    done = page.locator("#backward-list li.done")
    sync_api.expect(done).to_have_count(1)
    sync_api.expect(done.first).to_contain_text("dSSR/dSSR = 1.0000")
    for count in range(2, 5):
        walk.click()
        sync_api.expect(done).to_have_count(count)
    sync_api.expect(done.nth(1)).to_contain_text("dSSR/dpredicted = -5.2073")
    total = page.locator("#backward-list li").count()
    for _ in range(total - 4):
        walk.click()
    sync_api.expect(done).to_have_count(total)
    sync_api.expect(page.locator("#backward-list")).to_contain_text(f"dSSR/db3 = {FIRST_SLOPE}")


def test_backward_lights_up_a_layer_network_layer_by_layer(page):
    page.get_by_role("combobox", name="Scenario", exact=True).select_option("iris")
    sync_api.expect(page.locator("#title")).to_contain_text("iris")
    active = page.locator("#network g.active")
    walk = button(page, "Backward")
    walk.click()  # the loss, CE: no circle of the diagram
    sync_api.expect(page.locator("#backward-list li.done")).to_have_count(1)
    sync_api.expect(active).to_have_count(0)
    walk.click()  # output.z: the three output units
    sync_api.expect(active).to_have_count(3)
    walk.click()  # hidden.a: and the two hidden units; the inputs never
    sync_api.expect(active).to_have_count(5)


def test_chain_rule_is_mathml(page):
    chain = page.locator("#chain")
    sync_api.expect(chain.locator("math")).to_have_count(1)
    sync_api.expect(chain).to_contain_text(FIRST_SLOPE)
    sync_api.expect(chain).to_contain_text("dSSR/dpredicted = -2 (observed - predicted)")
    # each point's observed, predicted and residual, then the factors made of them
    points = page.locator("#chain-points")
    sync_api.expect(points.locator("thead th")).to_have_text(
        ["point", "observed", "predicted", "residual"]
    )
    sync_api.expect(points.locator("tbody tr").nth(1).locator("td")).to_have_text(
        ["dosage=0.500", "1.0000", "-1.6090", "2.6090"]
    )
    sync_api.expect(chain.locator("table").nth(1)).to_contain_text("-5.2073")


# Whether a panel's content fits its width (it does not scroll sideways).
FITS = "(id) => { const p = document.querySelector(id); return p.scrollWidth <= p.clientWidth; }"
# Whether the chain rule's last column, each path's product, is inside its panel.
PRODUCT_SHOWN = """() => {
  const panel = document.querySelector('#chain-panel');
  const heads = panel.querySelectorAll('table:nth-of-type(2) thead th');
  const last = heads[heads.length - 1];
  return !!last && last.textContent === 'product' &&
    last.getBoundingClientRect().right <= panel.getBoundingClientRect().right;
}"""


@pytest.mark.parametrize(
    "scenario, title",
    [("main-ideas", "estimate b3"), ("all-parameters", "all seven parameters")],
)
def test_the_chain_rule_shows_every_column_in_a_laptop_window(page, scenario, title):
    # at 1280 px the chain rule and the ledger take two of the three columns: the
    # product of each path (the chain rule's last column) is in view without scrolling
    page.get_by_role("combobox", name="Scenario", exact=True).select_option(scenario)
    sync_api.expect(page.locator("#title")).to_contain_text(title)  # (the session is open)
    button(page, "Step").click()
    sync_api.expect(ledger(page).locator("tbody tr")).to_have_count(1)
    page.wait_for_function(PRODUCT_SHOWN, timeout=5000)
    page.wait_for_function(FITS, arg="#chain-panel", timeout=5000)
    if scenario == "main-ideas":  # (seven parameters make a ledger of 29 columns: it scrolls)
        page.wait_for_function(FITS, arg="#ledger-panel", timeout=5000)


# Every text of the network diagram inside its drawing and none on another (a value
# may cross a line, which its white halo covers, but not a text).
NETWORK_TEXTS_APART = """() => {
  const svg = document.querySelector('#network');
  const box = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll('text')];
  const out = [];
  for (const t of texts) {
    const r = t.getBoundingClientRect();
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
        r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
      out.push(`'${t.textContent}' is cut off`);
    }
  }
  texts.forEach((a, i) => texts.slice(i + 1).forEach((b) => {
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    if (p.left < q.right - 1 && q.left < p.right - 1 &&
        p.top < q.bottom - 1 && q.top < p.bottom - 1) {
      out.push(`'${a.textContent}' overlaps '${b.textContent}'`);
    }
  }));
  return out;
}"""


@pytest.mark.parametrize("scenario", ["iris", "circles", "main-ideas", "all-parameters"])
def test_the_network_writes_every_value_apart(browser, server_url, scenario):
    # a layer network's edges carry their values alone (names in tooltips), slid along
    # the edge until no two texts cover each other: iris's ten weights and five biases
    # had been written "output.weight[1,0] = -0.568" on top of one another
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server_url + f"?scenario={scenario}")
    page.wait_for_selector("body[data-ready=true]")
    params = page.evaluate("() => app.state.parameters.length")
    sync_api.expect(page.locator("#network text.param")).to_have_count(params)
    assert page.evaluate(NETWORK_TEXTS_APART) == []
    shot(page, f"network-{scenario}.png")
    page.close()


def test_a_leaky_relu_unit_is_named_inside_its_circle(page):
    page.evaluate('openSession({scenario: "iris", set: {"model.activation": "leaky_relu"}})')
    units = page.locator("#network text.unit")
    sync_api.expect(units).to_have_count(2)
    sync_api.expect(units.first).to_contain_text("leaky")
    assert units.first.evaluate("(t) => t.firstChild.textContent") == "leaky"
    assert units.first.locator("title").text_content() == "leaky_relu"
    assert page.evaluate(NETWORK_TEXTS_APART) == []


def test_a_layer_networks_edges_show_each_weight_by_colour_and_select_it(page):
    page.get_by_role("combobox", name="Scenario", exact=True).select_option("moons")
    sync_api.expect(page.locator("#title")).to_contain_text("moons")
    # 88 edges: no value written but the selected parameter's, every edge coloured by
    # its weight's sign (blue above zero, orange below) with its name in a tooltip
    sync_api.expect(page.locator("#network text.param")).to_have_count(1)
    colours = page.evaluate("""() => [...document.querySelectorAll('#network line.edge')]
      .filter((l) => l.dataset.parameter !== app.selected)
      .map((l) => [app.state.parameters.find((p) => p.name === l.dataset.parameter).value,
                   l.getAttribute('stroke')])""")
    assert len(colours) == 87
    assert {stroke for value, stroke in colours if value > 0} == {"#1f77b4"}
    assert {stroke for value, stroke in colours if value < 0} == {"#ff7f0e"}
    edge = page.locator('#network line.hit[data-parameter="hidden2.weight[3,4]"]')
    value = page.evaluate(
        "() => app.state.parameters.find((p) => p.name === 'hidden2.weight[3,4]').value"
    )
    assert edge.locator("title").text_content() == f"hidden2.weight[3,4] = {value:.3g}"
    edge.dispatch_event("click")
    # the edge is selected: its value is written on it, the editor and the list agree
    selected = page.locator("#network text.param.selected")
    sync_api.expect(selected).to_have_attribute("aria-label", "select hidden2.weight[3,4]")
    sync_api.expect(page.locator("#parameters button.selected")).to_contain_text(
        "hidden2.weight[3,4]"
    )


def test_a_slope_that_a_dead_relu_stops_says_so(page):
    # iris starts with its hidden unit 0 off at every flower: the chain rule for its
    # weight has no path to add up, and says which local derivative closes them all
    page.get_by_role("combobox", name="Scenario", exact=True).select_option("iris")
    sync_api.expect(page.locator("#title")).to_contain_text("iris")
    chosen = page.locator("#parameters")
    # the page opens on the first weight with a slope, not on the dead unit's
    sync_api.expect(chosen.locator("button.selected")).to_have_attribute(
        "aria-label", "select hidden.weight[0,1]"
    )
    # and its contour on the next one with a slope
    sync_api.expect(page.locator("#contour-with")).to_have_value("hidden.weight[1,1]")
    chosen.get_by_role("button", name="select hidden.weight[0,0]", exact=True).click()
    why = page.locator("#why-zero")
    sync_api.expect(why).to_contain_text("goes through a local derivative that is 0")
    sync_api.expect(why).to_contain_text("dhidden.a[0]/dhidden.z[0] = 1 if hidden.z[0] > 0 else 0")
    sync_api.expect(page.locator("#chain-panel table")).to_have_count(1)  # the points alone
    # each flower's species is its class, 0 to 2, not a measurement: 0, not 0.0000
    observed = page.locator("#chain-points tbody tr").first.locator("td").nth(1)
    sync_api.expect(observed).to_have_text("0")
    assert page.locator("#chain math").text_content().endswith("=0.0000")  # one "=", no sum
    assert page.locator("#chain math").text_content().count("=") == 1
    # a live unit's weight has its paths again
    chosen.get_by_role("button", name="select hidden.weight[0,1]", exact=True).click()
    sync_api.expect(page.locator("#why-zero")).to_have_count(0)
    sync_api.expect(page.locator("#chain-panel table")).to_have_count(2)


def test_quiz(page):
    button(page, "Quiz me").click()
    # what the slope is worked out from: each data point's observed, predicted, residual
    points = page.locator("#quiz-points")
    sync_api.expect(points.locator("thead th")).to_have_text(
        ["dosage", "observed", "predicted", "residual"]
    )
    sync_api.expect(points.locator("tbody tr").nth(1)).to_have_text(
        "0.50001.0000-1.60902.6090"  # the cells' texts, run together
    )
    # the prompt says what is asked, in plain words
    answer = page.get_by_role("textbox", name="answer: What is the slope dSSR/db3 at b3 = 0.0000?")
    answer.fill("-15.66")
    answer.press("Enter")
    sync_api.expect(page.locator("#questions .ok")).to_contain_text("Right")
    answer.fill("15.66")
    answer.press("Enter")
    sync_api.expect(page.locator("#questions .no")).to_have_text(
        "Right size, wrong sign: dSSR/db3 is -15.6551."
    )
    shot(page, "playground-quiz.png")


def test_forward_pass_quiz(page):
    button(page, "Forward pass").click()
    sync_api.expect(page.locator("#quiz-points")).to_have_count(0)
    answer = page.get_by_role("textbox", name="predicted = w3 * y1 + w4 * y2 + b3")
    answer.fill("-1.609")
    answer.press("Enter")
    sync_api.expect(page.locator("#questions .ok")).to_have_text(
        "Right: predicted at dosage = 0.5 is -1.6090."
    )


def test_scenario_typo_shows_its_line(page):
    editor = page.get_by_label("Scenario (TOML)")
    text = editor.input_value().replace("learning_rate = 0.1", "learning_rat = 0.1")
    editor.fill(text)
    button(page, "Apply scenario").click()
    error = page.locator("#toml-error")
    line = 1 + text.splitlines().index("learning_rat = 0.1")
    sync_api.expect(error).to_contain_text(
        f"line {line}: scenario.toml:{line}: [train] learning_rat"
    )
    sync_api.expect(error).to_contain_text("did you mean 'learning_rate'")
    selected = page.evaluate(
        "() => { const a = document.getElementById('toml');"
        " return a.value.slice(a.selectionStart, a.selectionEnd); }"
    )
    assert selected == "learning_rat = 0.1"
    editor.fill(text.replace("learning_rat = 0.1", "learning_rate = 0.2"))
    button(page, "Apply scenario").click()
    sync_api.expect(error).to_have_text("")
    sync_api.expect(page.get_by_label("Learning rate")).to_have_value("0.2")


def test_moons_regions_change(page):
    page.get_by_role("combobox", name="Scenario", exact=True).select_option("moons")
    sync_api.expect(page.locator("#fit canvas")).to_have_count(1)
    sync_api.expect(page.locator("#units canvas").first).to_be_visible()
    image = "() => document.querySelector('#fit canvas').toDataURL()"
    before = page.evaluate(image)
    button(page, "Run").click()
    sync_api.expect(ledger(page).locator("tbody tr")).not_to_have_count(0)
    page.wait_for_function(f"(b) => ({image.removeprefix('() => ')}) !== b", arg=before)
    page.wait_for_function("() => document.querySelectorAll('#ledger tbody tr').length > 30")
    button(page, "Pause").click()
    shot(page, "playground-moons.png")


def test_two_parameters_draw_a_contour_with_the_descent_path(browser, server_url):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server_url + "?scenario=three-parameters")
    page.wait_for_selector("body[data-ready=true]")
    second = page.get_by_label("second parameter")
    # w3, w4 and b3 are trained: the contour of the first two shows at once
    sync_api.expect(second).to_have_value("w4")
    sync_api.expect(
        page.get_by_role("img", name="the SSR over w3 and w4", exact=False)
    ).to_be_visible()
    # select two others: w4, then b3 as the second
    page.get_by_role("button", name="select w4").first.click()
    second.select_option("b3")
    contour = page.get_by_role("img", name="the SSR over w4 and b3", exact=False)
    sync_api.expect(contour).to_be_visible()
    for n in range(1, 4):
        button(page, "Step").click()
        sync_api.expect(ledger(page).locator("tbody tr")).to_have_count(n)
    sync_api.expect(page.locator("#contour-best")).to_contain_text("(3 steps)")
    path = page.locator("#contour polyline.descent-path")
    points = [tuple(map(float, p.split(","))) for p in path.get_attribute("points").split()]
    assert len(points) == 4 and len(set(points)) == 4  # the start and each step's new values
    best = page.locator("#contour-best").inner_text()
    assert re.match(r"lowest SSR on this grid: \d+\.\d{4} at w4 = -?\d+\.\d{4}, b3 = ", best)
    assert_labels_inside(page, 3)
    shot(page, "playground-contour.png")
    second.select_option("")
    sync_api.expect(page.locator("#contour svg")).to_have_count(0)
    page.close()


def test_narrow_window(browser, server_url):
    page = browser.new_page(viewport={"width": 420, "height": 800})
    page.goto(server_url)
    page.wait_for_selector("body[data-ready=true]")
    button(page, "Step").click()
    sync_api.expect(ledger(page).locator("tbody tr")).to_have_count(1)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 420, f"the page is {width} px wide in a 420 px window"
    page.get_by_label("second parameter").select_option("w4")
    sync_api.expect(page.locator("#contour svg")).to_have_count(1)
    # w4 is frozen: the path of one step runs along b3 alone
    sync_api.expect(page.locator("#contour-best")).to_contain_text("(1 step)")
    path = page.locator("#contour polyline.descent-path").get_attribute("points").split()
    (x0, y0), (x1, y1) = (tuple(map(float, p.split(","))) for p in path)
    assert y0 == y1 and x1 > x0  # b3 grew from 0 to 1.5655, w4 stayed
    assert_labels_inside(page, 3)
    shot(page, "playground-420.png")
    page.close()


def test_keyboard_only(page):
    page.keyboard.press("Tab")  # the scenario list
    for _ in range(8):
        if page.evaluate("() => document.activeElement.id") == "step":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "step"
    page.keyboard.press("Enter")
    sync_api.expect(ledger(page).locator("tbody tr")).to_have_count(1)
