"""The `lenet` command line: options in, one core call, results rendered out.

Torch is imported inside the commands, so `lenet --help`, `--version` and usage errors stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lenet_cli.cli.edge import consoles, fail, handles_errors, print_json
from lenet_cli.cli.explain import explain
from lenet_cli.cli.options import (
    AsJson,
    BatchSize,
    CheckpointDir,
    Cuts,
    DataDir,
    Dataset,
    DatasetOption,
    Device,
    DeviceOption,
    Epochs,
    EvalBatchSize,
    EvalDataDir,
    EvalDataset,
    EvalImages,
    ExportFormat,
    ExportFormatOption,
    ExportOutput,
    ExportSource,
    Force,
    ImageFolders,
    ImageShare,
    Init,
    Invert,
    InvertOption,
    LabelSmoothing,
    LearningRate,
    ModelPath,
    NumbersDir,
    Opset,
    Optimizer,
    OptimizerOption,
    Patience,
    Plots,
    PredictImages,
    PredictModel,
    ProgressJson,
    Resume,
    SavePreprocessed,
    Schedule,
    ScheduleOption,
    Seed,
    ShowInputs,
    ShowMistakes,
    Styles,
    StyleShare,
    SummaryModel,
    TimeBudget,
    TopK,
    TrainNumbers,
    ValSize,
    VerifyDataDir,
    train_config,
)
from lenet_cli.cli.read import evaluate_numbers, read
from lenet_cli.cli.serve import serve
from lenet_cli.core.config import DEFAULT_TOP_K, EVAL_BATCH_SIZE, TrainConfig
from lenet_cli.core.version import __version__
from lenet_cli.serving.options import ServeOptions

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
SERVE_DEFAULTS = ServeOptions()


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


@app.command()
@handles_errors
def train(
    ctx: typer.Context,
    epochs: Epochs = DEFAULTS.epochs,
    batch_size: BatchSize = None,
    lr: LearningRate = None,
    label_smoothing: LabelSmoothing = None,
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
    styles: Styles = DEFAULTS.styles,
    style_share: StyleShare = DEFAULTS.style_share,
    cuts: Cuts = DEFAULTS.cuts,
    numbers: TrainNumbers = None,
    time: TimeBudget = None,
    patience: Patience = DEFAULTS.patience,
    init: Init = None,
    resume: Resume = None,
    as_json: AsJson = False,
    progress_json: ProgressJson = False,
) -> None:
    """Train LeNet-5 and save a checkpoint every epoch.

    Example: lenet train --epochs 5 --data-dir ../shared/data/mnist

    For as long as you can spare, ending with a finished model: lenet train --time 10s

    The default recipe is Adam on a one-cycle schedule peaking at 1.2e-2, batches of 128 and label
    smoothing 0.1; the tutorial's own recipe (constant Adam 1e-3, batches of 64) is `--schedule constant`.
    Ctrl-C saves a resumable checkpoint.
    Teach it your handwriting: lenet train --init checkpoints/run-1/last.pt --images my-digits/ --epochs 1

    Under torchrun (torchrun --standalone --nproc-per-node N -m lenet_cli train ...) it trains with
    DistributedDataParallel, NCCL on GPUs and Gloo on CPUs; rank 0 prints and writes checkpoints.

    With `pip install 'lenet-cli[tensorboard]'` every run also logs to TensorBoard in its run folder:
    tensorboard --logdir checkpoints
    """
    from lenet_cli.cli.progress import train_listeners
    from lenet_cli.cli.render import train_end_lines
    from lenet_cli.training.fit import fit

    config = train_settings(ctx, resume)
    results, info = consoles(as_json)
    result = fit(config, resume, *train_listeners(info, progress_json), show_progress=True)
    if result.rank != 0:  # under torchrun, rank 0 reports for all
        return
    if as_json:
        print_json(result.to_dict())
        return
    for line in train_end_lines(result):
        results.print(line)


def train_settings(ctx: typer.Context, resume: Path | None) -> TrainConfig:
    """train's settings: from its options, or a resumed run's own with the options that may change."""
    from lenet_cli.formats.checkpoint import resume_config

    config = train_config(ctx.params)
    if resume is not None:
        config = resume_config(resume, settings_given(ctx, config))
    if config.patience and not config.val_size:
        raise fail("--patience needs --val-size N: it stops when the validation accuracy stops improving", 2)
    return config


def settings_given(ctx: typer.Context, config: TrainConfig) -> dict[str, object]:
    """The settings typed on the command line (a resume may change some of them)."""
    return {
        name: getattr(config, name)
        for name in TrainConfig.__dataclass_fields__
        if given_on_command_line(ctx, name)
    }


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@app.command()
@handles_errors
def evaluate(
    checkpoint: ModelPath = None,
    images: EvalImages = None,
    dataset: EvalDataset = None,
    data_dir: EvalDataDir = None,
    batch_size: EvalBatchSize = EVAL_BATCH_SIZE,
    device: DeviceOption = Device.auto,
    plots: Plots = None,
    show: ShowMistakes = False,
    numbers: NumbersDir = None,
    as_json: AsJson = False,
) -> None:
    """Test a checkpoint: accuracy, loss, per-class table and confusion matrix.

    Example: lenet evaluate checkpoints/run-1/last.pt --data-dir ../shared/data/mnist

    With --images, on your own labelled digits (DIR/<class>/<image>, e.g. my-digits/7/a.png): the same
    report, plus the most confident mistakes. Unreadable images are listed and the exit code is 1.
    With --numbers DIR, whole numbers as lenet read reads them (DIR/labels.csv: file,label), with its
    model unless CHECKPOINT is given: exact match, ANLD, accuracy by length, the most confident mistakes.
    """
    if numbers is not None or checkpoint is None:  # only --numbers has a default model: lenet read's
        return evaluate_numbers(checkpoint, numbers, plots, as_json, bool(images or dataset or data_dir))
    from lenet_cli.cli.render import evaluation_view
    from lenet_cli.core.device import resolve_device
    from lenet_cli.data.datasets import class_names
    from lenet_cli.formats.model_files import load_any_model
    from lenet_cli.inference.evaluate import evaluate_with_mistakes, evaluation_data

    model, info = load_any_model(checkpoint, resolve_device(device.value))
    dataset_name = dataset.value if dataset else info.dataset
    names = class_names(dataset_name)
    chosen = evaluation_data(info, dataset_name, names, data_dir, images, show_progress=True)
    metrics, mistakes = evaluate_with_mistakes(model, chosen.split, chosen.paths, batch_size, len(names))
    if plots is not None:
        from lenet_cli.inference.plots import draw_evaluation

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


@app.command()
@handles_errors
def predict(
    images: PredictImages,
    checkpoint: PredictModel = None,
    top_k: TopK = DEFAULT_TOP_K,
    invert: InvertOption = Invert.auto,
    show: ShowInputs = False,
    save_preprocessed: SavePreprocessed = None,
    as_json: AsJson = False,
) -> None:
    """Classify digit images with a trained checkpoint.

    Example: lenet predict digit.png scans/ --checkpoint checkpoints/run-1/last.pt --show

    Each image is brought into MNIST's form first: grey levels, white digit on black, cropped to the
    ink, scaled to 20 pixels and centred by mass in 28x28. Images that fail are reported and the
    rest still predicted (exit 1 if any failed).
    """
    from lenet_cli.cli.render import predictions_table
    from lenet_cli.core.config import class_names
    from lenet_cli.formats.shipped import default_model
    from lenet_cli.inference.fast_predict import load_predict_model
    from lenet_cli.inference.predict import predict_files
    from lenet_cli.inference.predict import save_preprocessed as save_inputs

    checkpoint_path, note = (checkpoint, None) if checkpoint else default_model(DEFAULTS.checkpoint_dir)
    if note:
        typer.echo(note, err=True)
    model, info = load_predict_model(checkpoint_path)
    predictions = predict_files(model, images, top_k=top_k, invert=invert.value, show_progress=True)
    if save_preprocessed is not None:
        save_inputs(predictions, save_preprocessed)
    if as_json:
        print_json({"checkpoint": str(checkpoint_path), "predictions": [p.to_dict() for p in predictions]})
    else:
        results, _ = consoles(as_json)
        color = results.color_system is not None
        results.print(predictions_table(predictions, class_names(info.dataset), show=show, color=color))
    failures = sum(prediction.error is not None for prediction in predictions)
    if failures:
        raise fail(f"{failures} of {len(predictions)} images could not be predicted")


app.command()(handles_errors(read))
app.command()(handles_errors(explain))


@app.command()
@handles_errors
def summary(
    checkpoint: SummaryModel = None,
    as_json: AsJson = False,
) -> None:
    """The layer table: output shapes, formulas, parameters, mult-adds and memory.

    Example: lenet summary checkpoints/run-1/last.pt

    Without a checkpoint, also how the model that predict and serve use by default was trained (the newest
    checkpoint under checkpoints/, else the one shipped with lenet).
    Given an exported .onnx or .pt2 file: its inputs, outputs, opset and the metadata lenet wrote.
    """
    from lenet_cli.cli.render import checkpoint_table, export_table, summary_table
    from lenet_cli.formats.model_file import open_model
    from lenet_cli.formats.model_info import ModelInfo
    from lenet_cli.formats.shipped import default_model
    from lenet_cli.inference.fast_predict import read_checkpoint_record
    from lenet_cli.inference.summary import layer_table

    named = checkpoint is not None  # else: describe the model predict and serve would use
    model_file = open_model(checkpoint if named else default_model(DEFAULTS.checkpoint_dir)[0])
    if model_file.kind != "checkpoint":
        from lenet_cli.formats.model_files import describe_export

        description = describe_export(model_file)
        if as_json:
            print_json(description)
        else:
            consoles(as_json)[0].print(export_table(description))
        return
    info = ModelInfo.of_checkpoint(model_file.given, read_checkpoint_record(model_file))
    model_summary = layer_table()  # every LeNet-5 has this table; the file was checked to be one
    if as_json:
        document = model_summary.to_dict()
        document["checkpoint" if named else "default_model"] = info.summary()
        print_json(document)
        return
    results, _ = consoles(as_json)
    results.print(summary_table(model_summary))
    if not named:
        results.print("The model predict and serve use when none is named:")
    results.print(checkpoint_table(info))


@app.command()
@handles_errors
def export(
    checkpoint: ExportSource,
    export_format: ExportFormatOption = ExportFormat.onnx,
    output: ExportOutput = None,
    opset: Opset = None,
    force: Force = False,
    data_dir: VerifyDataDir = None,
    as_json: AsJson = False,
) -> None:
    """Export a checkpoint to ONNX or a torch.export program, verified against the checkpoint.

    Example: lenet export checkpoints/run-1/last.pt --format onnx

    The export takes float32 (N, 1, 28, 28) in [0, 1], white digit on black, any N, and gives logits
    (N, 10). It is run on 1,000 images and kept only if its logits match the checkpoint's within 1e-4
    with the same predicted class for every image. Run it with lenet evaluate/predict too.
    """
    from tqdm import tqdm

    from lenet_cli.cli.render import export_lines
    from lenet_cli.inference.export import export_checkpoint

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


app.command()(handles_errors(serve))


def main() -> None:
    app(prog_name="lenet")


if __name__ == "__main__":
    sys.exit(main())
