"""Why an answer: attribution maps over the 28x28 input, computed by Captum.

Every method explains the log-probability of a class (log-softmax of the logits), not its logit: "why a 7
and not the other nine", which is what a person asks and what deleting ink changes. The logit of a 7 can
rise while a 1's rises more; the log-probability falls then, as the answer's probability does. (For one
class the ranking of pixels is the probability's; the log keeps it exact where the probability rounds to 1
in float32.)

Occlusion blanks each small square of the input in turn (sets it to black, no ink) and measures how far
the class's log-probability falls, each pixel getting the mean fall of the squares that hold it; integrated gradients (Sundararajan et al., 2017) integrate its gradient along the
straight path from a black image to the digit; gradient x input is that gradient at the digit itself, times
the pixel. Each says, for each input pixel, how much it pushed the class up (positive) or down (negative).
Captum is imported here only, so no other command pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

# Method names as the CLI and the API take them, and how a person reads them.
METHODS = {"occlusion": "occlusion", "ig": "integrated gradients", "gradient": "gradient × input"}
# The most faithful in bench/predict/explain_faithfulness.py, and fast enough for one command; the page
# asks for gradient x input, next in faithfulness and hundreds of times faster (docs/performance.md).
DEFAULT_METHOD = "occlusion"
IG_STEPS = 16  # points on the path; 32 changed the bench's figures by less than their noise
OCCLUSION_WINDOW = 2  # the blanked square's side, in pixels: 2 and 3 scored alike, above 1; 2 is finer
OCCLUSION_BATCH = 256  # blanked copies of each image per forward pass: a few tens of MB


def attribute(model: nn.Module, inputs: torch.Tensor, targets: list[int], method: str) -> np.ndarray:
    """Attribution of each class in `targets` (one per row of `inputs`, float (N, 1, 28, 28) in [0, 1]),
    as float32 (N, 28, 28): positive where a pixel pushed the class's log-probability up."""
    import torch

    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}")
    was_training = model.training
    if was_training:  # (switching modes walks every module: a tenth of a page update's attribution)
        model.eval()

    def log_probabilities(batch: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(batch), dim=1)

    try:
        with torch.enable_grad():
            maps = ATTRIBUTIONS[method](log_probabilities, inputs, targets)
    finally:
        if was_training:
            model.train()
    return maps.detach()[:, 0].cpu().numpy().astype(np.float32)


def _integrated_gradients(forward: Callable, inputs: torch.Tensor, targets: list[int]) -> torch.Tensor:
    integrated_gradients = captum_class("integrated_gradients", "IntegratedGradients")
    return integrated_gradients(forward).attribute(
        inputs, baselines=inputs * 0, target=targets, n_steps=IG_STEPS, internal_batch_size=IG_STEPS * 64
    )


def _gradient_x_input(forward: Callable, inputs: torch.Tensor, targets: list[int]) -> torch.Tensor:
    input_x_gradient = captum_class("input_x_gradient", "InputXGradient")
    return input_x_gradient(forward).attribute(inputs.clone().requires_grad_(), target=targets)


def _occlusion(forward: Callable, inputs: torch.Tensor, targets: list[int]) -> torch.Tensor:
    import torch

    occlusion = captum_class("occlusion", "Occlusion")
    with torch.no_grad():
        return occlusion(forward).attribute(
            inputs,
            sliding_window_shapes=(1, OCCLUSION_WINDOW, OCCLUSION_WINDOW),
            baselines=0.0,
            target=targets,
            perturbations_per_eval=OCCLUSION_BATCH,
        )


ATTRIBUTIONS = {"occlusion": _occlusion, "ig": _integrated_gradients, "gradient": _gradient_x_input}


def captum_class(module: str, name: str) -> type:
    """`captum.attr.<name>`, imported without running the `__init__` of `captum` and `captum.attr`: they
    import all of Captum and matplotlib.pyplot, most of a second of `lenet explain`'s start on 2 cores
    (docs/performance.md). The packages stand in sys.modules, bare, only while the one module is imported;
    a later `import captum.attr` runs them in full and finds this same class (tests/test_explain.py)."""
    import importlib
    import importlib.util
    import sys

    bare = []
    for package in ("captum", "captum.attr"):
        if package not in sys.modules:
            spec = importlib.util.find_spec(package)
            sys.modules[package] = importlib.util.module_from_spec(spec)
            bare.append(package)
    try:
        return getattr(importlib.import_module(f"captum.attr._core.{module}"), name)
    finally:
        for package in bare:
            del sys.modules[package]
