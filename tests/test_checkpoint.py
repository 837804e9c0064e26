import os

import pytest
import torch
from helpers import write_code_running_checkpoint

from lenet_cli.core.errors import CheckpointError
from lenet_cli.core.model import LeNet5
from lenet_cli.formats.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from lenet_cli.formats.shipped import find_latest_checkpoint
from lenet_cli.training.run_folder import create_run_dir


def test_training_checkpoint_is_a_plain_weights_only_dict(trained_checkpoint):
    raw = torch.load(trained_checkpoint, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION
    assert set(raw) >= {"model", "optimizer", "epoch", "history", "config", "dataset", "metrics", "versions"}
    assert raw["epoch"] == 3 and len(raw["history"]) == 3
    assert raw["config"]["lr"] == 1.2e-2 and raw["dataset"] == "mnist"
    recipe = (raw["config"]["batch_size"], raw["config"]["label_smoothing"])
    assert recipe == (128, 0.1)  # saved resolved, so a resumed run keeps them
    assert 0.0 <= raw["metrics"]["test_accuracy"] <= 1.0
    model = LeNet5()
    model.load_state_dict(raw["model"], strict=True)


def test_round_trip_is_exact(tmp_path):
    model = LeNet5()
    path = save_checkpoint(tmp_path / "c.pt", {"format_version": 1, "model": model.state_dict(), "epoch": 2})
    loaded, checkpoint = load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert checkpoint["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind


def test_bare_state_dict_from_the_tutorial(tmp_path):
    model = LeNet5()
    torch.save(model.state_dict(), tmp_path / "x.pt")
    checkpoint = load_checkpoint(tmp_path / "x.pt")
    assert checkpoint["format_version"] is None
    assert torch.equal(checkpoint["model"]["head.fc3.bias"], model.head.fc3.bias.detach())


def test_ddp_prefix_is_stripped(tmp_path):
    state = {f"module.{key}": value for key, value in LeNet5().state_dict().items()}
    torch.save(state, tmp_path / "ddp.pt")
    assert "backbone.conv1.weight" in load_checkpoint(tmp_path / "ddp.pt")["model"]


def expect_error(path, message):
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == message


def test_missing_empty_folder_and_garbage(tmp_path):
    expect_error(tmp_path / "nope.pt", f"checkpoint {tmp_path / 'nope.pt'} does not exist")
    expect_error(tmp_path, f"{tmp_path} is a folder, not a checkpoint file")
    (tmp_path / "empty.pt").write_bytes(b"")
    expect_error(tmp_path / "empty.pt", f"checkpoint {tmp_path / 'empty.pt'} is empty")
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    expect_error(
        tmp_path / "random.pt",
        f"{tmp_path / 'random.pt'} is not a readable PyTorch checkpoint (corrupt or truncated?)",
    )


def test_truncated(tmp_path):
    path = save_checkpoint(tmp_path / "t.pt", {"format_version": 1, "model": LeNet5().state_dict()})
    path.write_bytes(path.read_bytes()[:20_000])
    expect_error(path, f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)")


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    write_code_running_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="refusing to load .*evil.pt: it holds Python objects"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_wrong_keys_and_shapes_are_named(tmp_path):
    state = LeNet5().state_dict()
    del state["head.fc3.bias"]
    state["head.fc4.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "keys.pt")
    expect_error(
        tmp_path / "keys.pt",
        f"{tmp_path / 'keys.pt'} is not a LeNet-5: missing head.fc3.bias; unexpected head.fc4.weight",
    )
    state = LeNet5().state_dict()
    state["head.fc3.weight"] = torch.zeros(5, 84)
    torch.save(state, tmp_path / "shape.pt")
    expect_error(
        tmp_path / "shape.pt",
        f"{tmp_path / 'shape.pt'} is not a LeNet-5: head.fc3.weight has shape (5, 84), expected (10, 84)",
    )
    torch.save({"weights": [1, 2, 3]}, tmp_path / "other.pt")
    expect_error(
        tmp_path / "other.pt",
        f"{tmp_path / 'other.pt'} is a PyTorch file but not a LeNet-5 checkpoint or state_dict",
    )


def test_newer_format_is_refused(tmp_path):
    path = save_checkpoint(
        tmp_path / "new.pt", {"format_version": FORMAT_VERSION + 1, "model": LeNet5().state_dict()}
    )
    with pytest.raises(CheckpointError, match=f"has checkpoint format {FORMAT_VERSION + 1}; this lenet"):
        load_checkpoint(path)


def test_run_dirs_never_reuse_an_existing_folder(tmp_path):
    first = create_run_dir(tmp_path / "ck")
    (tmp_path / "ck" / "run-7").mkdir()
    second = create_run_dir(tmp_path / "ck")
    assert (first.name, second.name) == ("run-1", "run-8")


def test_latest_checkpoint_is_the_newest_file(tmp_path):
    old = save_checkpoint(tmp_path / "run-1.pt", {"format_version": 1, "model": {}})
    (tmp_path / "run-2").mkdir()
    new = save_checkpoint(tmp_path / "run-2" / "last.pt", {"format_version": 1, "model": {}})
    os.utime(old, (1, 1))
    assert find_latest_checkpoint(tmp_path) == new
    with pytest.raises(CheckpointError, match="no checkpoint found in"):
        find_latest_checkpoint(tmp_path / "none")


def test_the_format_docstring_lists_exactly_the_keys_a_training_checkpoint_holds(trained_checkpoint):
    import re

    import lenet_cli.formats.checkpoint

    documented = re.findall(
        r"^- `(\w+)`(?:, `(\w+)`)?", lenet_cli.formats.checkpoint.__doc__, flags=re.MULTILINE
    )
    listed = [key for pair in documented for key in pair if key]
    written = list(torch.load(trained_checkpoint, weights_only=True))
    assert listed == written
