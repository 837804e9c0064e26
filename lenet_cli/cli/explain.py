"""`lenet explain`: inside LeNet-5 for an image, layer by layer, and why it gave its answer. Registered on the
app in commands.py; torch and Captum are imported inside the command, and only where the method needs
gradients or pictures are drawn."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lenet_cli.cli.edge import consoles, fail, print_json
from lenet_cli.cli.options import AsJson, Invert, InvertOption, PredictImages


class Method(StrEnum):  # lenet_cli/inference/attribution.py's METHODS
    occlusion = "occlusion"
    ig = "ig"
    gradient = "gradient"


ExplainModel = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        metavar="CKPT",
        help="A .pt checkpoint. Default: the newest checkpoint under checkpoints/, else the model shipped "
        "with lenet.",
    ),
]
MethodOption = Annotated[
    Method,
    typer.Option(
        help="Attribution of each class's log-probability: occlusion (blank each 2x2 square, see it fall; "
        "the most faithful), gradient (gradient x input: next, and far faster; the page's) or ig "
        "(integrated gradients)."
    ),
]
OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="DIR",
        help="Save pictures into DIR: each image's layer maps and attribution overlays, and the kernels.",
    ),
]
Brief = Annotated[
    bool, typer.Option("--brief", help="With --json: a summary of each map instead of all its values.")
]


def explain(
    images: PredictImages,
    checkpoint: ExplainModel = None,
    method: MethodOption = Method.occlusion,
    invert: InvertOption = Invert.auto,
    out: OutDir = None,
    as_json: AsJson = False,
    brief: Brief = False,
) -> None:
    """Look inside LeNet-5: every layer's maps for an image, its scores, and why it answered as it did.

    Example: lenet explain digit.png --out notes/

    Shows the 28x28 input, each layer's feature maps (Conv1 6x28x28, Pool1 6x14x14, Conv2 16x10x10,
    Pool2 16x5x5), FC1 and FC2 as bars, the ten scores, and which pixels pushed the answer and the
    runner-up up or down (occlusion by default; Captum's gradients with --method). Images that fail are reported (exit 1).
    """
    if brief and not as_json:
        raise fail("--brief goes with --json", 2)
    from lenet_cli.core.config import DEFAULT_CHECKPOINT_DIR, class_names
    from lenet_cli.formats.shipped import default_model
    from lenet_cli.inference.explain import explain_files, load_explain_model

    checkpoint_path, note = (checkpoint, None) if checkpoint else default_model(DEFAULT_CHECKPOINT_DIR)
    if note:
        typer.echo(note, err=True)
    # Occlusion alone runs on the numpy model, so the terminal view and --json never import torch;
    # the other methods, and --out's pictures of all three, need torch's gradients.
    torch_free = method is Method.occlusion and out is None
    model, info = load_explain_model(checkpoint_path, torch_free=torch_free)
    names = class_names(info.dataset)
    explanations = explain_files(model, images, method=method.value, invert=invert.value, show_progress=True)
    if out is not None:
        from lenet_cli.inference.explain_plots import draw_explanations

        written = draw_explanations(model, explanations, out, names, show_progress=True)
        typer.echo(f"Saved {len(written)} pictures in {out}", err=True)
    if as_json:
        document = {"checkpoint": str(checkpoint_path), "method": method.value}
        print_json({**document, "explanations": [e.to_dict(brief) for e in explanations]})
    else:
        from lenet_cli.cli.explain_views import explanation_view

        results, _ = consoles(as_json)
        color = results.color_system is not None
        for explanation in explanations:
            results.print(explanation_view(explanation, names, results.width, color))
    failures = sum(explanation.error is not None for explanation in explanations)
    if failures:
        raise fail(f"{failures} of {len(explanations)} images could not be explained")
