"""Is `lenet explain`'s attribution faithful? The pixel-flipping test (Samek et al., 2017).

    flock /tmp/lenet-cpu.lock python bench/predict/explain_faithfulness.py \
        [--checkpoint PATH] [--data-dir ../shared/data/mnist] [--handwriting ../shared/data/handwriting]

On real digits (the first --mnist images of the MNIST test set, and every photographed digit of
--handwriting, read as `lenet predict` reads them): for each image, delete (set to black) the 10% of its
ink pixels with the highest attribution for its answer, and separately a random 10% of its ink (--draws
draws, averaged). The score is the ratio of the mean falls of the answer's probability: how many times more
the pixels the method names matter than pixels picked by chance. Methods: those `lenet explain` offers
(integrated gradients, occlusion) and, as references it does not offer, Captum's gradient x input and
plain gradients (saliency). Each method's time per image is measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lenet_cli.data.datasets import as_input, load_split
from lenet_cli.formats.shipped import PRETRAINED
from lenet_cli.images.many_files import read_digits
from lenet_cli.inference.attribution import METHODS, attribute
from lenet_cli.inference.explain import load_explain_model
from lenet_cli.inference.predict import expand_inputs

INK = 128  # a pixel at half brightness or more is ink: the stroke, not its anti-aliased rim
SHARE = 0.10  # the share of the ink deleted


def reference_attribution(model: torch.nn.Module, inputs: torch.Tensor, targets: list[int], name: str):
    from captum.attr import InputXGradient, Saliency

    inputs = inputs.clone().requires_grad_()
    if name == "gradient x input":
        return InputXGradient(model).attribute(inputs, target=targets).detach()[:, 0].numpy()
    return Saliency(model).attribute(inputs, target=targets, abs=False).detach()[:, 0].numpy()


def answer_probability(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        probabilities = model(inputs).softmax(dim=1)
    return probabilities[torch.arange(len(labels)), labels].numpy()


def deleted(inputs: torch.Tensor, order: list[np.ndarray]) -> torch.Tensor:
    """`inputs` with, for each image, the pixels named in its `order` (flat indices) set to black."""
    flipped = inputs.clone().reshape(len(inputs), -1)
    for row, pixels in enumerate(order):
        flipped[row, torch.from_numpy(pixels)] = 0
    return flipped.reshape(inputs.shape)


def pixel_flipping(model, inputs, labels, maps: np.ndarray, draws: int, rng) -> tuple[float, float]:
    """(mean fall of the answer's probability when the top-attributed 10% of the ink goes, when a random
    10% goes)."""
    before = answer_probability(model, inputs, labels)
    top, random_sets = [], [[] for _ in range(draws)]
    for image, attribution in zip(
        inputs.reshape(len(inputs), -1).numpy(), maps.reshape(len(maps), -1), strict=True
    ):
        ink = np.flatnonzero(image >= INK / 255)
        count = max(1, round(SHARE * len(ink)))
        top.append(ink[np.argsort(-attribution[ink], kind="stable")[:count]])
        for draw in random_sets:
            draw.append(rng.choice(ink, count, replace=False))
    top_fall = (before - answer_probability(model, deleted(inputs, top), labels)).mean()
    random_fall = np.mean(
        [
            (before - answer_probability(model, deleted(inputs, pixels), labels)).mean()
            for pixels in random_sets
        ]
    )
    return float(top_fall), float(random_fall)


def real_digits(data_dir: str, mnist_count: int, handwriting: str) -> tuple[np.ndarray, dict[str, slice]]:
    mnist = load_split("mnist", data_dir, "test").images[:mnist_count].numpy()
    files = expand_inputs([folder for folder in sorted(Path(handwriting).iterdir()) if folder.is_dir()])
    photographed = [digit for digit in read_digits(files) if isinstance(digit, np.ndarray)]
    parts = {
        "MNIST test": slice(0, len(mnist)),
        "handwriting": slice(len(mnist), len(mnist) + len(photographed)),
    }
    return np.concatenate([mnist, np.stack(photographed)]), parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(PRETRAINED))
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--handwriting", default="../shared/data/handwriting")
    parser.add_argument("--mnist", type=int, default=1000, help="how many MNIST test images")
    parser.add_argument("--draws", type=int, default=5, help="random deletions averaged per image")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the timings are of one core, as on a loaded machine
    model, _ = load_explain_model(args.checkpoint)
    digits, parts = real_digits(args.data_dir, args.mnist, args.handwriting)
    inputs = as_input(torch.from_numpy(digits))
    with torch.inference_mode():
        labels = model(inputs).argmax(dim=1)
    print(
        f"{args.checkpoint}: {len(digits)} real digits ({', '.join(f'{s.stop - s.start} {n}' for n, s in parts.items())})"
    )
    print(
        f"{'method':<22} {'offered':<8} {'ms/image':>8} "
        + " ".join(f"{name:>22}" for name in [*parts, "all"])
    )
    methods = [*METHODS, "gradient x input", "saliency"]
    for method in methods:
        started = time.perf_counter()
        if method in METHODS:
            maps = np.concatenate(
                [
                    attribute(model, inputs[i : i + 64], labels[i : i + 64].tolist(), method)
                    for i in range(0, len(inputs), 64)
                ]
            )
        else:
            maps = reference_attribution(model, inputs, labels.tolist(), method)
        per_image_ms = 1000 * (time.perf_counter() - started) / len(inputs)
        cells = []
        for part in [*parts.values(), slice(0, len(inputs))]:
            top, chance = pixel_flipping(
                model, inputs[part], labels[part], maps[part], args.draws, np.random.default_rng(args.seed)
            )
            cells.append(f"{top / chance:5.1f}x ({top:.3f}/{chance:.3f})")
        name = METHODS.get(method, method)
        print(
            f"{name:<22} {'yes' if method in METHODS else 'no':<8} {per_image_ms:8.2f} "
            + " ".join(f"{c:>22}" for c in cells)
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
