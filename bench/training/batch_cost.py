"""The cost of a training image at each batch size, as a ratio to the first size, measured in one process
by alternating blocks of steps, so that a busy machine slows every size alike.

    python bench/training/batch_cost.py --threads 1 --batch-sizes 64,128,256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lenet_cli.core.model import LeNet5
from lenet_cli.data.datasets import as_input, load_split

BLOCK_IMAGES = 2560  # each block of steps trains on this many images, whatever the batch size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--batch-sizes", default="64,128,256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    train = load_split("mnist", args.data_dir, "train")
    torch.manual_seed(0)
    model = LeNet5().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, fused=True)
    order = torch.randperm(len(train))
    position = 0

    def train_on(images: int, batch_size: int) -> None:
        nonlocal position
        for _ in range(images // batch_size):
            if position + batch_size > len(train):
                position = 0
            indices = order[position : position + batch_size]
            position += batch_size
            loss = F.cross_entropy(model(as_input(train.images[indices])), train.labels[indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    train_on(2 * BLOCK_IMAGES, sizes[0])  # warm-up
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(args.rounds):
        for size in sizes:
            started = time.perf_counter()
            train_on(BLOCK_IMAGES, size)
            seconds[size].append(time.perf_counter() - started)
    base = statistics.median(seconds[sizes[0]])
    print(f"| batch | µs an image ({args.threads} threads) | against {sizes[0]} |\n|---|---|---|")
    for size in sizes:
        median = statistics.median(seconds[size])
        print(f"| {size} | {1e6 * median / BLOCK_IMAGES:.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
