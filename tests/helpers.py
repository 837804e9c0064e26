"""Helpers the test modules share: the CLI runner, hostile pickles, a real Ctrl-C at a chosen step, and
digits written as PNGs into class folders."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from typer.testing import CliRunner

from lenet_cli.cli import app

runner = CliRunner()


def invoke(*args, **kwargs):
    """`lenet ARGS...` through Typer's runner; every argument is turned into a string."""
    return runner.invoke(app, [str(arg) for arg in args], **kwargs)


class CodeRunningPayload:
    """Unpickling this runs `touch marker`: what a malicious file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_code_running_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"model": CodeRunningPayload(marker)}, path)
    return path


def interrupt_at(global_step: int) -> Callable[[int], None]:
    """An on_step callback that sends this process a real SIGINT once `global_step` steps are done."""
    done = {"steps": 0}

    def on_step(_step_in_epoch: int) -> None:
        done["steps"] += 1
        if done["steps"] == global_step:
            os.kill(os.getpid(), signal.SIGINT)

    return on_step


def write_digit_png(path: Path, image_u8: torch.Tensor) -> Path:
    Image.fromarray(image_u8.numpy(), mode="L").save(path)
    return path


def digits_in_class_folders(
    root: Path, images_u8: torch.Tensor, labels: torch.Tensor, name: str = "{index}"
) -> Path:
    """root/<label>/<name>.png for each image: the ImageFolder layout `--images` takes."""
    for index, (image, label) in enumerate(zip(images_u8, labels.tolist(), strict=True)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        write_digit_png(folder / f"{name.format(index=index)}.png", image)
    return root
