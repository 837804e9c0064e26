"""The two default recipes: from scratch on one-cycle (batches of 128, peak 1.2e-2, label smoothing 0.1),
and the tutorial's gentler one for fine-tuning (--init) and the constant schedule."""

import math

import torch
from helpers import invoke

from lenet_cli.core.config import TrainConfig
from lenet_cli.training.loop import batch_loss


def test_from_scratch_on_one_cycle_the_fast_recipe_is_the_default():
    config = TrainConfig()
    assert (config.images_per_step, config.learning_rate, config.smoothing) == (128, 1.2e-2, 0.1)


def test_fine_tuning_and_the_constant_schedule_keep_the_tutorials_batch_and_plain_targets():
    for config in (TrainConfig(init="model.pt"), TrainConfig(schedule="constant")):
        assert (config.images_per_step, config.smoothing) == (64, 0.0)
    assert TrainConfig(init="model.pt").learning_rate == 1e-3
    assert TrainConfig(init="reader", numbers=("amounts",)).smoothing == 0.1  # teaching whole numbers
    assert TrainConfig(init="reader", numbers=("amounts",), label_smoothing=0.0).smoothing == 0.0
    assert TrainConfig(schedule="constant").learning_rate == 1e-3


def test_given_values_win_and_are_saved_resolved():
    config = TrainConfig(batch_size=32, label_smoothing=0.2)
    assert (config.images_per_step, config.smoothing) == (32, 0.2)
    saved = TrainConfig().to_dict()
    assert (saved["batch_size"], saved["label_smoothing"], saved["lr"]) == (128, 0.1, 1.2e-2)


def test_a_checkpoint_saved_before_smoothing_existed_resumes_without_it():
    old = {"epochs": 5, "batch_size": 64, "lr": 3e-3, "schedule": "onecycle"}
    config = TrainConfig.from_dict(old)
    assert (config.images_per_step, config.smoothing) == (64, 0.0)


def test_smoothing_spreads_a_share_of_each_target_over_all_classes():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 2])
    log_probs = logits.log_softmax(1)
    targets = torch.full_like(logits, 0.1 / 3)
    targets[torch.arange(2), labels] += 0.9
    expected = -(targets * log_probs).sum(1).mean().item()
    assert math.isclose(batch_loss(logits, labels, label_smoothing=0.1).item(), expected, rel_tol=1e-6)
    # a label beyond the classes (a bad cut) keeps its uniform target, smoothing or not
    uniform = -log_probs[0].mean().item()
    bad = batch_loss(logits[:1], torch.tensor([3]), bad_cuts=True, label_smoothing=0.1).item()
    assert math.isclose(bad, uniform, rel_tol=1e-6)


def test_the_options_reach_the_checkpoint(tiny_mnist, tmp_path):
    result = invoke(
        "train",
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--label-smoothing",
        "0.2",
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    config = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)["config"]
    assert (config["batch_size"], config["label_smoothing"]) == (100, 0.2)


def test_a_label_smoothing_out_of_range_is_a_usage_error(tiny_mnist, tmp_path):
    result = invoke(
        "train", "--label-smoothing", "0.9", "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path
    )
    assert result.exit_code == 2
    assert "--label-smoothing" in result.output and "0.9" in result.output
    assert not (tmp_path / "run-1").exists()
