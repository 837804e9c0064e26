"""Does torch.compile pay for LeNet-5 training on this CPU? Eager vs compiled, same steps.

    python bench/training/compile_check.py --data-dir ../shared/data/mnist [--steps 400]

Prints the first-call (compile) time and steady-state ms per step of lenet's eager step and of the
same step with the model under torch.compile (inductor), and what a 5-epoch run would cost each way.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lenet_cli.core.model import LeNet5
from lenet_cli.data.datasets import as_input, load_split


def measure(train, compiled: bool, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = LeNet5().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    forward = torch.compile(model) if compiled else model
    batches = torch.randperm(len(train)).split(64)

    def step(indices):
        loss = F.cross_entropy(forward(as_input(train.images[indices])), train.labels[indices])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    started = time.perf_counter()
    for indices in batches[:20]:  # the first calls compile (when compiled)
        step(indices)
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    for indices in batches[20 : 20 + steps]:
        step(indices)
    return warmup, (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    train = load_split("mnist", args.data_dir, "train")
    steps_per_run = 5 * 938
    for compiled in (False, True, False, True):
        warmup, per_step = measure(train, compiled, args.steps)
        name = "torch.compile" if compiled else "eager"
        print(
            f"{name:>13}: first 20 steps {warmup:.1f}s, then {per_step * 1000:.2f} ms/step; "
            f"5 epochs ≈ {warmup + per_step * steps_per_run:.1f}s"
        )


if __name__ == "__main__":
    main()
