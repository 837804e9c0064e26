"""Exports against the tutorial's own LeNet5 class, loaded with the checkpoint's weights.

    python bench/predict/export_compat.py CHECKPOINT --data-dir ../shared/data/mnist

Exports CHECKPOINT to .onnx and .pt2 in a temporary folder with `lenet export`'s code, then runs
each file independently (an onnxruntime session; torch.export.load) on the 10,000 MNIST test
images at batch 1,000 and on the first 1,000 at batch 1, and compares logits and accuracy with the
tutorial's class (bench/tutorial.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
import tutorial  # noqa: E402

from lenet_cli.data.datasets import as_input, load_split  # noqa: E402
from lenet_cli.inference.export import export_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lenet-export-"))
    test = load_split("mnist", args.data_dir, "test")
    images, labels = as_input(test.images), test.labels
    reference_model = tutorial.LeNet5()
    reference_model.load_state_dict(torch.load(args.checkpoint, weights_only=True)["model"], strict=True)
    reference_model.eval()
    session = None
    runners = {}
    for export_format in ("onnx", "pt2"):
        path = folder / f"model.{export_format}"
        export_checkpoint(args.checkpoint, export_format, path, data_dir=args.data_dir)
        if export_format == "onnx":
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            runners["onnx"] = lambda x, s=session: torch.from_numpy(
                s.run(["logits"], {"image": x.numpy()})[0]
            )
        else:
            runners["pt2"] = torch.export.load(str(path)).module()
    with torch.inference_mode():
        reference = torch.cat([reference_model(images[i : i + 1000]) for i in range(0, len(images), 1000)])
        print(f"tutorial LeNet5: {(reference.argmax(1) == labels).sum().item():,}/10,000 correct")
        for name, run in runners.items():
            batched = torch.cat([run(images[i : i + 1000]) for i in range(0, len(images), 1000)])
            singles = torch.cat([run(images[i : i + 1]) for i in range(1000)])
            print(
                f"{name}: batch 1,000 max |diff| {(batched - reference).abs().max():.2e}, "
                f"batch 1 max |diff| {(singles - reference[:1000]).abs().max():.2e}, "
                f"{(batched.argmax(1) == labels).sum().item():,}/10,000 correct"
            )


if __name__ == "__main__":
    main()
