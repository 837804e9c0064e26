"""Interruption, resume and hostile input: runs are never lost, files are never trusted."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import interrupt_at, runner, write_code_running_checkpoint
from idx import write_idx_set

from lenet_cli.cli.commands import app
from lenet_cli.core.config import TrainConfig
from lenet_cli.formats.checkpoint import load_checkpoint, resume_config
from lenet_cli.training.fit import TrainingInterrupted, fit

LENET = [sys.executable, "-m", "lenet_cli"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def weights(path):
    return torch.load(path, weights_only=True)["model"]


RESUME_RECIPE = {"epochs": 3, "batch_size": 32}  # 600 images / 32 = 19 steps per epoch


@pytest.fixture(scope="module")
def uninterrupted(tiny_mnist, tmp_path_factory):
    """The run every interrupted-and-resumed run must equal, trained once for the module."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    return fit(TrainConfig(**RESUME_RECIPE, data_dir=str(tiny_mnist), checkpoint_dir=str(folder)))


@pytest.mark.parametrize("stop_after", [19, 30], ids=["epoch-boundary", "mid-epoch"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny_mnist, tmp_path, stop_after, uninterrupted):
    config = TrainConfig(**RESUME_RECIPE, data_dir=str(tiny_mnist), checkpoint_dir=str(tmp_path))
    straight = uninterrupted
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(config, on_step=interrupt_at(stop_after))
    assert stopped.value.exit_code == 130
    checkpoint = stopped.value.checkpoint
    assert checkpoint == tmp_path / "run-1" / "last.pt"
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] * 19 + saved["step"] in (stop_after, stop_after + 1)
    resumed = fit(resume_config(checkpoint, {}), resume_from=checkpoint)
    assert resumed.checkpoint == checkpoint  # the run continues in its own folder
    final, reference = weights(resumed.checkpoint), weights(straight.checkpoint)
    for key in reference:
        assert torch.equal(final[key], reference[key]), key
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in straight.history]
    assert resumed.test.accuracy == straight.test.accuracy


def test_resume_may_extend_epochs_but_not_change_the_recipe(trained_checkpoint, tmp_path):
    with pytest.raises(Exception, match="has finished all 3 epochs; pass --epochs N"):
        resume_config(trained_checkpoint, {})
    with pytest.raises(Exception, match=r"--batch-size cannot change when resuming \(the run used 128\)"):
        resume_config(trained_checkpoint, {"epochs": 5, "batch_size": 32})
    config = resume_config(trained_checkpoint, {"epochs": 4, "checkpoint_dir": str(tmp_path)})
    copy = tmp_path / "copy.pt"
    copy.write_bytes(trained_checkpoint.read_bytes())
    result = fit(config, resume_from=copy)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert result.checkpoint == tmp_path / "run-1" / "last.pt"  # not last.pt: a new folder, copy untouched


def run_cli_until_first_epoch(args):
    """Start `lenet train` and return once it has printed its first epoch line (training under way)."""
    process = subprocess.Popen(
        LENET + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ONE_THREAD
    )
    for line in process.stdout:
        if line.startswith("Epoch 1/"):
            return process
    raise AssertionError(f"training ended before its first epoch: {process.communicate()}")


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    return write_idx_set(tmp_path_factory.mktemp("small"), train_count=2000, test_count=200)


@pytest.mark.slow  # a subprocess of its own; `pytest -m "not slow"` skips it
@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_resume_finishes(small_mnist, tmp_path, signal_number, exit_code):
    args = ["train", "--epochs", "4", "--batch-size", "8", "--data-dir", str(small_mnist)]
    process = run_cli_until_first_epoch([*args, "--checkpoint-dir", str(tmp_path)])
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exit_code, stderr
    checkpoint = tmp_path / "run-1" / "last.pt"
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("Interrupted in epoch ")
    assert last_line.endswith(f"; saved {checkpoint}. Resume with: lenet train --resume {checkpoint}")
    assert "Traceback" not in stderr
    resumed = subprocess.run(
        LENET + ["train", "--resume", str(checkpoint)],
        capture_output=True,
        text=True,
        env=ONE_THREAD,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming after epoch" in resumed.stdout
    assert load_checkpoint(checkpoint)["epoch"] == 4


@pytest.mark.slow  # a subprocess of its own; `pytest -m "not slow"` skips it
def test_kill_9_at_random_moments_never_leaves_a_broken_checkpoint(tiny_mnist, tmp_path):
    rng = random.Random(1234)
    base = ["train", "--epochs", "200", "--batch-size", "16", "--data-dir", str(tiny_mnist)]
    last = tmp_path / "run-1" / "last.pt"
    for _attempt in range(6):
        args = (
            ["train", "--resume", str(last)] if last.exists() else [*base, "--checkpoint-dir", str(tmp_path)]
        )
        process = subprocess.Popen(
            LENET + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ONE_THREAD
        )
        deadline = time.monotonic() + 60
        while not (tmp_path / "run-1").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait()
        for path in tmp_path.rglob("*.pt"):
            load_checkpoint(path)  # raises if any present checkpoint is broken
    assert last.exists()
    epochs_done = load_checkpoint(last)["epoch"]
    finish = subprocess.run(
        LENET + ["train", "--resume", str(last), "--epochs", str(epochs_done + 1)],
        capture_output=True,
        text=True,
        env=ONE_THREAD,
        timeout=120,
    )
    assert finish.returncode == 0, finish.stderr
    assert load_checkpoint(last)["epoch"] == epochs_done + 1


def test_non_finite_loss_stops_with_the_step(tiny_mnist, tmp_path):
    result = runner.invoke(
        app,
        [
            "train",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--data-dir",
            str(tiny_mnist),
            "--checkpoint-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the training loss became ")
    assert "at step " in result.stderr and "of epoch 1 (try a lower --lr)" in result.stderr
    assert not (tmp_path / "run-1").exists()  # no checkpoint, and no empty run folder left behind


def test_checkpoint_folder_checked_before_training(tiny_mnist, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(
        app, ["train", "--data-dir", str(tiny_mnist), "--checkpoint-dir", str(blocker / "ck")]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot create checkpoint folder {blocker / 'ck'}: ")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("command", ["evaluate", "summary", "predict", "resume", "export", "init"])
def test_code_running_checkpoint_is_refused_by_every_command(tmp_path, command):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    write_code_running_checkpoint(evil, marker)
    args = {
        "evaluate": ["evaluate", str(evil)],
        "summary": ["summary", str(evil)],
        "predict": ["predict", str(tmp_path), "--checkpoint", str(evil)],
        "resume": ["train", "--resume", str(evil)],
        "export": ["export", str(evil)],
        "init": [
            "train",
            "--init",
            str(evil),
            "--data-dir",
            str(tmp_path),
            "--checkpoint-dir",
            str(tmp_path),
        ],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: refusing to load {evil}: it holds Python objects that are not allowed in a safe checkpoint\n"
    )
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt"]
