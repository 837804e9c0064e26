"""The `lenet` command line: options in, one core call, results rendered out.

Torch is imported inside the commands, so `lenet --help`, `--version` and usage errors stay fast.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from lenet_cli import __version__
from lenet_cli.config import EVAL_BATCH_SIZE, TrainConfig
from lenet_cli.errors import LenetError, StoppedBySignal

app = typer.Typer(
    name="lenet",
    help="Train, evaluate, inspect and run LeNet-5 on MNIST-family digits.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain click errors: `Error: …` lines that scripts can read
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
DEFAULTS = TrainConfig()
Command = TypeVar("Command", bound=Callable[..., Any])


class Dataset(StrEnum):
    mnist = "mnist"
    fashion_mnist = "fashion-mnist"
    kmnist = "kmnist"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Schedule(StrEnum):
    onecycle = "onecycle"
    constant = "constant"


class Optimizer(StrEnum):
    adam = "adam"
    sgd = "sgd"


class Invert(StrEnum):
    auto = "auto"
    yes = "yes"
    no = "no"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def handles_errors(command: Command) -> Command:
    """The one edge where core errors become `Error: …` and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except StoppedBySignal as stopped:  # a clean stop, not a failure: no "Error:"
            if stopped.announce:
                typer.echo(str(stopped), err=True)
            raise typer.Exit(stopped.exit_code) from None
        except LenetError as error:
            raise fail(str(error)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as error:
            if os.environ.get("LENET_DEBUG"):
                raise
            raise fail(
                f"unexpected {type(error).__name__}: {error} (set LENET_DEBUG=1 to see the traceback)"
            ) from None

    return wrapper  # type: ignore[return-value]


def positive_finite(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise typer.BadParameter(f"{value} is not a positive finite number")
    return value


def consoles(as_json: bool) -> tuple[Console, Console]:
    """(results, information): with --json, information goes to stderr so stdout is one document."""
    results = Console(highlight=False, soft_wrap=True)
    return results, (Console(stderr=True, highlight=False, soft_wrap=True) if as_json else results)


def print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, allow_nan=False))


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lenet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Train, evaluate, inspect and run LeNet-5 on MNIST-family digits."""


# train's options, one line each in its signature.
Epochs = Annotated[int, typer.Option(min=1, help="Passes over the training images.")]
BatchSize = Annotated[
    int,
    typer.Option(
        min=1,
        help="Images per optimizer step, in all: under torchrun each of N processes takes 1/N of every batch.",
    ),
]
LearningRate = Annotated[
    float | None,
    typer.Option(
        callback=positive_finite,
        help="Learning rate: the peak for onecycle, the fixed rate for constant. "
        "Default: 3e-3 (onecycle) or 1e-3 (constant) with adam; 0.1 or 0.01 with sgd; 1e-3 (adam) or 0.03 (sgd) with --init.",
    ),
]
ScheduleOption = Annotated[
    Schedule,
    typer.Option(
        help="onecycle: warm up, then anneal (reaches 99% for every seed). constant: the tutorial's."
    ),
]
OptimizerOption = Annotated[Optimizer, typer.Option(help="adam, or sgd with momentum 0.9.")]
DatasetOption = Annotated[Dataset, typer.Option(help="Which MNIST-family dataset.")]
DataDir = Annotated[
    Path, typer.Option(help="Folder with the four IDX files (gzipped or not), or where to download them.")
]
CheckpointDir = Annotated[
    Path, typer.Option(help="Each run writes CHECKPOINT_DIR/run-N/last.pt (and best.pt).")
]
DeviceOption = Annotated[Device, typer.Option(help="auto picks cuda, then mps, then cpu.")]
Seed = Annotated[int, typer.Option(min=0, help="Seed for initialisation, data order and hold-out.")]
ValSize = Annotated[
    int, typer.Option(min=0, help="Hold out N training images, validate each epoch, keep best.pt.")
]
ImageFolders = Annotated[
    list[Path] | None,
    typer.Option(
        "--images",
        metavar="DIR",
        help="A labelled folder of your own digits (DIR/<class>/<image>) to learn from; repeatable.",
    ),
]
ImageShare = Annotated[
    float,
    typer.Option(min=0.01, max=0.9, help="With --images: the share of every batch drawn from your images."),
]
Init = Annotated[
    Path | None,
    typer.Option(metavar="CKPT", help="Start from this checkpoint's weights (a new optimizer and schedule)."),
]
Resume = Annotated[
    Path | None,
    typer.Option(
        help="Continue the run saved in this checkpoint exactly where it stopped, with its own settings "
        "(only --epochs, --device, --data-dir and --checkpoint-dir may change)."
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout; progress on stderr.")
]


@app.command()
@handles_errors
def train(
    ctx: typer.Context,
    epochs: Epochs = DEFAULTS.epochs,
    batch_size: BatchSize = DEFAULTS.batch_size,
    lr: LearningRate = None,
    schedule: ScheduleOption = Schedule(DEFAULTS.schedule),
    optimizer: OptimizerOption = Optimizer(DEFAULTS.optimizer),
    dataset: DatasetOption = Dataset(DEFAULTS.dataset),
    data_dir: DataDir = Path(DEFAULTS.data_dir),
    checkpoint_dir: CheckpointDir = Path(DEFAULTS.checkpoint_dir),
    device: DeviceOption = Device(DEFAULTS.device),
    seed: Seed = DEFAULTS.seed,
    val_size: ValSize = DEFAULTS.val_size,
    images: ImageFolders = None,
    image_share: ImageShare = DEFAULTS.image_share,
    init: Init = None,
    resume: Resume = None,
    as_json: AsJson = False,
) -> None:
    """Train LeNet-5 and save a checkpoint every epoch.

    Example: lenet train --epochs 5 --data-dir ../shared/data/mnist

    The default recipe is Adam with a one-cycle schedule peaking at 3e-3; the tutorial's own
    recipe (constant Adam 1e-3) is `--schedule constant`. Ctrl-C saves a resumable checkpoint.
    Teach it your handwriting: lenet train --init checkpoints/run-1/last.pt --images my-digits/ --epochs 1

    Under torchrun (torchrun --standalone --nproc-per-node N -m lenet_cli train ...) it trains with
    DistributedDataParallel, NCCL on GPUs and Gloo on CPUs; rank 0 prints and writes checkpoints.
    """
    from lenet_cli.render import ConsoleReport, train_end_lines
    from lenet_cli.train import fit, resume_config

    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule.value, optimizer=optimizer.value,
        dataset=dataset.value, data_dir=str(data_dir), checkpoint_dir=str(checkpoint_dir), device=device.value,
        seed=seed, val_size=val_size, images=tuple(str(folder) for folder in images or ()),
        image_share=image_share, init=str(init) if init is not None else None,
    )  # fmt: skip
    if resume is not None:
        given = {
            name: getattr(config, name)
            for name in TrainConfig.__dataclass_fields__
            if given_on_command_line(ctx, name)
        }
        config = resume_config(resume, given)
    results, info = consoles(as_json)
    result = fit(config, resume_from=resume, reporters=[ConsoleReport(info)], show_progress=True)
    if result.rank != 0:  # under torchrun, rank 0 reports for all
        return
    if as_json:
        print_json(result.to_dict())
        return
    for line in train_end_lines(result):
        results.print(line)


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


# evaluate's options.
ModelPath = Annotated[
    Path, typer.Argument(metavar="CHECKPOINT", help="A lenet checkpoint, a bare state_dict, or an export.")
]
EvalImages = Annotated[
    list[Path] | None,
    typer.Option(
        "--images", metavar="DIR", help="Evaluate on a labelled folder DIR/<class>/<image>; repeatable."
    ),
]
EvalDataset = Annotated[
    Dataset | None, typer.Option(help="Default: the dataset the checkpoint was trained on.")
]
EvalDataDir = Annotated[
    Path | None, typer.Option(help="Default: the checkpoint's own data folder, else .data.")
]
EvalBatchSize = Annotated[int, typer.Option(min=1, help="Images per forward pass.")]
Plots = Annotated[
    Path | None,
    typer.Option(metavar="DIR", help="Write confusion_matrix.png and misclassified.png into DIR."),
]
ShowMistakes = Annotated[bool, typer.Option("--show", help="Draw the 28x28 input of each listed mistake.")]


@app.command()
@handles_errors
def evaluate(
    checkpoint: ModelPath,
    images: EvalImages = None,
    dataset: EvalDataset = None,
    data_dir: EvalDataDir = None,
    batch_size: EvalBatchSize = EVAL_BATCH_SIZE,
    device: DeviceOption = Device.auto,
    plots: Plots = None,
    show: ShowMistakes = False,
    as_json: AsJson = False,
) -> None:
    """Test a checkpoint: accuracy, loss, per-class table and confusion matrix.

    Example: lenet evaluate checkpoints/run-1/last.pt --data-dir ../shared/data/mnist

    With --images, on your own labelled digits (DIR/<class>/<image>, e.g. my-digits/7/a.png): the same
    report, plus the most confident mistakes. Unreadable images are listed and the exit code is 1.
    """
    from lenet_cli.data import class_names
    from lenet_cli.device import resolve_device
    from lenet_cli.evaluate import evaluate_with_mistakes
    from lenet_cli.exported import load_any_model
    from lenet_cli.render import evaluation_view

    model, loaded = load_any_model(checkpoint, resolve_device(device.value))
    dataset_name = dataset.value if dataset else loaded.get("dataset") or "mnist"
    names = class_names(dataset_name)
    chosen = evaluation_data(loaded, dataset_name, data_dir, images, names, show_progress=True)
    metrics, mistakes = evaluate_with_mistakes(model, chosen.split, chosen.paths, batch_size, len(names))
    if plots is not None:
        from lenet_cli.plots import draw_evaluation

        draw_evaluation(plots, metrics, mistakes, chosen.split.images, names, chosen.short_title)
    if as_json:
        document = {"checkpoint": str(checkpoint), "dataset": dataset_name, **metrics.to_dict()}
        if images:
            document["misclassified"] = [mistake.to_dict() for mistake in mistakes]
            document["errors"] = [
                {"path": path, "label": label, "error": why} for path, label, why in chosen.errors
            ]
        print_json(document)
    else:
        results, _ = consoles(as_json)
        results.print(f"Evaluating {checkpoint} on {chosen.title}", markup=False)
        color = results.color_system is not None
        results.print(
            evaluation_view(
                metrics, names, mistakes, chosen.split.images, chosen.errors, show, color, chosen.folders
            )
        )
    if chosen.errors:
        raise fail(f"{len(chosen.errors)} of {len(chosen.errors) + metrics.total} images could not be read")


@dataclass
class EvaluationData:
    split: Any  # lenet_cli.data.Split
    title: str  # "the mnist test set (.data)" or "1,000 images in my-digits"
    short_title: str  # for pictures: "mnist test set", "my-digits: 1,000 images"
    paths: list[str] | None = None  # image files, for labelled folders
    folders: list[str] = field(default_factory=list)  # the labelled folders
    errors: list[tuple[str, int, str]] = field(default_factory=list)


def evaluation_data(
    loaded: dict[str, Any],
    dataset_name: str,
    data_dir: Path | None,
    images: list[Path] | None,
    names: list[str],
    show_progress: bool,
) -> EvaluationData:
    """The labelled folders when given, else the dataset's test set from the checkpoint's data folder."""
    from lenet_cli.data import Split, load_split
    from lenet_cli.folders import read_labelled_folders

    if images:
        labelled = read_labelled_folders(images, names, show_progress=show_progress)
        if not len(labelled):
            path, _, why = labelled.errors[0]
            raise LenetError(
                f"none of the {len(labelled.errors)} images could be read (first: {path}: {why})"
            )
        skipped = f" ({labelled.skipped:,} other files skipped)" if labelled.skipped else ""
        title = f"{len(labelled):,} images in {', '.join(map(str, images))}{skipped}"
        short_title = f"{', '.join(folder.resolve().name for folder in images)}: {len(labelled):,} images"
        split = Split(labelled.images, labelled.labels)
        folders = [str(folder) for folder in images]
        return EvaluationData(
            split, title, short_title, paths=labelled.paths, errors=labelled.errors, folders=folders
        )
    if data_dir is None:
        trained = loaded.get("config") or {}
        recorded = trained.get("data_dir")
        same_dataset = trained.get("dataset") == dataset_name
        data_dir = Path(recorded) if recorded and same_dataset and Path(recorded).is_dir() else Path(".data")
    split = load_split(dataset_name, data_dir, "test")
    return EvaluationData(split, f"the {dataset_name} test set ({data_dir})", f"{dataset_name} test set")


@app.command()
@handles_errors
def predict(
    images: list[Path] = typer.Argument(..., metavar="IMAGE", help="Image files, or folders of them."),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        "-c",
        help="A checkpoint, or an exported .onnx/.pt2 file. Default: the newest checkpoint under checkpoints/.",
    ),
    top_k: int = typer.Option(3, min=1, max=10, help="How many classes to list per image."),
    invert: Invert = typer.Option(
        Invert.auto, help="Dark ink on light paper? auto detects it from the border."
    ),
    show: bool = typer.Option(
        False, "--show", help="Draw the 28x28 image the network saw beside each prediction."
    ),
    save_preprocessed: Path | None = typer.Option(
        None, metavar="DIR", help="Write the 28x28 images the network saw as PNGs into DIR."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Classify digit images with a trained checkpoint.

    Example: lenet predict digit.png scans/ --checkpoint checkpoints/run-1/last.pt --show

    Each image is brought into MNIST's form first: grey levels, white digit on black, cropped to the
    ink, scaled to 20 pixels and centred by mass in 28x28. Images that fail are reported and the
    rest still predicted (exit 1 if any failed).
    """
    from lenet_cli.checkpoint import find_latest_checkpoint
    from lenet_cli.data import class_names
    from lenet_cli.exported import load_any_model
    from lenet_cli.predict import predict_files
    from lenet_cli.predict import save_preprocessed as save_inputs
    from lenet_cli.render import predictions_table

    checkpoint_path = checkpoint or find_latest_checkpoint(DEFAULTS.checkpoint_dir)
    model, loaded = load_any_model(checkpoint_path, "cpu")
    predictions = predict_files(model, images, top_k=top_k, invert=invert.value, show_progress=True)
    if not predictions:
        raise LenetError("no images found in the given folders")
    if save_preprocessed is not None:
        save_inputs(predictions, save_preprocessed)
    if as_json:
        print_json({"checkpoint": str(checkpoint_path), "predictions": [p.to_dict() for p in predictions]})
    else:
        results, _ = consoles(as_json)
        names = class_names(loaded.get("dataset", "mnist"))
        color = results.color_system is not None
        results.print(predictions_table(predictions, names, show=show, color=color))
    failures = sum(prediction.error is not None for prediction in predictions)
    if failures:
        typer.echo(f"Error: {failures} of {len(predictions)} images could not be predicted", err=True)
        raise typer.Exit(1)


