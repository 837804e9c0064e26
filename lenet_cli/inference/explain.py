"""Inside LeNet-5: every layer's values for an image, its scores, and why it answered as it did.

The values are the model's own forward pass: caught by hooks on the torch model's layers, or computed by
the numpy model (the one `lenet predict` runs; occlusion needs nothing more). Each convolution's and
fully connected layer's output after its ReLU (the tutorial's order: conv, ReLU, pool), each pool's
output as the next layer receives it, and FC3's logits as they are. Layer names and shapes are
`lenet summary`'s (inference/summary.py), less Flatten, which is Pool2's values in a row.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from lenet_cli.core.config import EXPORT_FORMATS
from lenet_cli.core.errors import ImageError, LenetError
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.images.many_files import read_digits
from lenet_cli.inference.attribution import DEFAULT_METHOD, METHODS, attribute
from lenet_cli.inference.numpy_forward import NumpyLeNet5
from lenet_cli.inference.numpy_forward import as_input as as_numpy_input
from lenet_cli.inference.occlusion import occlusion
from lenet_cli.inference.predict import expand_inputs, read_sources

if TYPE_CHECKING:
    import torch

    from lenet_cli.core.model import LeNet5

    Explainable: TypeAlias = LeNet5 | NumpyLeNet5  # the torch model, or the numpy one for occlusion alone

LAYER_NAMES = ("Input", "Conv1", "Pool1", "Conv2", "Pool2", "FC1", "FC2", "FC3")
MAPS = ("Input", "Conv1", "Pool1", "Conv2", "Pool2")  # layers of 2-D maps; the rest are vectors
CHUNK = 64  # images explained together
DECIMALS = 6  # in JSON: far below the 1e-5 that predict's logits are compared within, and half the size


@dataclass
class Explanation:
    """One image: what each layer holds, the scores, and the attribution maps of some classes."""

    path: str
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float32 values, per image
    attributions: dict[int, np.ndarray] = field(default_factory=dict)  # class -> float32 (28, 28)
    method: str = DEFAULT_METHOD
    error: str | None = None
    seen: np.ndarray | None = None  # the 28x28 uint8 image the network was given

    @property
    def logits(self) -> np.ndarray:
        return self.layers["FC3"]

    @property
    def probabilities(self) -> np.ndarray:
        shifted = np.exp(self.logits.astype(np.float64) - self.logits.max())
        return shifted / shifted.sum()

    @property
    def ranking(self) -> list[int]:
        """Classes, most probable first."""
        return [int(label) for label in np.argsort(-self.logits, kind="stable")]

    def to_dict(self, brief: bool = False) -> dict[str, Any]:
        """What `lenet explain --json` prints for the image (and POST /explain answers)."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        answer, runner_up = self.ranking[:2]
        probabilities = self.probabilities
        return {
            "path": self.path,
            "label": answer,
            "confidence": float(probabilities[answer]),
            "runner_up": {"label": runner_up, "probability": float(probabilities[runner_up])},
            "probabilities": [float(p) for p in probabilities],
            "logits": [float(value) for value in self.logits],
            "layers": [layer_dict(name, values, brief) for name, values in self.layers.items()],
            "attribution": {
                "method": self.method,
                "classes": {str(label): rounded(values) for label, values in self.attributions.items()},
            },
        }


def layer_dict(name: str, values: np.ndarray, brief: bool) -> dict[str, Any]:
    """A layer's name, shape and values, or with `brief` a summary of each map (of the whole vector)."""
    document: dict[str, Any] = {"name": name, "shape": list(values.shape)}
    if not brief:
        document["values"] = rounded(values)
    elif name in MAPS:
        document["maps"] = [summary(channel) for channel in values]
    else:
        document["summary"] = summary(values)
    return document


def summary(values: np.ndarray) -> dict[str, float]:
    return {
        "min": round(float(values.min()), DECIMALS),
        "max": round(float(values.max()), DECIMALS),
        "mean": round(float(values.mean()), DECIMALS),
        "active": round(float((values > 0).mean()), DECIMALS),  # the share of values above zero
    }


def rounded(values: np.ndarray) -> Any:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


def load_explain_model(path: str | os.PathLike, torch_free: bool = False) -> tuple[Explainable, ModelInfo]:
    """The LeNet-5 in a checkpoint; an exported file has no layers to look into and is refused. With
    `torch_free`, the numpy model where the file can be read without torch (occlusion needs nothing else)."""
    if Path(path).suffix.lower() in EXPORT_FORMATS.values():
        raise LenetError(
            f"explain needs a .pt checkpoint; {Path(path).name} is an exported model, "
            "which keeps no layers to look into"
        )
    if torch_free:
        from lenet_cli.formats.model_file import open_model
        from lenet_cli.inference.fast_predict import load_array_model

        loaded = load_array_model(open_model(path))
        if loaded is not None and isinstance(loaded[0], NumpyLeNet5):
            return loaded
    from lenet_cli.formats.checkpoint import load_model

    model, checkpoint = load_model(path, "cpu")
    return model.eval(), ModelInfo.of_checkpoint(path, checkpoint)


