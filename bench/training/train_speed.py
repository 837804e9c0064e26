"""Training and inference speed of lenet against the tutorial's pipeline, on the same data.

    python bench/training/train_speed.py --data-dir ../shared/data/mnist [--epochs 3] [--seeds 3] [--threads 2]

Part 1 alternates, in this one process, one epoch of the tutorial's pipeline (torchvision dataset with
per-sample v2 transforms, DataLoader, batch 64, Adam 1e-3) with one epoch of lenet's trainer on the
same recipe, so both see the same machine noise; start-up is outside the timed epochs.
Part 2 trains both for 5 epochs on each seed and compares test accuracy.
Part 3 runs whole processes: `lenet train --epochs 5` and the tutorial's script (wall time and peak
resident memory), evaluation throughput, `lenet predict` latency and `lenet --help` start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
import tutorial  # noqa: E402

from lenet_cli.core.config import TrainConfig  # noqa: E402
from lenet_cli.core.model import LeNet5  # noqa: E402
from lenet_cli.data.datasets import Split, load_split  # noqa: E402
from lenet_cli.inference.evaluate import evaluate  # noqa: E402
from lenet_cli.training.loop import EpochPlan, epoch_order, train_one_epoch  # noqa: E402
from lenet_cli.training.recipe import make_optimizer, make_scheduler  # noqa: E402

TUTORIAL_RECIPE = TrainConfig(schedule="constant", lr=1e-3, batch_size=64)


class TutorialRun:
    def __init__(self, train_ds, seed: int):
        torch.manual_seed(seed)
        self.model = tutorial.LeNet5()
        self.loader = torch.utils.data.DataLoader(train_ds, batch_size=64, shuffle=True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.001)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(self, epoch: int) -> None:
        tutorial.train_epoch(self.model, self.loader, self.loss_fn, self.optimizer)


class LenetRun:
    def __init__(self, train: Split, seed: int, config: TrainConfig = TUTORIAL_RECIPE):
        torch.manual_seed(seed)
        self.train, self.seed, self.config = train, seed, config
        self.model = LeNet5().to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, config, torch.device("cpu"))
        self.scheduler = make_scheduler(self.optimizer, config, -(-len(train) // config.batch_size))

    def epoch(self, epoch: int) -> None:
        order = epoch_order(len(self.train), self.seed, epoch)
        plan = EpochPlan(epoch, self.train, order, self.config.batch_size)
        train_one_epoch(self.model, self.optimizer, self.scheduler, plan)


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def run_process(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of a whole process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--epochs", type=int, default=3, help="alternating timed epochs of each")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the 5-epoch accuracy comparison")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed", "accuracy", "process"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")

    root = tutorial.torchvision_root(args.data_dir)
    train_ds, test_ds = tutorial.datasets(root)
    train, test = load_split("mnist", args.data_dir, "train"), load_split("mnist", args.data_dir, "test")
    images = len(train)

    if "speed" not in args.skip:
        theirs, ours = TutorialRun(train_ds, 0), LenetRun(train, 0)
        tutorial_times, lenet_times = [], []
        for epoch in range(args.epochs):
            tutorial_times.append(timed(theirs.epoch, epoch))
            lenet_times.append(timed(ours.epoch, epoch))
            print(f"  epoch {epoch + 1}: tutorial {tutorial_times[-1]:.2f}s  lenet {lenet_times[-1]:.2f}s")
        tutorial_s, lenet_s = statistics.median(tutorial_times), statistics.median(lenet_times)
        print(
            f"per epoch (median of {args.epochs}): tutorial {tutorial_s:.2f}s ({images / tutorial_s:,.0f} img/s), "
            f"lenet {lenet_s:.2f}s ({images / lenet_s:,.0f} img/s), speed-up {tutorial_s / lenet_s:.2f}x"
        )

    if "accuracy" not in args.skip:
        tutorial_accuracy, lenet_accuracy = [], []
        for seed in range(args.seeds):
            theirs, ours = TutorialRun(train_ds, seed), LenetRun(train, seed)
            for epoch in range(5):
                theirs.epoch(epoch)
                ours.epoch(epoch)
            tutorial_accuracy.append(tutorial.test_accuracy(theirs.model, test_ds))
            lenet_accuracy.append(evaluate(ours.model, test).accuracy * 100)
            print(
                f"  seed {seed}: tutorial {tutorial_accuracy[-1]:.2f}%  lenet (same recipe) {lenet_accuracy[-1]:.2f}%"
            )
        print(
            f"5-epoch test accuracy, mean of {args.seeds} seeds: tutorial {statistics.mean(tutorial_accuracy):.2f}%, "
            f"lenet {statistics.mean(lenet_accuracy):.2f}%"
        )

    model = LeNet5().to(memory_format=torch.channels_last)
    evaluate(model, test)
    eval_s = min(timed(evaluate, model, test) for _ in range(3))
    print(f"evaluation of {len(test):,} test images: {eval_s:.3f}s ({len(test) / eval_s:,.0f} img/s)")

    if "process" not in args.skip:
        scratch = Path(tempfile.mkdtemp(prefix="lenet-bench-"))
        env_threads = str(args.threads)
        os.environ["OMP_NUM_THREADS"] = env_threads
        lenet_wall, lenet_rss = run_process(
            ["lenet", "train", "--epochs", "5", "--data-dir", args.data_dir, "--checkpoint-dir", str(scratch)]
        )
        tutorial_wall, tutorial_rss = run_process(
            [sys.executable, str(Path(__file__).parent / "tutorial_run.py"), "--root", str(root)]
        )
        print(
            f"whole 5-epoch process: lenet train {lenet_wall:.1f}s, peak RSS {lenet_rss:,.0f} MB; "
            f"tutorial script {tutorial_wall:.1f}s, peak RSS {tutorial_rss:,.0f} MB"
        )
        checkpoint = scratch / "run-1" / "last.pt"
        digit = scratch / "digit.png"
        from PIL import Image

        Image.fromarray(test.images[0].numpy(), mode="L").save(digit)
        predict_s = statistics.median(
            run_process(["lenet", "predict", str(digit), "--checkpoint", str(checkpoint)])[0]
            for _ in range(3)
        )
        print(f"lenet predict, one image, whole process: {predict_s:.2f}s (median of 3)")
        help_s = statistics.median(run_process(["lenet", "--help"])[0] for _ in range(5))
        base_s = statistics.median(
            run_process([sys.executable, "-c", "import typer, rich"])[0] for _ in range(5)
        )
        print(
            f"lenet --help {help_s:.3f}s vs python -c 'import typer, rich' {base_s:.3f}s: {help_s / base_s:.2f}x"
        )


if __name__ == "__main__":
    main()
