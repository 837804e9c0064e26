"""LeNet-5 exactly as the tutorial defines it, so weights are interchangeable with its class.

Input: float32 in [0, 1], shape (N, 1, 28, 28), white digit on black. No normalisation inside.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Backbone(nn.Module):
    """Two conv + ReLU + 2x2 max-pool stages: (1, 28, 28) -> (16, 5, 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The tutorial applies ReLU, then pools. Pooling first gives bit-identical outputs and
        # gradients (ReLU is monotonic, so it commutes with max) and runs ReLU on a quarter of the
        # values. tests/test_model.py checks the equality.
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        return F.relu(F.max_pool2d(self.conv2(x), 2))


class ClassificationHead(nn.Module):
    """Flatten, then 400 -> 120 -> 84 -> 10 with ReLU between; returns logits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, start_dim=1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.head = ClassificationHead()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
