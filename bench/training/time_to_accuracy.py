"""Time to a good model: `lenet train --time` against the tutorial's recipe, in the same run.

For each seed:
- `lenet train --time B` for every budget B (default 5s, 10s, 30s), run as the whole command a user types:
  its test accuracy, its training seconds (fit's own clock: data, steps, validation, test) and the wall
  seconds of the whole process (Python and torch start-up, pictures, files);
- the tutorial's pipeline (bench/tutorial.py: DataLoader, per-sample transforms, constant Adam 1e-3,
  batch 64), tested after every epoch: the training seconds (evaluation not counted) until it first
  reaches the target.

lenet's time to the target is the smallest budget that reaches it (so list budgets finely to measure it
finely). The issue's goal: `--time 10s` reaches 99.0% for seeds 0, 1, 2 in at most 15 s of wall.

    python bench/training/time_to_accuracy.py --data-dir ../shared/data/mnist
    python bench/training/time_to_accuracy.py --seeds 0 --budgets 10 --skip-tutorial

Run it on a quiet machine (the figures are seconds); torch uses its default threads in both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))  # bench/tutorial.py


def lenet_budget_run(data_dir: str, seed: int, budget: float) -> dict[str, float]:
    """`lenet train --time <budget>s --seed <seed> --json` as a process: accuracy, training and wall seconds."""
    with tempfile.TemporaryDirectory(prefix="lenet-budget-") as checkpoints:
        command = [sys.executable, "-m", "lenet_cli", "train", "--time", f"{budget:g}s", "--seed", str(seed)]
        command += ["--data-dir", data_dir, "--checkpoint-dir", checkpoints, "--json"]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"lenet train failed:\n{finished.stderr}")
    result = json.loads(finished.stdout)
    return {
        "accuracy": 100 * result["test_accuracy"],
        "seconds": result["seconds"],
        "wall": wall,
        "steps": result["steps"],
        "epochs": len(result["history"]),
        "ended": result["ended"],
    }


def tutorial_time_to(data_dir: str, seed: int, target: float, max_epochs: int) -> dict[str, float | None]:
    """The tutorial's recipe, tested after each epoch: training seconds until the test accuracy reaches
    `target` (None if it does not within max_epochs), and the accuracy each epoch."""
    import torch
    import tutorial

    train_ds, test_ds = tutorial.datasets(tutorial.torchvision_root(data_dir))
    torch.manual_seed(seed)
    model = tutorial.LeNet5()
    loader = torch.utils.data.DataLoader(train_ds, batch_size=64, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    trained, accuracies = 0.0, []
    for _ in range(max_epochs):
        started = time.perf_counter()
        tutorial.train_epoch(model, loader, loss_fn, optimizer)
        trained += time.perf_counter() - started
        accuracies.append(tutorial.test_accuracy(model, test_ds))
        if accuracies[-1] >= target:
            return {"seconds": trained, "epochs": len(accuracies), "accuracy": accuracies[-1]}
    return {"seconds": None, "epochs": len(accuracies), "accuracy": accuracies[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    parser.add_argument("--budgets", default="5,10,30", help="seconds, comma-separated")
    parser.add_argument("--target", type=float, default=99.0, help="test accuracy, percent")
    parser.add_argument("--max-tutorial-epochs", type=int, default=10)
    parser.add_argument("--skip-tutorial", action="store_true")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    budgets = [float(budget) for budget in args.budgets.split(",")]
    data_dir = str(Path(args.data_dir).resolve())

    runs: dict[int, dict] = {}
    for seed in seeds:
        runs[seed] = {"budgets": {}}
        for budget in budgets:
            runs[seed]["budgets"][budget] = figures = lenet_budget_run(data_dir, seed, budget)
            print(f"seed {seed} --time {budget:g}s: {figures}", file=sys.stderr, flush=True)
        if not args.skip_tutorial:
            runs[seed]["tutorial"] = tutorial_time_to(data_dir, seed, args.target, args.max_tutorial_epochs)
            print(f"seed {seed} tutorial: {runs[seed]['tutorial']}", file=sys.stderr, flush=True)

    print_tables(runs, budgets, args.target)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


def print_tables(runs: dict[int, dict], budgets: list[float], target: float) -> None:
    print("\nlenet train --time B: test accuracy, training seconds, whole command (wall seconds)\n")
    print("| seed | " + " | ".join(f"--time {budget:g}s" for budget in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for seed, run in runs.items():
        cells = [
            f"{figures['accuracy']:.2f}% · {figures['seconds']:.1f}s · {figures['wall']:.1f}s wall"
            for figures in run["budgets"].values()
        ]
        print(f"| {seed} | " + " | ".join(cells) + " |")
    print(
        f"\nTime to {target:.1f}% test accuracy (training seconds; lenet: the smallest budget reaching it)\n"
    )
    print(
        "| seed | lenet (default recipe, --time) | lenet whole command | tutorial (Adam 1e-3, batch 64) | ratio |"
    )
    print("|---|---|---|---|---|")
    for seed, run in runs.items():
        reached = [
            (budget, figures) for budget, figures in run["budgets"].items() if figures["accuracy"] >= target
        ]
        lenet = reached[0][1] if reached else None
        tutorial = run.get("tutorial")
        tutorial_s = tutorial and tutorial["seconds"]
        cells = [
            f"{lenet['seconds']:.1f}s (--time {reached[0][0]:g}s)" if lenet else "not reached",
            f"{lenet['wall']:.1f}s" if lenet else "—",
            f"{tutorial_s:.1f}s ({tutorial['epochs']} epochs)"
            if tutorial_s
            else ("not reached" if tutorial else "—"),
            f"{tutorial_s / lenet['seconds']:.1f}×" if lenet and tutorial_s else "—",
        ]
        print(f"| {seed} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
