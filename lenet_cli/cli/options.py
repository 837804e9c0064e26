"""The command line's option types: each option declared once, with its help, and reused by every command
that takes it. The choice lists come from `config`, so the CLI and the core cannot disagree."""

from __future__ import annotations

import math
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lenet_cli.core.config import (
    DATASETS,
    DEVICES,
    EXPORT_FORMATS,
    INVERT_CHOICES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)


def choices(name: str, values: Any) -> type[StrEnum]:
    """A Typer choice type from one of config's choice lists."""
    return StrEnum(name, {str(value): str(value) for value in values})  # type: ignore[return-value]


Dataset = choices("Dataset", DATASETS)
Device = choices("Device", DEVICES)
Schedule = choices("Schedule", SCHEDULES)
Optimizer = choices("Optimizer", OPTIMIZERS)
Invert = choices("Invert", INVERT_CHOICES)
ExportFormat = choices("ExportFormat", EXPORT_FORMATS)


def positive_finite(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise typer.BadParameter(f"{value} is not a positive finite number")
    return value


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value: str | None) -> float | None:
    """`--time`: 10s, 90s, 5m, 1.5h -> seconds. A bare number is refused: is 10 seconds or minutes?"""
    if value is None:
        return None
    text = value.strip().lower()
    try:
        amount = float(text[:-1]) if text[-1:] in DURATION_UNITS else math.nan
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount <= 0:
        raise typer.BadParameter(f"{value!r} is not a duration; write it like 10s, 90s, 5m or 1h")
    return amount * DURATION_UNITS[text[-1]]


def check_duration(value: str | None) -> str | None:
    duration_seconds(value)  # a usage error (exit 2) if it is not one
    return value


def train_config(options: dict[str, Any]) -> TrainConfig:
    """`lenet train`'s settings from its options (`ctx.params`: named as TrainConfig's fields), with
    choices, paths and the --time duration as plain values."""
    values: dict[str, Any] = {}
    for name in TrainConfig.__dataclass_fields__:
        if name not in options:
            continue
        value = options[name]
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, Path):
            value = str(value)
        values[name] = value
    values["images"] = tuple(str(folder) for folder in options.get("images") or ())
    values["numbers"] = tuple(str(folder) for folder in options.get("numbers") or ())
    values["time"] = duration_seconds(options.get("time"))
    return TrainConfig(**values)


# train's options, one line each in its signature.
Epochs = Annotated[int, typer.Option(min=1, help="Passes over the training images.")]
BatchSize = Annotated[
    int | None,
    typer.Option(
        min=1,
        show_default=False,
        help="Images per optimizer step, in all: under torchrun each of N processes takes 1/N of every batch. "
        "Default: 128; 64 (the tutorial's) with --init or --schedule constant.",
    ),
]
LabelSmoothing = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=0.5,
        show_default=False,
        help="Share of each target spread over all ten classes. Default: 0.1; 0 with --init or --schedule constant, unless --numbers.",
    ),
]
LearningRate = Annotated[
    float | None,
    typer.Option(
        callback=positive_finite,
        help="Learning rate: the peak for onecycle, the fixed rate for constant. "
        "Default: 1.2e-2 (onecycle) or 1e-3 (constant) with adam; 0.1 or 0.01 with sgd; 1e-3 (adam) or 0.03 (sgd) with --init.",
    ),
]
ScheduleOption = Annotated[
    Schedule,
    typer.Option(help="onecycle: warm up, then anneal. constant: the tutorial's."),
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
Styles = Annotated[
    bool,
    typer.Option(
        "--styles",
        help="Also learn the hands MNIST lacks: digits in handwriting fonts, MNIST digits with flags and bars, "
        "scan-like damage, made at the start of the run and mixed into every batch (the shipped model's recipe).",
    ),
]
StyleShare = Annotated[
    float,
    typer.Option(
        min=0.01, max=0.9, help="With --styles: the share of every batch drawn from the style digits."
    ),
]
Cuts = Annotated[
    bool,
    typer.Option(
        "--cuts",
        help="Also learn the pieces `lenet read` cuts from numbers written with the training digits: a digit cut "
        "from its neighbours keeps its label, a bad cut is taught as no digit (the reading model's recipe).",
    ),
]
TimeBudget = Annotated[
    str | None,
    typer.Option(
        "--time",
        metavar="DURATION",
        callback=check_duration,
        help="Train for this long (10s, 90s, 5m, 1h) and end with a finished model: the one-cycle schedule is "
        "fitted to the budget from the speed of the first steps. With --epochs: whichever ends first.",
    ),
]
Patience = Annotated[
    int,
    typer.Option(
        min=0,
        metavar="N",
        help="With --val-size: stop when validation accuracy has not improved for N epochs (best.pt is kept). "
        "0: never stop early.",
    ),
]
Init = Annotated[
    Path | None,
    typer.Option(
        metavar="CKPT",
        help="Start from this checkpoint's weights (a new optimizer and schedule); `reader` or `digits` for "
        "the models shipped with lenet.",
    ),
]
TrainNumbers = Annotated[
    list[Path] | None,
    typer.Option(
        "--numbers",
        metavar="DIR",
        help="Also learn whole numbers: DIR holds images and labels.csv (file,label); each label is spelled "
        "through the reader's cuts by the current model, the pieces learned as digits or no digit; repeatable.",
    ),
]
Resume = Annotated[
    Path | None,
    typer.Option(
        help="Continue the run saved in this checkpoint exactly where it stopped, with its own settings "
        "(only --epochs, --device, --data-dir and --checkpoint-dir may change)."
    ),
]
ProgressJson = Annotated[
    bool,
    typer.Option(
        "--progress-json",
        hidden=True,  # for programs that run `lenet train` (the server's Teach), not for people
        help="Also write JSON lines of progress to stderr: the run folder and steps, then step counts.",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout; progress on stderr.")
]


# evaluate's options.
ModelPath = Annotated[
    Path | None,
    typer.Argument(
        metavar="[CHECKPOINT]",
        help="A lenet checkpoint, a bare state_dict, or an export (with --numbers, default: the model shipped "
        "for reading, as lenet read).",
        show_default=False,
    ),
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


# predict's options.
PredictImages = Annotated[
    list[Path], typer.Argument(metavar="IMAGE", help="Image files, or folders of them.")
]
PredictModel = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="A checkpoint, or an exported .onnx/.pt2 file. Default: the newest checkpoint under checkpoints/, "
        "else the model shipped with lenet.",
    ),
]
ReadModel = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="A checkpoint, or an exported .onnx/.pt2 file. Default: the model shipped for reading numbers "
        "(trained with --styles --cuts).",
    ),
]
TopK = Annotated[int, typer.Option(min=1, max=10, help="How many classes to list per image.")]
InvertOption = Annotated[
    Invert, typer.Option(help="Dark ink on light paper? auto detects it from the border.")
]
ShowInputs = Annotated[
    bool, typer.Option("--show", help="Draw the 28x28 image the network saw beside each prediction.")
]
SavePreprocessed = Annotated[
    Path | None, typer.Option(metavar="DIR", help="Write the 28x28 images the network saw as PNGs into DIR.")
]


