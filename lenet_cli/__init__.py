"""lenet: train, evaluate, inspect and run LeNet-5 on MNIST-family digits.

What a program may use is named here and imported on first use, so `import lenet_cli` stays fast (no torch
until a name that needs it is touched):

    from lenet_cli import TrainConfig, fit, load_any_model, predict_files
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lenet_cli.core.version import __version__

# name -> the module that owns it
_PUBLIC = {
    "LenetError": "lenet_cli.core.errors",
    "TrainConfig": "lenet_cli.core.config",
    "LeNet5": "lenet_cli.core.model",
    "fit": "lenet_cli.training.fit",
    "Reporter": "lenet_cli.training.reporters",
    "resume_config": "lenet_cli.formats.checkpoint",
    "load_any_model": "lenet_cli.formats.model_files",
    "default_model": "lenet_cli.formats.shipped",
    "load_digit": "lenet_cli.images.preprocess",
    "predict_files": "lenet_cli.inference.predict",
    "read_files": "lenet_cli.inference.number_files",
    "evaluate_numbers": "lenet_cli.inference.number_metrics",
    "evaluate": "lenet_cli.inference.evaluate",
    "load_split": "lenet_cli.data.datasets",
    "export_checkpoint": "lenet_cli.inference.export",
    "create_app": "lenet_cli.serving.app",
    "ServeOptions": "lenet_cli.serving.options",
    "PreprocessingPool": "lenet_cli.serving.workers",
}
__all__ = [
    "__version__",
    "LenetError",
    "TrainConfig",
    "LeNet5",
    "fit",
    "Reporter",
    "resume_config",
    "load_any_model",
    "default_model",
    "load_digit",
    "predict_files",
    "read_files",
    "evaluate_numbers",
    "evaluate",
    "load_split",
    "export_checkpoint",
    "create_app",
    "ServeOptions",
    "PreprocessingPool",
]

if TYPE_CHECKING:
    from lenet_cli.core.config import TrainConfig
    from lenet_cli.core.errors import LenetError
    from lenet_cli.core.model import LeNet5
    from lenet_cli.data.datasets import load_split
    from lenet_cli.formats.checkpoint import resume_config
    from lenet_cli.formats.model_files import load_any_model
    from lenet_cli.formats.shipped import default_model
    from lenet_cli.images.preprocess import load_digit
    from lenet_cli.inference.evaluate import evaluate
    from lenet_cli.inference.export import export_checkpoint
    from lenet_cli.inference.number_files import read_files
    from lenet_cli.inference.number_metrics import evaluate_numbers
    from lenet_cli.inference.predict import predict_files
    from lenet_cli.serving.app import create_app
    from lenet_cli.serving.options import ServeOptions
    from lenet_cli.serving.workers import PreprocessingPool
    from lenet_cli.training.fit import fit
    from lenet_cli.training.reporters import Reporter


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'lenet_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
