"""`lenet export`: a checkpoint to an ONNX file or a `torch.export` program, verified before it lands.

Both formats take the model's own input, float32 (N, 1, 28, 28) in [0, 1], white digit on black,
with N free, and give logits (N, 10): no preprocessing or softmax is hidden inside. The file is
written to a temporary name, run against the checkpoint's model on 1,000 images (onnxruntime for
ONNX, `torch.export.load` for pt2), and renamed into place only if every logit is within
`TOLERANCE` and every predicted class agrees; otherwise nothing is left behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lenet_cli.core.config import EXPORT_FORMATS
from lenet_cli.core.errors import LenetError
from lenet_cli.core.model import LeNet5
from lenet_cli.core.version import __version__
from lenet_cli.core.writing import fsync_folder, temporary_path
from lenet_cli.data.datasets import Split, as_input, class_names, find_split
from lenet_cli.formats.checkpoint import load_checkpoint, now_iso
from lenet_cli.formats.model_file import export_format_of, open_model
from lenet_cli.formats.model_files import INPUT_CONVENTION, METADATA_FILE, load_exported
from lenet_cli.formats.model_info import ModelInfo

TOLERANCE = 1e-4  # largest |logit difference| accepted between the export and the checkpoint
CHECK_IMAGES = 1000
INPUT_NAME, OUTPUT_NAME = "image", "logits"


@dataclass
class ExportResult:
    path: str
    format: str
    max_abs_diff: float
    images_checked: int
    checked_on: str  # "mnist test set" or "synthetic digits"
    argmax_agreement: float  # share of images whose predicted class is the same
    bytes: int
    opset: int | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_output(checkpoint: Path, export_format: str) -> Path:
    return checkpoint.with_suffix(EXPORT_FORMATS[export_format])


def export_checkpoint(
    checkpoint: str | os.PathLike,
    export_format: str = "onnx",
    output: str | os.PathLike | None = None,
    opset: int | None = None,
    force: bool = False,
    data_dir: str | os.PathLike | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export, verify, then move into place (atomically); raise LenetError and leave nothing on failure.

    `on_stage` hears "Verifying" and "Writing" as the export gets there (for a progress bar)."""
    stage = on_stage or (lambda _name: None)
    started = time.perf_counter()
    checkpoint = Path(checkpoint)
    if export_format not in EXPORT_FORMATS:
        raise LenetError(f"unknown format {export_format!r}; choose {' or '.join(EXPORT_FORMATS)}")
    if export_format_of(checkpoint) is not None:
        raise LenetError(f"{checkpoint} is already an export; export from the checkpoint (.pt) it came from")
    saved = load_checkpoint(checkpoint)
    info = ModelInfo.of_checkpoint(checkpoint, saved)
    target = Path(output) if output is not None else default_output(checkpoint, export_format)
    _check_target(target, export_format, force)
    model = LeNet5()
    model.load_state_dict(saved["model"])
    model.eval()
    metadata = export_metadata(info)
    images, checked_on = check_images(info, data_dir)
    opset_used, max_diff, agreement = _write_verified(
        model, target, export_format, opset, metadata, images, f"{checkpoint}", stage
    )
    return ExportResult(
        str(target),
        export_format,
        max_diff,
        len(images),
        checked_on,
        agreement,
        target.stat().st_size,
        opset_used,
        time.perf_counter() - started,
    )


def _write_verified(
    model: LeNet5,
    target: Path,
    export_format: str,
    opset: int | None,
    metadata: dict[str, str],
    images: torch.Tensor,
    source: str,
    stage: Callable[[str], None],
) -> tuple[int | None, float, float]:
    """Write the export to a temporary file beside `target`, check it against `model` on `images`, and only
    then move it into place; (the opset used, the largest logit difference, the share of equal classes)."""
    temporary = temporary_path(target, keep_suffix=True)
    try:
        try:
            if export_format == "onnx":
                opset_used = _write_onnx(model, temporary, opset, metadata)
            else:
                opset_used = None
                _write_pt2(model, temporary, metadata)
        except RuntimeError as error:  # torch.export.save reports a failed write as a RuntimeError
            raise LenetError(f"cannot write {target}: {str(error).strip().splitlines()[-1]}") from None
        stage(f"Verifying on {len(images):,} images")
        max_diff, agreement = verify(model, temporary, export_format, images)
        if max_diff > TOLERANCE or agreement < 1.0:
            raise LenetError(
                f"the exported model disagrees with {source}: largest logit difference {max_diff:.2e} "
                f"(allowed {TOLERANCE:g}), same class on {agreement:.2%} of {len(images)} images; nothing written"
            )
        stage("Writing")
        os.replace(temporary, target)
        fsync_folder(target.parent)
    except OSError as error:
        raise LenetError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return opset_used, max_diff, agreement


