"""`lenet explain --out`: pictures a learner puts in notes. For each image, its layers (the input, every
feature map, FC1 and FC2 as bars, the ten scores) and why it answered (the attribution for the answer and
the runner-up, by each of attribution.py's methods, a row each, each a cross-check of the others);
once, the kernels of Conv1 and Conv2. matplotlib's Agg backend, as inference/plots.py draws."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenet_cli.core.writing import make_folder
from lenet_cli.inference.attribution import METHODS, attribute
from lenet_cli.inference.explain import MAPS, Explanation, kernels
from lenet_cli.inference.plots import _figure, _save

if TYPE_CHECKING:
    from lenet_cli.core.model import LeNet5

ACTIVATION_COLORS = "magma"
SIGNED_COLORS = "bwr"  # blue: pushed the score down; red: up
MAPS_PER_ROW = 8


def draw_explanations(
    model: LeNet5,
    explanations: list[Explanation],
    folder: str | os.PathLike,
    names: list[str],
    show_progress: bool = False,
) -> list[Path]:
    """Every picture into `folder` (made if missing), never over an existing file: `kernels.png`, and for
    each image `<name>-layers.png` and `<name>-why.png`."""
    from tqdm import tqdm

    folder = make_folder(Path(folder))
    written = [draw_kernels(model, free_name(folder, "kernels"))]
    for explanation in tqdm(explanations, desc="Drawing", file=None, disable=None if show_progress else True):
        if explanation.error is not None:
            continue
        stem = Path(explanation.path).stem if explanation.path != "-" else "stdin"
        written.append(draw_layers(explanation, names, free_name(folder, f"{stem}-layers")))
        written.append(draw_why(model, explanation, names, free_name(folder, f"{stem}-why")))
    return written


def free_name(folder: Path, stem: str) -> Path:
    """folder/stem.png, or stem-1.png, stem-2.png... where that exists already."""
    target, number = folder / f"{stem}.png", 1
    while target.exists():
        target, number = folder / f"{stem}-{number}.png", number + 1
    return target


def draw_layers(explanation: Explanation, names: list[str], path: Path) -> Path:
    """One row a layer: the input, Conv1, Pool1, Conv2, Pool2 maps (one colour scale a layer), then FC1
    and FC2 as bars and the ten probabilities."""
    figure = _figure(12, 10.5)
    rows = figure.subfigures(len(MAPS) + 1, 1, height_ratios=[1.2, 1.2, 1.2, 1.6, 1.6, 2.4])
    for row, name in zip(rows, MAPS, strict=False):
        values = explanation.layers[name]
        axes = row.subplots(-(-len(values) // MAPS_PER_ROW), MAPS_PER_ROW, squeeze=False)
        for axis in axes.flat:
            axis.set_axis_off()
        scale = float(values.max()) or 1.0
        for index, channel in enumerate(values):
            axis = axes[index // MAPS_PER_ROW, index % MAPS_PER_ROW]
            axis.imshow(channel, cmap="gray" if name == "Input" else ACTIVATION_COLORS, vmin=0, vmax=scale)
            if name != "Input":
                axis.set_title(str(index), fontsize=7, pad=2)
        row.suptitle(f"{name}  {'×'.join(map(str, values.shape))}", x=0.01, ha="left", fontsize=10)
    _draw_vectors(rows[-1], explanation, names)
    return _save(figure, path)


def _draw_vectors(subfigure: Any, explanation: Explanation, names: list[str]) -> None:
    fc1, fc2, scores = subfigure.subplots(1, 3, width_ratios=[120, 84, 40])
    for axis, name in ((fc1, "FC1"), (fc2, "FC2")):
        values = explanation.layers[name]
        axis.bar(np.arange(len(values)), values, width=1.0, color="tab:purple")
        axis.set(title=f"{name}  {len(values)} (after ReLU)", xlabel="unit", xlim=(-1, len(values)))
        axis.spines[["top", "right"]].set_visible(False)
    answer, runner_up = explanation.ranking[:2]
    probabilities = explanation.probabilities
    colors = ["tab:red" if c == answer else "tab:orange" if c == runner_up else "tab:gray" for c in range(10)]
    scores.barh(np.arange(10), probabilities, color=colors)
    scores.set(yticks=range(10), yticklabels=names, xlim=(0, 1), xlabel="probability")
    scores.invert_yaxis()
    scores.set_title(f"FC3 → {names[answer]} ({probabilities[answer]:.0%})")
    scores.spines[["top", "right"]].set_visible(False)


def draw_why(model: LeNet5, explanation: Explanation, names: list[str], path: Path) -> Path:
    """The input, then the attribution for the answer and the runner-up, by each method (a row each)."""
    import torch

    from lenet_cli.data.datasets import as_input

    labels = explanation.ranking[:2]
    inputs = as_input(torch.from_numpy(explanation.seen[None])).repeat(2, 1, 1, 1)
    maps = {
        method: (
            [explanation.attributions[label] for label in labels]
            if method == explanation.method and all(label in explanation.attributions for label in labels)
            else list(attribute(model, inputs, labels, method))
        )
        for method in METHODS
    }
    figure = _figure(7.5, 2.6 * len(METHODS))
    axes = figure.subplots(len(METHODS), 3, squeeze=False)
    image = explanation.layers["Input"][0]
    probabilities = explanation.probabilities
    for row, (method, attributions) in zip(axes, maps.items(), strict=True):
        row[0].imshow(image, cmap="gray", vmin=0, vmax=1)
        row[0].set_title("input", fontsize=10)
        row[0].set_ylabel(METHODS[method], fontsize=10)
        for axis, label, attribution in zip(row[1:], labels, attributions, strict=True):
            strength = float(np.abs(attribution).max()) or 1.0
            axis.imshow(image, cmap="gray", vmin=0, vmax=1)
            shown = axis.imshow(attribution, cmap=SIGNED_COLORS, vmin=-strength, vmax=strength, alpha=0.75)
            axis.set_title(f"why {names[label]} ({probabilities[label]:.1%})", fontsize=10)
        figure.colorbar(shown, ax=row[2], shrink=0.8, ticks=[], label="down ← → up")
        for axis in row:
            axis.set_xticks([])
            axis.set_yticks([])
    return _save(figure, path)


def draw_kernels(model: LeNet5, path: Path) -> Path:
    """Conv1's 6 kernels (5x5 on the input), and Conv2's 16 (one 5x5 slice per Pool1 map, a row each)."""
    weights = kernels(model)
    figure = _figure(10, 6.5)
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 5])
    top.suptitle("Conv1 kernels: 6 × (1×5×5), red adds, blue subtracts", x=0.01, ha="left", fontsize=10)
    bottom.suptitle(
        "Conv2 kernels: 16 × (6×5×5), a column per kernel, a row per Pool1 map",
        x=0.01,
        ha="left",
        fontsize=10,
    )
    _kernel_grid(top.subplots(1, 6, squeeze=False), weights["Conv1"][:, 0][None])
    _kernel_grid(bottom.subplots(6, 16, squeeze=False), weights["Conv2"].transpose(1, 0, 2, 3))
    return _save(figure, path)


def _kernel_grid(axes: np.ndarray, weights: np.ndarray) -> None:
    """weights (rows, columns, 5, 5), each on its own axis, one symmetric colour scale for them all."""
    strength = float(np.abs(weights).max()) or 1.0
    for row_axes, row_weights in zip(axes, weights, strict=True):
        for axis, kernel in zip(row_axes, row_weights, strict=True):
            axis.imshow(kernel, cmap=SIGNED_COLORS, vmin=-strength, vmax=strength)
            axis.set_xticks([])
            axis.set_yticks([])
    for column, axis in enumerate(axes[0]):
        axis.set_title(str(column), fontsize=7, pad=2)
