"""The example notebook ``docs/examples/backprop.ipynb`` runs, fresh, and tells the seed's
story: the scan, b3 = 2.61 after 10 steps, the ledger, the chain rule as math, a figure.

It is stored without outputs; the test executes it in a new kernel with nbclient (the
``[dev]`` extra installs nbclient, nbformat and ipykernel; without them the test skips).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from seed import MAIN_IDEAS

NOTEBOOK = Path(__file__).parent.parent / "docs" / "examples" / "backprop.ipynb"


@pytest.fixture(scope="module")
def executed():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    stored = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in stored)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": "."}}
    )
    client.execute()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def outputs(cell, mime: str) -> list[str]:
    """Each output of ``cell`` as ``mime`` (``"stream"``: the printed text)."""
    if mime == "stream":
        return [o.text for o in cell.outputs if o.output_type == "stream"]
    return [o.data[mime] for o in cell.outputs if mime in o.get("data", {})]


def cell_with(cells, source: str):
    (cell,) = [c for c in cells if source in c.source]
    return cell


def test_the_notebook_trains_b3_to_2_61_in_10_steps(executed):
    assert all(o.output_type != "error" for c in executed for o in c.outputs)
    printed = outputs(cell_with(executed, "print(stop_message"), "stream")
    assert printed == ["b3 = 2.61 after 10 steps: every step size is below 0.001\n"]


def test_the_notebook_shows_the_ledger_and_the_chain_rule_as_math(executed):
    ledger = outputs(cell_with(executed, "ledger(run.history)"), "text/markdown")[0]
    rows = [line.split(" | ") for line in ledger.splitlines() if line.startswith("| ")][1:]
    step, b3, ssr, slope, size, new = MAIN_IDEAS[0]
    assert rows[0][1:4] == [f"{b3:.4f}", f"{ssr:.4f}", f"{slope:.4f}"]
    assert len(rows) == len(MAIN_IDEAS)
    rule = cell_with(executed, "rule = chain_rule")
    html = outputs(rule, "text/html")[0]
    assert '<div class="math"' in html and r"\frac{d\,\mathrm{SSR}}{d\,b_3}" in html
    assert "<pre>" not in html
    latex = outputs(rule, "text/latex")[0]
    assert latex.startswith(r"\[ \frac{d\,\mathrm{SSR}}{d\,b_3} = ")
    assert f"sum: {slope:.4f}" in latex  # the first slope, summed over the dosages


def test_the_notebook_draws_the_loss_curve(executed):
    (png,) = outputs(cell_with(executed, "loss_curve("), "image/png")
    assert base64.b64decode(png).startswith(b"\x89PNG")
