import os
from pathlib import Path

import pytest

os.environ["COLUMNS"] = "100"  # Rich lays tables out at a fixed width, so exact-output tests are stable
os.environ.pop("LENET_DEBUG", None)

from idx import write_idx_set


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A flat folder of gzipped IDX files: 600 training and 200 test images."""
    return write_idx_set(tmp_path_factory.mktemp("tiny-mnist"))


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, tiny_mnist) -> Path:
    """A real checkpoint from two epochs on the tiny set, shared by read-only tests."""
    from lenet_cli.core.config import TrainConfig
    from lenet_cli.training.fit import fit

    checkpoint_dir = tmp_path_factory.mktemp("checkpoints")
    result = fit(TrainConfig(epochs=3, data_dir=str(tiny_mnist), checkpoint_dir=str(checkpoint_dir)))
    return result.checkpoint
