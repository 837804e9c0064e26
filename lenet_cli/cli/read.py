"""`lenet read` and `lenet evaluate --numbers`: whole handwritten numbers, read and measured. The commands
are registered on the app in commands.py; torch is imported inside them."""

from __future__ import annotations

from pathlib import Path

import typer

from lenet_cli.cli.edge import consoles, fail, print_json
from lenet_cli.cli.options import (
    AsJson,
    Invert,
    PredictImages,
    ReadInvert,
    ReadLength,
    ReadModel,
    ShowCuts,
)


def read(
    images: PredictImages,
    checkpoint: ReadModel = None,
    length: ReadLength = None,
    invert: ReadInvert = Invert.auto,
    show: ShowCuts = False,
    as_json: AsJson = False,
) -> None:
    """Read whole handwritten numbers: every digit found, cut out and read by LeNet-5.

    Example: lenet read amount.jpg --show

    The ink is cut into candidate pieces (connected strokes, touching digits split where few strokes
    cross), every candidate digit is read in one batch, and the best reading of the whole is chosen.
    Dots, commas, dashes and ruled lines are skipped. Images that fail are reported (exit 1).
    """
    from lenet_cli.cli.number_views import readings_view
    from lenet_cli.formats.shipped import reading_model
    from lenet_cli.inference.fast_predict import load_predict_model
    from lenet_cli.inference.number_files import read_files
    from lenet_cli.inference.numbers import parse_length

    bounds = parse_length(length)
    checkpoint_path, note = reading_model(checkpoint)
    if note:
        typer.echo(note, err=True)
    model, _ = load_predict_model(checkpoint_path)  # torch only where the file needs it (a .pt2)
    readings = read_files(model, images, invert=invert.value, length=bounds, show_progress=True)
    if as_json:
        print_json({"readings": [reading.to_dict() for reading in readings]})
    else:
        results, _ = consoles(as_json)
        color = results.color_system is not None
        results.print(readings_view(readings, show=show, color=color, width=results.width))
    failures = sum(reading.error is not None for reading in readings)
    if failures:
        raise fail(f"{failures} of {len(readings)} images could not be read")


def evaluate_numbers(
    checkpoint: Path | None, folder: Path | None, plots: Path | None, as_json: bool, conflicting: bool
) -> None:
    """`lenet evaluate --numbers`: read a folder of labelled numbers and report how well. The model is found
    and loaded as `lenet read` finds and loads it (the shipped reader when none is named) and every image
    is read by the same `read_files`, so the two never disagree."""
    if folder is None:
        raise fail("Missing argument 'CHECKPOINT'.", 2)  # as click words it: only --numbers has a default
    if conflicting:
        raise fail("--numbers cannot be combined with --images, --dataset or --data-dir", 2)
    from lenet_cli.cli.number_views import number_evaluation_view
    from lenet_cli.formats.shipped import reading_model
    from lenet_cli.inference.fast_predict import load_predict_model
    from lenet_cli.inference.number_metrics import evaluate_numbers as score_numbers

    checkpoint_path, note = reading_model(checkpoint)
    if note:
        typer.echo(note, err=True)
    model, _ = load_predict_model(checkpoint_path)
    metrics = score_numbers(model, folder, show_progress=True)
    if plots is not None:
        from lenet_cli.core.writing import make_folder
        from lenet_cli.inference.plots import draw_number_mistakes

        make_folder(plots)
        draw_number_mistakes(metrics.mistakes, plots / "number_mistakes.png", metrics.total - metrics.exact)
    if as_json:
        print_json({"checkpoint": str(checkpoint_path), "numbers": str(folder), **metrics.to_dict()})
    else:
        results, _ = consoles(as_json)
        results.print(f"Reading the numbers in {folder} with {checkpoint_path}", markup=False)
        results.print(number_evaluation_view(metrics, str(folder)))
    if metrics.errors:
        raise fail(f"{len(metrics.errors)} of {metrics.total} images could not be read")