def layer_values(model: LeNet5, inputs: torch.Tensor) -> list[dict[str, np.ndarray]]:
    """Each image's layers (LAYER_NAMES), from one forward pass of `inputs` (N, 1, 28, 28)."""
    import torch
    import torch.nn.functional as F

    caught: dict[str, torch.Tensor] = {}
    backbone, head = model.backbone, model.head

    def catch(output_name: str | None, input_name: str | None, after_relu: bool = True) -> Any:
        def hook(_module: Any, module_inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if input_name is not None:  # what this layer receives is the layer before's output
                caught[input_name] = module_inputs[0]
            if output_name is not None:
                caught[output_name] = F.relu(output) if after_relu else output

        return hook

    hooks = [
        backbone.conv1.register_forward_hook(catch("Conv1", None)),
        backbone.conv2.register_forward_hook(catch("Conv2", "Pool1")),
        head.fc1.register_forward_hook(catch("FC1", "Pool2")),
        head.fc3.register_forward_hook(catch("FC3", "FC2", after_relu=False)),
    ]
    try:
        with torch.inference_mode():
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    caught["Input"] = inputs
    caught["Pool2"] = caught["Pool2"].reshape(-1, 16, 5, 5)  # FC1 receives it flattened
    batch = {name: caught[name].float().cpu().numpy() for name in LAYER_NAMES}
    return [{name: batch[name][index] for name in LAYER_NAMES} for index in range(len(inputs))]


def explain_digits(
    model: Explainable, digits_u8: np.ndarray, method: str = DEFAULT_METHOD, also: tuple[int, ...] = ()
) -> list[Explanation]:
    """An Explanation of each uint8 (28, 28) digit: its layers, and the attribution of its answer, its
    runner-up and the classes in `also` (the page asks for the class a person clicks). The numpy model
    explains by occlusion only; the others need torch's gradients."""
    if method not in METHODS:
        raise LenetError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(model, NumpyLeNet5):
        if method != "occlusion":
            raise ValueError(f"{METHODS[method]} needs the torch model")
        inputs = as_numpy_input(np.ascontiguousarray(digits_u8))
        all_layers = [model.inside(inputs[index : index + 1]) for index in range(len(inputs))]
        layers = [{name: values[0] for name, values in image.items()} for image in all_layers]
    else:
        import torch

        from lenet_cli.data.datasets import as_input

        inputs = as_input(torch.from_numpy(np.ascontiguousarray(digits_u8)))
        layers = layer_values(model, inputs)
    explanations = [
        Explanation(path="", layers=values, method=method, seen=digit)
        for values, digit in zip(layers, digits_u8, strict=True)
    ]
    wanted = [list(dict.fromkeys([*e.ranking[:2], *also])) for e in explanations]
    rows = [index for index, targets in enumerate(wanted) for _ in targets]
    if rows:
        targets = [label for labels in wanted for label in labels]
        maps = iter(attribution_maps(model, inputs[rows], targets, method))
        for explanation, labels in zip(explanations, wanted, strict=True):
            explanation.attributions = {label: next(maps) for label in labels}
    return explanations


def attribution_maps(model: Explainable, inputs: Any, targets: list[int], method: str) -> np.ndarray:
    """Captum's attribution on the torch model; occlusion computed by numpy on the numpy one."""
    if isinstance(model, NumpyLeNet5):
        return occlusion(model, inputs, targets)
    return attribute(model, inputs, targets, method)


def explain_files(
    model: Explainable,
    inputs: list[str | os.PathLike],
    method: str = DEFAULT_METHOD,
    invert: str = "auto",
    show_progress: bool = False,
) -> list[Explanation]:
    """`explain_digits` for image files (and `-`), as `lenet predict` reads them: an unreadable or blank
    image gets `error` and the rest go on."""
    paths = expand_inputs(inputs)
    if not paths:
        raise LenetError("no images found in the given folders")
    digits = read_digits(read_sources(paths), invert=invert, show_progress=show_progress)
    readable = [digit for digit in digits if not isinstance(digit, ImageError)]
    explained = iter(_in_chunks(model, readable, method, show_progress))
    results = []
    for path, digit in zip(paths, digits, strict=True):
        if isinstance(digit, ImageError):
            results.append(Explanation(path=str(path), method=method, error=str(digit)))
        else:
            explanation = next(explained)
            explanation.path = str(path)
            results.append(explanation)
    return results


def _in_chunks(
    model: Explainable, digits: list[np.ndarray], method: str, show_progress: bool
) -> list[Explanation]:
    """`explain_digits` a chunk at a time (attribution holds many copies of each input), with a tqdm bar on
    a terminal's stderr when there is more than one chunk."""
    starts = range(0, len(digits), CHUNK)
    if show_progress and len(starts) > 1:
        from tqdm import tqdm

        starts = tqdm(starts, desc="Explaining", unit="chunk", file=sys.stderr, disable=None, leave=False)
    return [
        e for start in starts for e in explain_digits(model, np.stack(digits[start : start + CHUNK]), method)
    ]


def kernels(model: LeNet5) -> dict[str, np.ndarray]:
    """The convolution kernels: Conv1 (6, 1, 5, 5) and Conv2 (16, 6, 5, 5)."""
    return {
        "Conv1": model.backbone.conv1.weight.detach().cpu().numpy(),
        "Conv2": model.backbone.conv2.weight.detach().cpu().numpy(),
    }
