"""Same answers with and without torch: `lenet predict`'s torch-free path against the torch path.

    python bench/predict/fast_predict_check.py [--checkpoint PATH] [--onnx PATH] --data-dir ../shared/data/mnist \
        [--handwriting ../shared/data/handwriting] [--drawn 50]

Sets: the MNIST test images written as PNG files (in a temporary folder), bench/predict/predict_accuracy.py's
drawn digits (each kind) and typed digits, and the handwriting photos. For every image:
- inputs: the 28x28 uint8 the network is given, read in a process where torch cannot be imported
  against this process, where torch is loaded: the same (one resampler, lenet_cli/images/resample.py);
- answers: the numpy LeNet-5 (and onnxruntime, with --onnx) against the torch model on those inputs:
  the same top label, every class probability within 1e-5.
Prints one line per set and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit, variant  # noqa: E402
from predict_accuracy import FONTS, KINDS  # noqa: E402

from lenet_cli.core.errors import ImageError  # noqa: E402
from lenet_cli.data.datasets import load_split  # noqa: E402
from lenet_cli.formats.model_file import open_model  # noqa: E402
from lenet_cli.formats.model_files import load_any_model  # noqa: E402
from lenet_cli.formats.shipped import PRETRAINED  # noqa: E402
from lenet_cli.images.many_files import read_digits  # noqa: E402
from lenet_cli.images.preprocess import save_png  # noqa: E402
from lenet_cli.inference.fast_predict import load_array_model  # noqa: E402
from lenet_cli.inference.forward import predict_logits  # noqa: E402
from lenet_cli.inference.numpy_forward import softmax  # noqa: E402

TOLERANCE = 1e-5


BLOCKED_READ = """
import json, sys
import numpy as np

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(name + " is blocked")

sys.meta_path.insert(0, NoTorch())
from lenet_cli.images.many_files import read_digits

digits = read_digits(sys.argv[2:])
errors = [str(digit) if not isinstance(digit, np.ndarray) else None for digit in digits]
stacked = [digit if isinstance(digit, np.ndarray) else np.zeros((28, 28), np.uint8) for digit in digits]
np.save(sys.argv[1], np.stack(stacked))
print(json.dumps(errors))
"""


def read_without_torch(paths: list[Path]) -> list[np.ndarray | str]:
    """Each file's input as a process that cannot import torch reads it (an error's message in its place)."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "inputs.npy"
        result = subprocess.run(
            [sys.executable, "-c", BLOCKED_READ, str(target), *map(str, paths)],
            capture_output=True,
            text=True,
            check=True,
        )
        inputs = np.load(target)
    errors = json.loads(result.stdout)
    return [error if error is not None else digit for digit, error in zip(inputs, errors, strict=True)]


def inputs_both_ways(paths: list[Path]) -> tuple[np.ndarray, int, int]:
    """(inputs of the readable files, files whose inputs differ without torch, files that failed)."""
    with_torch = read_digits(paths)
    without_torch = read_without_torch(paths)
    differ = failed = 0
    readable = []
    for mine, theirs in zip(with_torch, without_torch, strict=True):
        if isinstance(mine, ImageError) or isinstance(theirs, str):
            failed += 1
            differ += str(mine) != str(theirs)
            continue
        differ += not np.array_equal(mine, theirs)
        readable.append(mine)
    return np.stack(readable), differ, failed


def compare(name: str, paths: list[Path], torch_model, array_models: dict) -> bool:
    images_u8, differ, failed = inputs_both_ways(paths)
    reference = predict_logits(torch_model, torch.from_numpy(images_u8)).softmax(dim=1).numpy()
    line = f"{name} ({len(paths):,} files, {failed} unreadable): inputs differing {differ}"
    ok = differ == 0
    for model_name, model in array_models.items():
        probabilities = softmax(model.logits(images_u8))
        labels_differ = int((probabilities.argmax(1) != reference.argmax(1)).sum())
        worst = float(np.abs(probabilities - reference).max())
        line += f"; {model_name}: labels differing {labels_differ}, max |p - p_torch| {worst:.2e}"
        ok = ok and labels_differ == 0 and worst <= TOLERANCE
    print(line + ("" if ok else "  <- DIFFERS"), flush=True)
    return ok


def write_sets(scratch: Path, data_dir: str, mnist: int, drawn: int, seed: int) -> dict[str, list[Path]]:
    sets: dict[str, list[Path]] = {}
    test = load_split("mnist", data_dir, "test")
    folder = scratch / "mnist"
    folder.mkdir()
    for index in range(min(mnist, len(test))):
        save_png(test.images[index], folder / f"{index:05d}.png")
    sets["MNIST test as PNG"] = sorted(folder.iterdir())
    rng = random.Random(seed)
    for kind in KINDS:
        folder = scratch / kind
        folder.mkdir()
        for index in range(drawn):
            image, save_args = variant(draw_digit(index % 10, rng), kind, rng)
            image.save(folder / f"{index:03d}.{'jpg' if kind == 'photo' else 'png'}", **save_args)
        sets[f"drawn, {kind}"] = sorted(folder.iterdir())
    fonts = sorted(FONTS.glob("DejaVuSans*.ttf")) if FONTS.is_dir() else []
    if fonts:
        from PIL import Image, ImageDraw, ImageFont

        folder = scratch / "typed"
        folder.mkdir()
        for font_path in fonts:
            for digit in range(10):
                size = rng.randint(120, 420)
                canvas = Image.new("L", (1000, 800), 250)
                x, y = rng.randint(20, 1000 - size), rng.randint(0, 800 - int(size * 1.2))
                font = ImageFont.truetype(str(font_path), size)
                ImageDraw.Draw(canvas).text((x, y), str(digit), fill=20, font=font)
                canvas.save(folder / f"{font_path.stem}-{digit}.png")
        sets[f"typed ({len(fonts)} fonts)"] = sorted(folder.iterdir())
    return sets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=str(PRETRAINED))
    parser.add_argument("--onnx", help="an ONNX export of the checkpoint, to check onnxruntime too")
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--handwriting", default="../shared/data/handwriting")
    parser.add_argument("--mnist", type=int, default=10_000)
    parser.add_argument("--drawn", type=int, default=50, help="drawn digits per kind")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch_model, _ = load_any_model(args.checkpoint)
    loaded = load_array_model(open_model(args.checkpoint))
    assert loaded is not None, "this checkpoint is not read without torch"
    array_models = {"numpy": loaded[0]}
    if args.onnx:
        array_models["onnxruntime"] = load_array_model(open_model(args.onnx))[0]
    sets = write_sets(
        Path(tempfile.mkdtemp(prefix="lenet-fast-")), args.data_dir, args.mnist, args.drawn, args.seed
    )
    handwriting = Path(args.handwriting)
    if handwriting.is_dir():
        sets["handwriting photos"] = sorted(path for path in handwriting.rglob("*") if path.is_file())
    results = [compare(name, paths, torch_model, array_models) for name, paths in sets.items()]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
