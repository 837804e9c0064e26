"""onnxruntime against torch eager on the same LeNet-5: the 10,000 MNIST test images and single images.

    python bench/predict/export_speed.py CHECKPOINT_OR_ONNX_SOURCE --data-dir ../shared/data/mnist [--rounds 5]

Exports the checkpoint to a temporary .onnx (verified, as `lenet export` does), then alternates
the two runtimes round by round in this process, so both see the same machine noise; both use the
same number of threads (torch's intra-op threads, onnxruntime's intra-op threads). Reports the
median of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from lenet_cli.data.datasets import as_input, load_split
from lenet_cli.formats.checkpoint import load_model
from lenet_cli.inference.export import export_checkpoint


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=1000, help="images run one at a time")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    onnx_path = Path(tempfile.mkdtemp(prefix="lenet-export-")) / "model.onnx"
    export_checkpoint(args.checkpoint, "onnx", onnx_path, data_dir=args.data_dir)
    model, _ = load_model(args.checkpoint)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    images = as_input(load_split("mnist", args.data_dir, "test").images)
    arrays = images.numpy()

    def torch_batches():
        with torch.inference_mode():
            return [model(images[start : start + 1000]) for start in range(0, len(images), 1000)]

    def onnx_batches():
        return [
            session.run(["logits"], {"image": arrays[start : start + 1000]})
            for start in range(0, len(arrays), 1000)
        ]

    def torch_singles():
        with torch.inference_mode():
            for index in range(args.singles):
                model(images[index : index + 1])

    def onnx_singles():
        for index in range(args.singles):
            session.run(["logits"], {"image": arrays[index : index + 1]})

    torch_logits = torch.cat(torch_batches()).numpy()
    onnx_logits = np.concatenate([out[0] for out in onnx_batches()])
    print(
        f"{threads} threads each; largest |logit difference| on 10,000 images: "
        f"{np.abs(torch_logits - onnx_logits).max():.2e}, same class for "
        f"{(torch_logits.argmax(1) == onnx_logits.argmax(1)).mean():.2%}"
    )
    rows = {
        "10,000 images, batch 1,000": (torch_batches, onnx_batches, len(images)),
        f"{args.singles:,} images, batch 1": (torch_singles, onnx_singles, args.singles),
    }
    print(f"{'':<28} {'torch eager':>22} {'onnxruntime':>22} {'speed-up':>9}")
    for name, (torch_run, onnx_run, count) in rows.items():
        torch_s, onnx_s = [], []
        for _ in range(args.rounds):
            torch_s.append(timed(torch_run))
            onnx_s.append(timed(onnx_run))
        t, o = statistics.median(torch_s), statistics.median(onnx_s)
        print(
            f"{name:<28} {t * 1000:>8.1f} ms {count / t:>7,.0f} img/s {o * 1000:>8.1f} ms {count / o:>7,.0f} img/s"
            f" {t / o:>8.2f}x"
        )


if __name__ == "__main__":
    main()
