"""What `lenet train --styles` costs: an epoch with the style pool mixed in against a plain epoch, and the
one-off making of the pool.

    python bench/training/styles_speed.py --data-dir ../shared/data/mnist [--rounds 2] [--threads 1] [--share 0.25]

In this one process it alternates a plain epoch with a --styles epoch (the default recipe, batch 64), so
both see the same machine noise; the pool is made once, before, and timed on its own.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.distributed import Cluster
from lenet_cli.training.inputs import load_training_data
from lenet_cli.training.loop import train_one_epoch
from lenet_cli.training.recipe import build_recipe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--share", type=float, default=0.25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    runs = {}
    for name, config in (
        ("plain", TrainConfig(data_dir=args.data_dir)),
        ("styles", TrainConfig(data_dir=args.data_dir, styles=True, style_share=args.share)),
    ):
        started = time.perf_counter()
        data = load_training_data(config, device, Cluster())
        print(
            f"{name}: data ready in {time.perf_counter() - started:.1f}s, {data.steps_per_epoch} steps an epoch"
        )
        runs[name] = (data, build_recipe(config, device, data.steps_per_epoch))
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for epoch in range(args.rounds):
        for name, (data, recipe) in runs.items():
            started = time.perf_counter()
            train_one_epoch(recipe.model, recipe.optimizer, recipe.scheduler, data.plan(epoch))
            seconds[name].append(time.perf_counter() - started)
    plain, styles = statistics.median(seconds["plain"]), statistics.median(seconds["styles"])
    print(
        f"epoch, median of {args.rounds}: plain {plain:.1f}s, --styles {styles:.1f}s ({styles / plain:.2f}x); "
        f"all: {seconds}"
    )


if __name__ == "__main__":
    main()
