"""`lenet train --time` (a schedule fitted to a time budget), `--patience` (early stopping) and the
TensorBoard event files a run writes when the optional extra is installed."""

import json
import re

import pytest
import torch
from helpers import interrupt_at, invoke

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.model import LeNet5
from lenet_cli.formats.checkpoint import resume_config
from lenet_cli.training.fit import TrainingInterrupted, fit

STEPS_PER_EPOCH = 4  # the tiny set: 600 training images less 100 held out, 128 a batch (the default)


def saved(path):
    return torch.load(path, weights_only=False)


def test_a_short_budget_ends_with_a_finished_model_whose_schedule_reached_its_end(tiny_mnist, tmp_path):
    result = invoke(
        "train",
        "--time",
        "2s",
        "--epochs",
        "500",
        "--val-size",
        "100",
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    last = saved(tmp_path / "run-1" / "last.pt")
    scheduler = last["scheduler"]
    assert scheduler["total_steps"] < 500 * STEPS_PER_EPOCH  # the budget ended it, not --epochs
    assert scheduler["last_epoch"] == scheduler["total_steps"] == document["steps"]  # to the schedule's end
    group = last["optimizer"]["param_groups"][0]
    assert group["lr"] < group["max_lr"] / 100  # annealed to the end, not cut off at the peak
    epochs, extra = divmod(document["steps"], STEPS_PER_EPOCH)
    assert len(document["history"]) == epochs + (extra > 0)
    assert re.fullmatch(
        rf"Time budget 2s: trained {epochs} epochs?( and {extra} steps?)? \({document['steps']:,} steps\); "
        "the schedule was fitted to it and ran to its end",
        document["ended"],
    )
    assert (tmp_path / "run-1" / "best.pt").is_file()
    LeNet5().load_state_dict(last["model"])  # a loadable LeNet-5
    assert last["metrics"]["test_accuracy"] == document["test_accuracy"]


def test_epochs_end_a_budgeted_run_first_when_they_are_fewer(tiny_mnist, tmp_path):
    result = invoke(
        "train", "--time", "1h", "--epochs", "1", "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "Time budget 3600s: trained 1 epoch (5 steps); --epochs ended it first" in result.stdout


def test_an_interrupted_budget_run_resumes_to_the_end_of_the_schedule_it_planned(tiny_mnist, tmp_path):
    config = TrainConfig(epochs=500, data_dir=str(tiny_mnist), checkpoint_dir=str(tmp_path), time=30.0)
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(config, on_step=interrupt_at(60), run_outputs=False)  # planned after 40 steps
    checkpoint = stopped.value.checkpoint
    planned = saved(checkpoint)["scheduler"]["total_steps"]
    assert planned < 500 * 10
    resumed = fit(resume_config(checkpoint, {}), resume_from=checkpoint, run_outputs=False)
    assert resumed.steps == planned == saved(checkpoint)["scheduler"]["last_epoch"]
    again = invoke("train", "--resume", checkpoint)
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: {checkpoint} has finished the {planned:,} steps its --time budget planned; to train "
        f"further, start a new run from its weights: lenet train --init {checkpoint}\n"
    )


@pytest.mark.parametrize("value", ["10", "-5s", "abc", "0s", "5x"])
def test_a_bad_time_value_is_a_one_line_usage_error(value):
    result = invoke("train", f"--time={value}")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--time': {value!r} is not a duration; write it like 10s, 90s, 5m or 1h"
    )


def test_patience_needs_a_validation_set(tiny_mnist, tmp_path):
    result = invoke("train", "--patience", "2", "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --patience needs --val-size N: it stops when the validation accuracy stops improving\n"
    )
    assert not list(tmp_path.iterdir())


def test_patience_stops_a_stalled_run_keeps_best_and_says_when(tiny_mnist, tmp_path):
    # A learning rate too small to change a single prediction: validation stalls after epoch 1.
    result = invoke(
        "train",
        "--epochs",
        "20",
        "--val-size",
        "100",
        "--patience",
        "2",
        "--lr",
        "1e-12",
        "--schedule",
        "constant",
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("Epoch ")] == ["1/20", "2/20", "3/20"]
    accuracy = saved(tmp_path / "run-1" / "best.pt")["metrics"]["val_accuracy"]
    assert (
        f"Stopped early after epoch 3: validation accuracy has not improved for 2 epochs "
        f"(best {100 * accuracy:.2f}% at epoch 1, kept in best.pt)"
    ) in lines
    assert saved(tmp_path / "run-1" / "best.pt")["epoch"] == 1
    assert saved(tmp_path / "run-1" / "last.pt")["epoch"] == 3


def test_tensorboard_files_hold_the_scalars_images_and_settings(tiny_mnist, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = invoke(
        "train", "--epochs", "2", "--val-size", "100", "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path
    )
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(tmp_path / "run-1"))
    events.Reload()
    tags = events.Tags()
    assert set(tags["scalars"]) >= {
        "loss/train_step",
        "loss/train",
        "loss/val",
        "loss/test",
        "lr",
        "accuracy/train",
        "accuracy/val",
        "accuracy/test",
    }
    assert [event.step for event in events.Scalars("loss/train_step")] == list(
        range(1, 2 * STEPS_PER_EPOCH + 1)
    )
    assert [event.step for event in events.Scalars("accuracy/val")] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    test_accuracy = saved(tmp_path / "run-1" / "last.pt")["metrics"]["test_accuracy"]
    assert events.Scalars("accuracy/test")[0].value == pytest.approx(test_accuracy, abs=1e-6)
    assert set(tags["images"]) == {"test/misclassified", "test/confusion_matrix"}
    for tag in tags["images"]:
        image = events.Images(tag)[0]
        assert image.width > 100 and image.height > 30 and image.encoded_image_string.startswith(b"\x89PNG")
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def test_without_tensorboard_a_run_writes_no_event_files_and_says_nothing(tiny_mnist, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what importlib sees when it is not installed
    result = invoke("train", "--epochs", "1", "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "run-1").glob("events.out.tfevents.*"))
    assert result.stderr == "" and "TensorBoard" not in result.stdout