@app.command()
@handles_errors
def summary(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            metavar="[CHECKPOINT]",
            help="Also describe how this checkpoint was trained, or what an export holds.",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The layer table: output shapes, formulas, parameters, mult-adds and memory.

    Example: lenet summary checkpoints/run-1/last.pt

    Given an exported .onnx or .pt2 file: its inputs, outputs, opset and the metadata lenet wrote.
    """
    from lenet_cli.checkpoint import load_model
    from lenet_cli.exported import EXPORT_SUFFIXES, describe_export
    from lenet_cli.render import checkpoint_table, export_table, summary_table
    from lenet_cli.summary import summarize

    if checkpoint is not None and checkpoint.suffix.lower() in EXPORT_SUFFIXES:
        description = describe_export(checkpoint)
        if as_json:
            print_json(description)
        else:
            consoles(as_json)[0].print(export_table(description))
        return
    model, loaded = load_model(checkpoint, "cpu") if checkpoint else (None, None)
    model_summary = summarize(model)
    if as_json:
        document = model_summary.to_dict()
        if loaded is not None:
            keys = ("dataset", "epoch", "config", "metrics", "versions", "created", "init", "images")
            document["checkpoint"] = {"path": str(checkpoint), **{key: loaded.get(key) for key in keys}}
        print_json(document)
        return
    results, _ = consoles(as_json)
    results.print(summary_table(model_summary))
    if loaded is not None:
        results.print(checkpoint_table(str(checkpoint), loaded))


class ExportFormat(StrEnum):
    onnx = "onnx"
    pt2 = "pt2"


@app.command()
@handles_errors
def export(
    checkpoint: Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="The lenet checkpoint to export.")],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="onnx (onnxruntime, web, mobile) or pt2 (torch.export).")
    ] = ExportFormat.onnx,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Default: beside the checkpoint, last.onnx or last.pt2."),
    ] = None,
    opset: Annotated[
        int | None, typer.Option(min=7, help="ONNX opset (default: the exporter's, 18+).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where to find test images to verify on (never downloads).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Export a checkpoint to ONNX or a torch.export program, verified against the checkpoint.

    Example: lenet export checkpoints/run-1/last.pt --format onnx

    The export takes float32 (N, 1, 28, 28) in [0, 1], white digit on black, any N, and gives logits
    (N, 10). It is run on 1,000 images and kept only if its logits match the checkpoint's within 1e-4
    with the same predicted class for every image. Run it with lenet evaluate/predict too.
    """
    from tqdm import tqdm

    from lenet_cli.export import export_checkpoint
    from lenet_cli.render import export_lines

    with tqdm(total=2, desc="Exporting", file=sys.stderr, disable=None, leave=False) as bar:

        def stage(name: str) -> None:
            bar.update()
            bar.set_description_str(name)

        result = export_checkpoint(
            checkpoint, export_format.value, output, opset, force, data_dir, on_stage=stage
        )
    if as_json:
        print_json(result.to_dict())
        return
    for line in export_lines(result, checkpoint):
        consoles(as_json)[0].print(line, markup=False)


def main() -> None:
    app(prog_name="lenet")


if __name__ == "__main__":
    sys.exit(main())