def _check_target(target: Path, export_format: str, force: bool) -> None:
    suffix = EXPORT_FORMATS[export_format]
    if target.suffix != suffix:
        raise LenetError(f"--output for --format {export_format} must end in {suffix}: {target}")
    if target.is_dir():
        raise LenetError(f"{target} is a folder")
    if target.exists() and not force:
        raise LenetError(f"{target} already exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise LenetError(f"cannot write {target}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise LenetError(f"cannot write {target}: folder {target.parent} is not writable")


def export_metadata(info: ModelInfo) -> dict[str, str]:
    """What travels inside the exported file: enough to use it correctly without lenet."""
    return {
        "lenet_version": __version__,
        "dataset": info.dataset,
        "class_names": json.dumps(class_names(info.dataset)),
        "input": INPUT_CONVENTION,
        "test_accuracy": "" if info.test_accuracy is None else f"{info.test_accuracy:.6f}",
        "source_checkpoint": Path(info.path).name,
        # where it was trained from, so `lenet evaluate x.onnx` finds the test set as for the checkpoint
        "data_dir": info.data_dir or "",
        "exported": now_iso(),
    }


def check_images(info: ModelInfo, data_dir: str | os.PathLike | None) -> tuple[torch.Tensor, str]:
    """1,000 inputs to compare on: the dataset's test images when they are at hand (never downloaded),
    else synthetic strokes."""
    test: Split | None = find_split(info.dataset, info.test_data_dir(info.dataset, data_dir), "test")
    if test is not None and len(test) >= CHECK_IMAGES:
        return as_input(test.images[:CHECK_IMAGES]), f"{info.dataset} test set"
    return as_input(synthetic_digits(CHECK_IMAGES)), "synthetic digits"


def synthetic_digits(count: int, seed: int = 0) -> torch.Tensor:
    """uint8 (count, 28, 28): two to four thick random strokes each, digit-like enough to spread the
    logits over all classes."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    pixels = torch.stack([xs, ys], dim=-1).reshape(1, 1, 784, 2)
    starts = 5 + 18 * torch.rand(count, 4, 1, 2, generator=generator)
    ends = 5 + 18 * torch.rand(count, 4, 1, 2, generator=generator)
    direction = ends - starts
    along = ((pixels - starts) * direction).sum(-1) / (direction**2).sum(-1).clamp(min=1e-6)
    nearest = starts + along.clamp(0, 1)[..., None] * direction
    distance = (pixels - nearest).norm(dim=-1)  # (count, 4, 784)
    used = torch.arange(4) < torch.randint(2, 5, (count, 1), generator=generator)
    ink = ((2.2 - distance).clamp(0, 1) * used[..., None]).amax(dim=1)
    return (ink.reshape(count, 28, 28) * 255).round().to(torch.uint8)


def _quietly(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an exporter without its progress lines and logged tracebacks (shown only if it fails)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            return function(*args, **kwargs)
    except Exception as error:
        last = next(
            (line for line in reversed(str(error).splitlines()) if line.strip()), type(error).__name__
        )
        raise LenetError(f"the exporter failed: {last.strip()}") from None


def _example_and_shapes() -> tuple[tuple[torch.Tensor], dict[str, dict[int, Any]]]:
    # An example batch of 2, not 1: exporters specialise a dimension of size 1 to a constant.
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    return (torch.rand(2, 1, 28, 28),), {"x": {0: batch}}


def _write_onnx(model: LeNet5, path: Path, opset: int | None, metadata: dict[str, str]) -> int:
    import onnx

    example, shapes = _example_and_shapes()
    program = _quietly(
        torch.onnx.export,
        model,
        example,
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=shapes,
        opset_version=opset,
    )
    proto = program.model_proto
    opset_used = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
    if opset is not None and opset_used != opset:
        raise LenetError(
            f"the exporter cannot write opset {opset} for this model (it gave {opset_used}); "
            "leave --opset out or pass 17 or higher"
        )
    proto.doc_string = f"LeNet-5 exported by lenet {__version__}. Input: {INPUT_CONVENTION}."
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(proto, str(path))  # weights inside the one file (far below protobuf's 2 GB)
    return opset_used


def _write_pt2(model: LeNet5, path: Path, metadata: dict[str, str]) -> None:
    example, shapes = _example_and_shapes()
    program = _quietly(torch.export.export, model, example, dynamic_shapes=shapes)
    torch.export.save(program, str(path), extra_files={METADATA_FILE: json.dumps(metadata)})


def verify(model: LeNet5, path: Path, export_format: str, inputs: torch.Tensor) -> tuple[float, float]:
    """(largest |logit difference|, share of equal argmax) of the file against `model`, at the full
    batch and image by image for the first ten (the batch dimension must really be free)."""
    exported, _ = load_exported(open_model(path))
    with torch.inference_mode():
        reference = model(inputs)
        logits = exported(inputs)
        singles = torch.cat([exported(inputs[index : index + 1]) for index in range(10)])
    max_diff = max(float((logits - reference).abs().max()), float((singles - reference[:10]).abs().max()))
    agreement = float((logits.argmax(1) == reference.argmax(1)).float().mean())
    return max_diff, agreement
