"""The layer table the tutorial draws, computed from the model's own layers.

Shapes come from a real forward pass (hooks), formulas from each layer's kernel/stride/padding,
so the table cannot drift from the code. `lenet summary` of a checkpoint shows the same table without
importing torch: `layer_table()` builds it from LAYERS, and a test checks it equals `summarize()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lenet_cli.core.model import LeNet5

BYTES_PER_FLOAT = 4
# LeNet-5's layers as lenet_cli/model.py builds them: (in, out, kernel, padding) for each convolution
# (stride 1, then a 2x2 max-pool), (in, out) for each fully connected layer.
CONVOLUTIONS = ((1, 6, 5, 2), (6, 16, 5, 0))
LINEARS = ((400, 120), (120, 84), (84, 10))


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


def layer_table() -> ModelSummary:
    """`summarize()`'s table from LAYERS' numbers alone, without torch."""
    rows = [LayerRow("Input", (1, 28, 28), "", 0, 0)]
    size = 28
    for index, (channels_in, channels_out, kernel, pad) in enumerate(CONVOLUTIONS, start=1):
        out_size = size + 2 * pad - kernel + 1
        out_shape = (channels_out, out_size, out_size)
        params = channels_out * channels_in * kernel * kernel + channels_out
        formula = f"({size} + 2·{pad} − {kernel}) / 1 + 1 = {out_size}"
        rows.append(
            LayerRow(f"Conv{index}", out_shape, formula, params, _numel(out_shape) * channels_in * kernel**2)
        )
        size = out_size // 2
        rows.append(LayerRow(f"Pool{index}", (channels_out, size, size), f"{out_size} / 2 = {size}", 0, 0))
    channels = rows[-1].output_shape
    flat = _numel(channels)
    rows.append(LayerRow("Flatten", (flat,), "·".join(map(str, channels)) + f" = {flat}", 0, 0))
    for index, (features_in, features_out) in enumerate(LINEARS, start=1):
        params = features_in * features_out + features_out
        rows.append(
            LayerRow(
                f"FC{index}",
                (features_out,),
                f"{features_in} → {features_out}",
                params,
                features_in * features_out,
            )
        )
    return ModelSummary(rows)


def summarize(model: LeNet5 | None = None) -> ModelSummary:
    import torch
    from torch import nn

    from lenet_cli.core.model import LeNet5

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
