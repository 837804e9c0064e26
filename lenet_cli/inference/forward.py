"""The forward pass every job shares: logits for uint8 images, in batches, on the model's device."""

from __future__ import annotations

import torch
from torch import nn

from lenet_cli.core.config import EVAL_BATCH_SIZE
from lenet_cli.data.datasets import as_input


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights live (the CPU for a model without torch weights, e.g. an ONNX file)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predict_logits(
    model: nn.Module, images_u8: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE
) -> torch.Tensor:
    """Logits for uint8 images (N, 28, 28), computed on the model's device, returned there."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images_u8), batch_size):
            batch = images_u8[start : start + batch_size].to(device, non_blocking=True)
            outputs.append(model(as_input(batch)))
    model.train(was_training)
    if not outputs:
        return torch.empty(0, 10, device=device)
    return torch.cat(outputs)
