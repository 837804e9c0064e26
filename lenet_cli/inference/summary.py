"""The layer table the tutorial draws, computed from the model's own layers.

Shapes come from a real forward pass (hooks), formulas from each layer's kernel/stride/padding,
so the table cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from lenet_cli.core.model import LeNet5

BYTES_PER_FLOAT = 4


@dataclass
class LayerRow:
    layer: str
    output_shape: tuple[int, ...]  # per image, without the batch dimension
    formula: str
    params: int
    mult_adds: int


@dataclass
class ModelSummary:
    rows: list[LayerRow]

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def total_mult_adds(self) -> int:
        return sum(row.mult_adds for row in self.rows)

    @property
    def param_bytes(self) -> int:
        return self.total_params * BYTES_PER_FLOAT

    @property
    def activation_bytes(self) -> int:
        """Forward activations of one image (each layer's output once, the input included)."""
        return sum(_numel(row.output_shape) for row in self.rows) * BYTES_PER_FLOAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": [{**asdict(row), "output_shape": list(row.output_shape)} for row in self.rows],
            "total_params": self.total_params,
            "trainable_params": self.total_params,
            "mult_adds": self.total_mult_adds,
            "param_bytes": self.param_bytes,
            "activation_bytes_per_image": self.activation_bytes,
        }


def summarize(model: LeNet5 | None = None) -> ModelSummary:
    model = model or LeNet5()
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, out.shape[1:]))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()

    backbone, head = model.backbone, model.head
    rows = [LayerRow("Input", (1, 28, 28), "", 0, 0)]
    size = 28
    for index, conv in enumerate((backbone.conv1, backbone.conv2), start=1):
        out_shape = tuple(shapes[f"backbone.conv{index}"])
        kernel, pad, stride = conv.kernel_size[0], conv.padding[0], conv.stride[0]
        out_size = out_shape[1]
        formula = f"({size} + 2·{pad} − {kernel}) / {stride} + 1 = {out_size}"
        macs = _numel(out_shape) * conv.in_channels * kernel * kernel
        rows.append(LayerRow(f"Conv{index}", out_shape, formula, _params(conv), macs))
        pooled = out_size // 2
        rows.append(
            LayerRow(f"Pool{index}", (out_shape[0], pooled, pooled), f"{out_size} / 2 = {pooled}", 0, 0)
        )
        size = pooled
    channels = rows[-1].output_shape
    rows.append(
        LayerRow(
            "Flatten", (_numel(channels),), "·".join(map(str, channels)) + f" = {_numel(channels)}", 0, 0
        )
    )
    for index, linear in enumerate((head.fc1, head.fc2, head.fc3), start=1):
        formula = f"{linear.in_features} → {linear.out_features}"
        macs = linear.in_features * linear.out_features
        rows.append(LayerRow(f"FC{index}", tuple(shapes[f"head.fc{index}"]), formula, _params(linear), macs))
    return ModelSummary(rows)


def _params(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for extent in shape:
        count *= extent
    return count
