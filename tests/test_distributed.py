"""`lenet train` under torchrun: two Gloo processes on the CPU, as CI can run them."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import digits_in_class_folders, runner

from lenet_cli.cli.commands import app
from lenet_cli.core.distributed import Cluster
from lenet_cli.training.loop import epoch_batches


def test_ranks_take_disjoint_shares_of_every_global_batch():
    batch = torch.randperm(64)
    shares = [Cluster(rank, 2).shard(batch) for rank in range(2)]
    assert len(shares[0]) == len(shares[1]) == 32
    assert sorted(torch.cat(shares).tolist()) == sorted(batch.tolist())
    assert torch.equal(Cluster().shard(batch), batch)  # a single process takes it all
    assert [len(b) for b in epoch_batches(torch.arange(129), 64, world_size=2)] == [
        64,
        64,
    ]  # tail of 1 dropped
    assert [len(b) for b in epoch_batches(torch.arange(129), 64, world_size=1)] == [64, 64, 1]


def own_images_folder(tiny_mnist, folder):
    """40 test digits as PNGs in class folders: `--images` under torchrun too."""
    from lenet_cli.data.datasets import load_split

    test = load_split("mnist", tiny_mnist, "test")
    return digits_in_class_folders(folder, test.images[:40], test.labels[:40])


@pytest.mark.slow  # a subprocess of its own; `pytest -m "not slow"` skips it
def test_torchrun_two_processes(tiny_mnist, tmp_path):
    """One launch (they are slow) checks DDP, and --images under it: 16 of every 64 images are the
    user's, each rank taking half of both parts."""
    mine = own_images_folder(tiny_mnist, tmp_path / "mine")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command = torchrun + [
        "-m",
        "lenet_cli",
        "train",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--data-dir",
        str(tiny_mnist),
        "--images",
        str(mine),
        "--checkpoint-dir",
        str(tmp_path),
        "--json",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # one document: rank 1 printed nothing
    assert document["world_size"] == 2
    assert result.stderr.count("Run folder:") == 1
    assert result.stderr.count("Your images: 40 from") == 1

    losses = [record["train_loss"] for record in document["history"]]
    assert losses[-1] < losses[0] / 2

    per_rank = document["history"][-1]["data_per_rank"]
    assert [share["images"] for share in per_rank] == [300, 300]
    # Disjoint and complete: the index sums of the two ranks add up to that of all 600 images once.
    assert sum(share["index_sum"] for share in per_rank) == sum(range(600))

    checkpoint = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in checkpoint["model"])
    assert checkpoint["world_size"] == 2
    assert checkpoint["images"]["count"] == 40
    # Test metrics reduced across ranks equal one process's on the same weights.
    single = runner.invoke(app, ["evaluate", str(tmp_path / "run-1" / "last.pt"), "--json"])
    assert single.exit_code == 0, single.output
    evaluated = json.loads(single.stdout)
    assert evaluated["accuracy"] == document["test_accuracy"]
    assert abs(evaluated["loss"] - document["test_loss"]) < 1e-6
    # And the run resumes in a single process (the batch size is global, so positions carry over).
    resumed = runner.invoke(
        app, ["train", "--resume", str(tmp_path / "run-1" / "last.pt"), "--epochs", "4", "--json"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["epochs"] == 4
