"""Accuracy after a fixed number of training images, for one recipe and several seeds: how the default
recipe was chosen (docs/performance.md, "Time to a good model"). The figure does not depend on the
machine's speed or load, so recipes can be compared on a busy machine; the time is measured apart
(bench/training/batch_cost.py, bench/training/time_to_accuracy.py).

    python bench/training/recipe_sweep.py --batch 128 --lr 1.2e-2 --smooth 0.1 --images 120000
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from lenet_cli.core.model import LeNet5
from lenet_cli.data.datasets import Split, as_input, load_split


def train_and_test(train: Split, test: Split, args: argparse.Namespace, seed: int) -> float:
    """One-cycle Adam over `args.images` training images in seeded epochs; the test accuracy."""
    torch.manual_seed(seed)
    model = LeNet5().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=True)
    steps = args.images // args.batch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=steps, pct_start=args.warmup
    )
    generator = torch.Generator().manual_seed(seed)
    epochs = steps * args.batch // len(train) + 1
    order = torch.cat([torch.randperm(len(train), generator=generator) for _ in range(epochs)])
    model.train()
    for step in range(steps):
        indices = order[step * args.batch : (step + 1) * args.batch]
        logits = model(as_input(train.images[indices]))
        loss = F.cross_entropy(logits, train.labels[indices], label_smoothing=args.smooth)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(as_input(images)).argmax(1) for images in test.images.split(1000)])
    return (predicted == test.labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1.2e-2, help="one-cycle peak")
    parser.add_argument("--smooth", type=float, default=0.1, help="label smoothing")
    parser.add_argument("--warmup", type=float, default=0.3, help="share of the steps warming up")
    parser.add_argument("--images", type=int, default=120_000, help="training images seen in all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_split("mnist", args.data_dir, "train")
    test = load_split("mnist", args.data_dir, "test")
    accuracies = []
    for seed in map(int, args.seeds.split(",")):
        accuracies.append(train_and_test(train, test, args, seed))
        print(f"seed {seed}: {100 * accuracies[-1]:.2f}%", flush=True)
    print(
        f"batch {args.batch}, peak {args.lr:g}, smoothing {args.smooth:g}, warm-up {args.warmup:g}, "
        f"{args.images:,} images: mean {100 * sum(accuracies) / len(accuracies):.2f}%, "
        f"lowest {100 * min(accuracies):.2f}%"
    )


if __name__ == "__main__":
    main()
