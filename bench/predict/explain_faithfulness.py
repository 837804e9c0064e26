"""Is `lenet explain`'s attribution faithful? The pixel-flipping test (Samek et al., 2017).

    flock -s /tmp/lenet-cpu.lock python bench/predict/explain_faithfulness.py \
        [--checkpoint PATH] [--data-dir ../shared/data/mnist] [--handwriting ../shared/data/handwriting] \
        [--ink 128] [--greedy 4]

On real digits (the first --mnist images of the MNIST test set, and every photographed digit of
--handwriting, read as `lenet predict` reads them): for each image, delete (set to black) the 10% of its
ink pixels (grey level >= --ink) with the highest attribution for its answer, and separately a random 10%
of its ink (--draws draws, averaged). The score is the ratio of the mean falls of the answer's probability:
how many times more the pixels the method names matter than pixels picked by chance. Methods: those
`lenet explain` offers and, as a reference it does not offer, plain gradients (Captum's Saliency, signed),
all of the answer's log-probability. Each method's time per image is measured in the same run.

Two rows bound what any method can reach: "ceiling", the ratio if deleting the tenth took all of the
answer's probability (its mean probability over the random fall), and with --greedy N "greedy deletion",
an oracle that sees the test: on every Nth image it deletes, one pixel at a time, the ink pixel whose
deletion lowers the answer's probability most (its ratio is against the random fall of the same images).
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

INK = 128  # a pixel at half brightness or more is ink: the stroke, not its anti-aliased rim (--ink)
SHARE = 0.10  # the share of the ink deleted
CHUNK = 64  # images attributed together


def saliency(model: torch.nn.Module, inputs: torch.Tensor, targets: list[int]) -> np.ndarray:
    """Plain gradients of the log-probability (signed), the reference `lenet explain` does not offer."""
    from captum.attr import Saliency

    def log_probabilities(batch: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(batch), dim=1)

    maps = Saliency(log_probabilities).attribute(inputs.clone().requires_grad_(), target=targets, abs=False)
    return maps.detach()[:, 0].numpy()


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


def ink_pixels(image: np.ndarray, ink: int) -> tuple[np.ndarray, int]:
    """An image's ink (flat indices of pixels at grey level `ink` or more) and how many pixels are 10% of it."""
    pixels = np.flatnonzero(image.reshape(-1) >= ink / 255)
    return pixels, max(1, round(SHARE * len(pixels)))


def pixel_flipping(model, inputs, labels, maps: np.ndarray, draws: int, rng, ink: int = INK):
    """(mean fall of the answer's probability when the top-attributed 10% of the ink goes, when a random
    10% goes, the mean probability before)."""
    before = answer_probability(model, inputs, labels)
    top, random_sets = [], [[] for _ in range(draws)]
    for image, attribution in zip(inputs.numpy(), maps.reshape(len(maps), -1), strict=True):
        pixels, count = ink_pixels(image, ink)
        top.append(pixels[np.argsort(-attribution[pixels], kind="stable")[:count]])
        for draw in random_sets:
            draw.append(rng.choice(pixels, count, replace=False))
    top_fall = (before - answer_probability(model, deleted(inputs, top), labels)).mean()
    random_fall = np.mean(
        [
            (before - answer_probability(model, deleted(inputs, pixels), labels)).mean()
            for pixels in random_sets
        ]
    )
    return float(top_fall), float(random_fall), float(before.mean())


def greedy_maps(model, inputs: torch.Tensor, labels: torch.Tensor, ink: int) -> np.ndarray:
    """The oracle: maps that rank first the ink pixels deleted one at a time, each the one whose deletion
    lowers the answer's probability most (every candidate tried in one forward pass)."""
    maps = np.zeros((len(inputs), 28 * 28), np.float32)
    for row, (image, label) in enumerate(zip(inputs, labels.tolist(), strict=True)):
        flat = image.reshape(-1).clone()
        pixels, count = ink_pixels(image.numpy(), ink)
        candidates = list(pixels)
        for step in range(count):
            tried = flat.repeat(len(candidates), 1)
            tried[torch.arange(len(candidates)), torch.tensor(candidates)] = 0
            with torch.inference_mode():
                best = int(model(tried.reshape(-1, 1, 28, 28)).softmax(dim=1)[:, label].argmin())
            flat[candidates[best]] = 0
            maps[row, candidates.pop(best)] = count - step
    return maps.reshape(-1, 28, 28)