# read's options.
ReadLength = Annotated[
    str | None,
    typer.Option(
        "--length", metavar="N[-M]", help="How many digits to expect: N, or a range N-M (a ZIP code: 5)."
    ),
]
ReadInvert = Annotated[
    Invert, typer.Option("--invert", help="Dark ink on light paper? auto tells from the whole field.")
]
ShowCuts = Annotated[
    bool, typer.Option("--show", help="Draw where the number was cut and the 28x28 input of each digit.")
]
NumbersDir = Annotated[
    Path | None,
    typer.Option(
        "--numbers", metavar="DIR", help="Read whole numbers: DIR holds images and labels.csv (file,label)."
    ),
]


# summary's and export's options.
SummaryModel = Annotated[
    Path | None,
    typer.Argument(
        metavar="[CHECKPOINT]", help="Also describe how this checkpoint was trained, or what an export holds."
    ),
]
ExportSource = Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="The lenet checkpoint to export.")]
ExportFormatOption = Annotated[
    ExportFormat, typer.Option("--format", help="onnx (onnxruntime, web, mobile) or pt2 (torch.export).")
]
ExportOutput = Annotated[
    Path | None, typer.Option("--output", "-o", help="Default: beside the checkpoint, last.onnx or last.pt2.")
]
Opset = Annotated[int | None, typer.Option(min=7, help="ONNX opset (default: the exporter's, 18+).")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
VerifyDataDir = Annotated[
    Path | None, typer.Option(help="Where to find test images to verify on (never downloads).")
]


# serve's options.
ServeModel = Annotated[
    Path | None,
    typer.Argument(
        metavar="[CHECKPOINT]",
        help="A checkpoint, or an exported .onnx/.pt2 file. Default: the newest checkpoint under checkpoints/, "
        "else the model shipped with lenet.",
    ),
]
Host = Annotated[
    str,
    typer.Option(help="Where to listen; anything but 127.0.0.1/localhost is reachable from other machines."),
]
Port = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")]
WindowMs = Annotated[
    float,
    typer.Option(min=0, help="How long a request waits for others to share a forward pass (0: no batching)."),
]
MaxBatch = Annotated[int, typer.Option(min=1, help="Images in one forward pass at most.")]
MaxPending = Annotated[
    int, typer.Option(min=1, help="Images waiting at most; past it, requests get 503 and Retry-After.")
]
UploadMemory = Annotated[
    int,
    typer.Option(
        "--upload-memory-mib",
        min=16,
        help="Memory for request bodies being received or waiting to be read, in MiB; past it, 503.",
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(min=1, help="Seconds a request's headers and body may take to arrive; past it, 408."),
]
IdleTimeout = Annotated[
    float, typer.Option(min=0.1, help="Seconds an idle keep-alive connection stays open.")
]
MaxConnections = Annotated[int, typer.Option(min=1, help="Connections open at once; past it, 503.")]
CollectLimit = Annotated[
    int, typer.Option(min=1, help="With --collect: drawings saved per class at most; past it, 507.")
]
Workers = Annotated[
    int | None,
    typer.Option(min=0, help="Preprocessing processes (default: one per core; 0: threads in the server)."),
]
Collect = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR", help="Let the page save drawings into DIR/<label>/ (for --images). Off by default."
    ),
]
TeachDataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="With --collect: the dataset's IDX files, which Teach mixes in and tests on (never downloaded here).",
    ),
]
TeachCheckpointDir = Annotated[
    Path,
    typer.Option("--checkpoint-dir", help="With --collect: where Teach writes its runs (run-N/last.pt)."),
]
