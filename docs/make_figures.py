"""Draw the README's figures into docs/images/ from the seed's scenario.

Run from the repository root after changing the figures (needs chainrule[plot]):

    python docs/make_figures.py

It trains the ``main-ideas`` scenario (StatQuest's b3 example) and writes, with the same
code as ``chainrule demo`` (:func:`chainrule.plots.demo_figures`):

- ``network.png``: the network with every parameter's value, b3 (trained) in colour;
- ``loss-curve.png``: the SSR against b3, each step's point and its tangent's slope;
- ``squiggle-before.png`` / ``squiggle-after.png``: the blue w3 × y1 and orange w4 × y2
  curves, their sum, and the green squiggle before and after b3 is learned;

and ``descent.gif``: the squiggle and the loss curve, one frame per step.

Every number in them comes from the engine (the training history and the scan). The
tests draw them again and compare (tests/test_plots.py): the README shows what the code
draws now.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chainrule import plots
from chainrule.scenario import load_scenario

IMAGES = Path(__file__).resolve().parent / "images"

#: The GIF's resolution: small, the README shows it at its own size.
GIF_DPI = 60


def make(folder: Path = IMAGES) -> list[Path]:
    """Draw the README's figures into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario("main-ideas")
    trained = scenario.run()
    model, history = trained.model, trained.history
    paths = plots.demo_figures(trained, folder)
    film = plots.animation(model, scenario.data, scenario.loss, "b3", history, dpi=GIF_DPI)
    paths.append(film.save(folder / "descent.gif"))
    return paths


def main() -> int:
    for path in make():
        print(f"wrote {path.relative_to(IMAGES.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