def real_digits(data_dir: str, mnist_count: int, handwriting: str) -> tuple[np.ndarray, dict[str, slice]]:
    mnist = load_split("mnist", data_dir, "test").images[:mnist_count].numpy()
    files = expand_inputs([folder for folder in sorted(Path(handwriting).iterdir()) if folder.is_dir()])
    photographed = [digit for digit in read_digits(files) if isinstance(digit, np.ndarray)]
    parts = {
        "MNIST test": slice(0, len(mnist)),
        "handwriting": slice(len(mnist), len(mnist) + len(photographed)),
    }
    return np.concatenate([mnist, np.stack(photographed)]), parts


def attribution_maps(model, inputs: torch.Tensor, labels: torch.Tensor, method: str) -> np.ndarray:
    if method == "saliency":
        return saliency(model, inputs, labels.tolist())
    return np.concatenate(
        [
            attribute(model, inputs[i : i + CHUNK], labels[i : i + CHUNK].tolist(), method)
            for i in range(0, len(inputs), CHUNK)
        ]
    )


def row(name: str, offered: str, per_image_ms: str, cells: list[str]) -> str:
    return f"{name:<22} {offered:<8} {per_image_ms:>8} " + " ".join(f"{cell:>22}" for cell in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(PRETRAINED))
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--handwriting", default="../shared/data/handwriting")
    parser.add_argument("--mnist", type=int, default=1000, help="how many MNIST test images")
    parser.add_argument("--draws", type=int, default=5, help="random deletions averaged per image")
    parser.add_argument(
        "--ink", type=int, default=INK, help="the grey level (1-255) from which a pixel is ink"
    )
    parser.add_argument("--greedy", type=int, default=0, help="the greedy oracle on every Nth image (0: not)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the timings are of one core, as on a loaded machine
    model, _ = load_explain_model(args.checkpoint)
    digits, parts = real_digits(args.data_dir, args.mnist, args.handwriting)
    inputs = as_input(torch.from_numpy(digits))
    with torch.inference_mode():
        labels = model(inputs).argmax(dim=1)
    counts = ", ".join(f"{part.stop - part.start} {name}" for name, part in parts.items())
    print(f"{args.checkpoint}: {len(digits)} real digits ({counts}); ink: grey level >= {args.ink}")
    print(row("method", "offered", "ms/image", [*parts, "all"]))

    def sample(step: int) -> dict[str, np.ndarray]:
        """Each part's every `step`th image (indices), and all of them together."""
        chosen = {name: np.arange(part.start, part.stop)[::step] for name, part in parts.items()}
        return {**chosen, "all": np.concatenate(list(chosen.values()))}

    def scores(maps: np.ndarray, step: int = 1) -> tuple[list[str], list[float]]:
        cells, ceilings = [], []
        for chosen in sample(step).values():
            top, chance, before = pixel_flipping(
                model,
                inputs[chosen],
                labels[chosen],
                maps[chosen],
                args.draws,
                np.random.default_rng(args.seed),
                args.ink,
            )
            cells.append(f"{top / chance:5.1f}x ({top:.3f}/{chance:.3f})")
            ceilings.append(before / chance)
        return cells, ceilings

    for method in [*METHODS, "saliency"]:
        started = time.perf_counter()
        maps = attribution_maps(model, inputs, labels, method)
        per_image_ms = 1000 * (time.perf_counter() - started) / len(inputs)
        cells, ceilings = scores(maps)
        offered = "yes" if method in METHODS else "no"
        print(
            row(METHODS.get(method, "gradient (saliency)"), offered, f"{per_image_ms:.2f}", cells), flush=True
        )
    print(row("ceiling", "-", "-", [f"{ceiling:5.1f}x" for ceiling in ceilings]))
    if args.greedy:
        chosen = sample(args.greedy)["all"]
        started = time.perf_counter()
        maps = np.zeros((len(inputs), 28, 28), np.float32)
        maps[chosen] = greedy_maps(model, inputs[chosen], labels[chosen], args.ink)
        per_image_ms = 1000 * (time.perf_counter() - started) / len(chosen)
        name = f"greedy (1 in {args.greedy})"
        print(row(name, "no", f"{per_image_ms:.2f}", scores(maps, args.greedy)[0]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
