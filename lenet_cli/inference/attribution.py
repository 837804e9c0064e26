"""Why an answer: attribution maps over the 28x28 input, computed by Captum.

Integrated gradients (Sundararajan et al., 2017) integrate the gradient of one class's score along the
straight path from a black image (no ink) to the digit; occlusion blanks a small square at each place and
measures how much the score falls. Both say, for each input pixel, how much it pushed the score of a class
up (positive) or down (negative). Captum is imported here only, so no other command pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

# Method names as the CLI and the API take them, and how a person reads them.
METHODS = {"ig": "integrated gradients", "occlusion": "occlusion"}
# The most faithful in bench/predict/explain_faithfulness.py, and fast enough for one command (50 ms an
# image); the page asks for integrated gradients, nearly as faithful at a thirtieth of the time.
DEFAULT_METHOD = "occlusion"
IG_STEPS = 16  # points on the path; more changes the maps little (docs/performance.md, Explain)
OCCLUSION_WINDOW = 2  # the blanked square's side, in input pixels (2 scored best of 1, 2, 3, 5)
OCCLUSION_STRIDE = 1


def attribute(model: nn.Module, inputs: torch.Tensor, targets: list[int], method: str) -> np.ndarray:
    """Attribution of each class in `targets` (one per row of `inputs`, float (N, 1, 28, 28) in [0, 1]),
    as float32 (N, 28, 28): positive where a pixel pushed the class's score up."""
    import torch

    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            maps = (
                _integrated_gradients(model, inputs, targets)
                if method == "ig"
                else _occlusion(model, inputs, targets)
            )
    finally:
        model.train(was_training)
    return maps.detach()[:, 0].cpu().numpy().astype(np.float32)


def _integrated_gradients(model: nn.Module, inputs: torch.Tensor, targets: list[int]) -> torch.Tensor:
    integrated_gradients = captum_class("integrated_gradients", "IntegratedGradients")
    return integrated_gradients(model).attribute(
        inputs, baselines=inputs * 0, target=targets, n_steps=IG_STEPS, internal_batch_size=IG_STEPS * 16
    )


def _occlusion(model: nn.Module, inputs: torch.Tensor, targets: list[int]) -> torch.Tensor:
    import torch

    occlusion = captum_class("occlusion", "Occlusion")
    with torch.no_grad():
        return occlusion(model).attribute(
            inputs,
            sliding_window_shapes=(1, OCCLUSION_WINDOW, OCCLUSION_WINDOW),
            strides=(1, OCCLUSION_STRIDE, OCCLUSION_STRIDE),
            baselines=0.0,
            target=targets,
            perturbations_per_eval=256,
        )


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
