"""The tutorial's whole job as one process (5 epochs, then test accuracy), for wall time and memory."""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
import tutorial  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--root", required=True, help="torchvision layout root (root/MNIST/raw)")
args = parser.parse_args()
train_ds, test_ds = tutorial.datasets(Path(args.root))
model = tutorial.LeNet5()
loader = torch.utils.data.DataLoader(train_ds, batch_size=64, shuffle=True)
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
for _ in range(5):
    tutorial.train_epoch(model, loader, torch.nn.CrossEntropyLoss(), optimizer)
print(f"Test Accuracy: {tutorial.test_accuracy(model, test_ds):.2f}%")
