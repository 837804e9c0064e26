"""How two models read bench/drawing.py's 9 (a loop on a long straight stem) at four pen widths and two
sizes, 40 each: how many are misread, and the mean probability given to 7. Made to find why the first
`--styles` model read these 9s as 7 (docs/performance.md, "The shipped model").

    python bench/predict/drawn_nines.py OLD.pt lenet_cli/formats/pretrained/lenet5-mnist.pt
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit  # noqa: E402

from lenet_cli.formats.model_files import load_any_model  # noqa: E402
from lenet_cli.images.preprocess import normalize_digit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="checkpoints to compare")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    models = [load_any_model(path)[0] for path in args.models]
    rng = random.Random(args.seed)
    print("pen, height: " + " | ".join(f"{path}: misread, mean P(7)" for path in args.models))
    for pen in (2, 3, 4, 6):
        for heights in ((150, 250), (350, 500)):
            nines = [draw_digit(9, rng, pen_range=(pen, pen), height_range=heights) for _ in range(40)]
            inputs = np.stack([normalize_digit(np.asarray(image, np.float32) / 255) for image in nines])
            batch = torch.from_numpy(inputs).float().div(255)[:, None]
            cells = []
            for model in models:
                with torch.no_grad():
                    probabilities = model(batch).softmax(1)
                wrong = int((probabilities.argmax(1) != 9).sum())
                cells.append(f"{wrong:2d}/40, {float(probabilities[:, 7].mean()):.2f}")
            print(f"{pen}, {heights}: " + " | ".join(cells))


if __name__ == "__main__":
    main()
