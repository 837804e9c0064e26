"""Weights move both ways between lenet and the tutorial's own class, with the same accuracy.

    python bench/training/tutorial_compat.py --data-dir ../shared/data/mnist CKPT [CKPT ...]

For each lenet checkpoint: load its weights into the tutorial's LeNet5 with strict=True and run the
tutorial's evaluation loop. Then train the tutorial's model one epoch its own way, save its bare
state_dict, and check `lenet evaluate` reports what the tutorial's loop does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
import tutorial  # noqa: E402


def lenet_evaluate(checkpoint: Path, data_dir: str) -> float:
    output = subprocess.run(
        ["lenet", "evaluate", str(checkpoint), "--data-dir", data_dir, "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)["accuracy"] * 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    root = tutorial.torchvision_root(args.data_dir)
    train_ds, test_ds = tutorial.datasets(root)

    for checkpoint in args.checkpoints:
        model = tutorial.LeNet5()
        model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"], strict=True)
        theirs = tutorial.test_accuracy(model, test_ds)
        ours = lenet_evaluate(checkpoint, args.data_dir)
        print(f"{checkpoint}: tutorial loop {theirs:.2f}%  lenet evaluate {ours:.2f}%  same={theirs == ours}")

    torch.manual_seed(0)
    model = tutorial.LeNet5()
    loader = torch.utils.data.DataLoader(train_ds, batch_size=64, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    tutorial.train_epoch(model, loader, torch.nn.CrossEntropyLoss(), optimizer)
    saved = Path(tempfile.mkdtemp()) / "tutorial.pt"
    torch.save(model.state_dict(), saved)
    theirs = tutorial.test_accuracy(model, test_ds)
    ours = lenet_evaluate(saved, args.data_dir)
    print(
        f"tutorial-trained state_dict: tutorial loop {theirs:.2f}%  lenet evaluate {ours:.2f}%  same={theirs == ours}"
    )


if __name__ == "__main__":
    main()
