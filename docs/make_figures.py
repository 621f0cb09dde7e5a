"""Draw the README's figures into docs/images/ from the seed's scenario.

Run from the repository root after changing the figures (needs chainrule[plot]):

    python docs/make_figures.py

It trains the ``main-ideas`` scenario (StatQuest's b3 example) and writes:

- ``network.png``: the network with every parameter's value, b3 (trained) in colour;
- ``loss-curve.png``: the SSR against b3, each step's point and its tangent's slope;
- ``squiggle-before.png`` / ``squiggle-after.png``: the blue w3 × y1 and orange w4 × y2
  curves, their sum, and the green squiggle before and after b3 is learned;
- ``descent.gif``: the squiggle and the loss curve, one frame per step.

Every number in them comes from the engine (the training history and the scan).
"""

from __future__ import annotations

import sys
from pathlib import Path

from chainrule import plots
from chainrule.scenario import load_scenario

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> int:
    IMAGES.mkdir(exist_ok=True)
    scenario = load_scenario("main-ideas")
    trained = scenario.run()
    model, history = trained.model, trained.history
    for path in plots.demo_figures(trained, IMAGES):
        print(f"wrote {path.relative_to(IMAGES.parent.parent)}")
    film = plots.animation(model, scenario.data, scenario.loss, "b3", history, dpi=60)
    path = film.save(IMAGES / "descent.gif")
    print(f"wrote {path.relative_to(IMAGES.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
