"""Where a training step's time goes: the cost of one LeNet-5 step (lenet's: resident uint8 data,
channels-last, fused Adam) for each batch size and thread count, per step, per image and per epoch.

    python bench/training/step_cost.py --data-dir ../shared/data/mnist --batch-sizes 64,128,256,512 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lenet_cli.core.model import LeNet5
from lenet_cli.data.datasets import as_input, load_split

WARMUP_STEPS = 5


def step_seconds(train, batch_size: int, steps: int) -> float:
    torch.manual_seed(0)
    model = LeNet5().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    order = torch.randperm(len(train))
    for step in range(steps + WARMUP_STEPS):
        if step == WARMUP_STEPS:
            started = time.perf_counter()
        indices = order[step * batch_size : (step + 1) * batch_size]
        loss = F.cross_entropy(model(as_input(train.images[indices])), train.labels[indices])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--batch-sizes", default="64,128,256,512")
    parser.add_argument("--threads", default="2", help="comma-separated")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    train = load_split("mnist", args.data_dir, "train")
    print("| threads | batch | ms a step | µs an image | s an epoch |\n|---|---|---|---|---|")
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        for batch_size in map(int, args.batch_sizes.split(",")):
            seconds = step_seconds(train, batch_size, args.steps)
            per_image = seconds / batch_size
            print(
                f"| {threads} | {batch_size} | {1e3 * seconds:.2f} | {1e6 * per_image:.1f} | {per_image * len(train):.2f} |"
            )


if __name__ == "__main__":
    main()
