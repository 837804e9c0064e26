"""The tutorial's own pipeline, written as the tutorial writes it, for comparisons in bench/.

Its classes and loops are kept as they are (per-sample v2 transforms, DataLoader, Adam 1e-3),
so benchmarks and compatibility checks measure lenet against the real thing.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as v2
from torchvision.datasets import MNIST


class Backbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, kernel_size=5)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2)
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        return x


class ClassificationHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(16 * 5 * 5, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = torch.flatten(x, start_dim=1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


class LeNet5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.head = ClassificationHead()

    def forward(self, x):
        x = self.backbone(x)
        x = self.head(x)
        return x


def torchvision_root(flat_dir: str | Path) -> Path:
    """A temporary torchvision layout (root/MNIST/raw) from a flat folder of gzipped IDX files."""
    root = Path(tempfile.mkdtemp(prefix="tutorial-mnist-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in Path(flat_dir).glob("*-ubyte.gz"):
        with gzip.open(source) as compressed, open(raw / source.name.removesuffix(".gz"), "wb") as plain:
            shutil.copyfileobj(compressed, plain)
    return root


def datasets(root: Path):
    preprocess = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    train_ds = MNIST(str(root), train=True, download=False, transform=preprocess)
    test_ds = MNIST(str(root), train=False, download=False, transform=preprocess)
    return train_ds, test_ds


def train_epoch(model, loader, loss_fn, optimizer):
    """The tutorial's trainer, one epoch: per-batch .item() for the running loss, as it does."""
    model.train()
    running = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        outputs = model(images)
        loss = loss_fn(outputs, labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
    return running / len(loader)


def test_accuracy(model, test_ds) -> float:
    """The tutorial's evaluation loop, verbatim apart from returning the number."""
    test_loader = torch.utils.data.DataLoader(test_ds, batch_size=512)
    device = next(model.parameters()).device
    correct = 0
    total = 0
    with torch.inference_mode():
        for images, labels in test_loader:
            images = images.to(device)
            labels = labels.to(device)
            outputs = model(images)
            _, predicted = torch.max(outputs, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return correct / total * 100
