"""Helpers the test modules share: the CLI runner, hostile pickles and archives, a real Ctrl-C at a chosen
step, digits written as PNGs into class folders, and a guard against hanging."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from typer.testing import CliRunner

from lenet_cli.cli.commands import app

runner = CliRunner()
SECONDS = 5  # "answers within a second or two": generous for a loaded CI machine, far from forever


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


def hostile_pt2(source: Path, target: Path, marker: Path, kind: str) -> Path:
    """A copy of the .pt2 archive `source` that runs `touch marker` if loaded the way torch.export.load
    loads it: "pickled-weight" (a weight marked use_pickle, unpickled with weights_only=False),
    "sample-inputs" (sample inputs that fail a weights-only load, for torch's fallback to a full unpickle)
    or "opaque-constant" (a constant stored as an opaque object, read with pickle.loads)."""
    import io
    import json
    import pickle
    import zipfile

    def code_running_torch_file() -> bytes:
        buffer = io.BytesIO()
        torch.save(CodeRunningPayload(marker), buffer)
        return buffer.getvalue()

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as hostile:
        root = original.namelist()[0].split("/")[0]
        weights_config = next(name for name in original.namelist() if name.endswith("_weights_config.json"))
        first_weight = next(iter(json.loads(original.read(weights_config))["config"].values()))["path_name"]
        for entry in original.infolist():
            data, name = original.read(entry), entry.filename.split("/", 1)[1]
            if kind == "pickled-weight" and name.endswith("_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            elif kind == "pickled-weight" and name == f"data/weights/{first_weight}":
                data = code_running_torch_file()
            elif kind == "sample-inputs" and name.startswith("data/sample_inputs/"):
                data = code_running_torch_file()
            elif kind == "opaque-constant" and name.endswith("_constants_config.json"):
                payload = pickle.dumps(CodeRunningPayload(marker))
                meta = {
                    "dtype": 1,
                    "sizes": [{"as_int": len(payload)}],
                    "requires_grad": False,
                    "device": {"type": "cpu", "index": None},
                    "strides": [{"as_int": 1}],
                    "storage_offset": {"as_int": 0},
                    "layout": 7,
                }
                config = json.loads(data)
                config["config"]["evil"] = {
                    "path_name": "opaque_obj_0",
                    "is_param": False,
                    "use_pickle": False,
                    "tensor_meta": meta,
                }
                data = json.dumps(config).encode()
                hostile.writestr(f"{root}/data/constants/opaque_obj_0", payload)
            hostile.writestr(entry, data)
    return target


@contextlib.contextmanager
def answers_within(seconds: float = SECONDS):
    """Fail (instead of hanging the suite) if the block has not finished in `seconds`."""

    def give_up(*_):
        raise TimeoutError(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Runs the CLI in a fresh interpreter and reports, on its last stderr line, whether torch was imported.
PROBE = """
import sys
from lenet_cli.cli import app
code = 0
try:
    app(sys.argv[1:], prog_name="lenet")
except SystemExit as exit:
    code = exit.code or 0
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def run_lenet(*args, cwd=None):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    *stderr, probe = result.stderr.splitlines()
    return (
        result.returncode,
        result.stdout,
        "".join(line + "\n" for line in stderr),
        probe == "torch imported: True",
    )


def start_serve(arguments: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """`lenet serve ARGUMENTS --port 0` in its own process, one thread, and the URL it says it serves at."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lenet_cli", "serve", *arguments, "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
    )
    line = process.stdout.readline()
    if not line.startswith("Serving "):
        process.kill()
        raise AssertionError(line + process.stderr.read())
    return process, line.split(" at ")[1].split()[0]


def stop_and_resume(config, tmp_path: Path, flag: str, at_step: int = 30) -> tuple[dict, Path]:
    """Stop a run of `config` with a real SIGINT after `at_step` steps, check that `--flag` cannot change
    when resuming, and resume it to the end: (its final weights, a copy of the stopped checkpoint)."""
    import shutil

    import pytest
    import torch

    from lenet_cli.formats.checkpoint import resume_config
    from lenet_cli.training.fit import TrainingInterrupted, fit

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(config, on_step=interrupt_at(at_step), run_outputs=False)
    checkpoint = stopped.value.checkpoint
    kept = tmp_path / "stopped.pt"
    shutil.copy(checkpoint, kept)
    with pytest.raises(Exception, match=rf"--{flag} cannot change when resuming"):
        resume_config(checkpoint, {flag: False})
    resumed = fit(resume_config(checkpoint, {}), resume_from=checkpoint, run_outputs=False)
    return torch.load(resumed.checkpoint, weights_only=True)["model"], kept
