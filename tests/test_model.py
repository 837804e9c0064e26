import torch
import torch.nn.functional as F
from tutorial import LeNet5 as TutorialLeNet5  # bench/tutorial.py: the tutorial's classes as written

from lenet_cli.core.model import LeNet5
from lenet_cli.inference.summary import summarize


def test_state_dict_keys_match_the_tutorial():
    assert list(LeNet5().state_dict()) == [
        "backbone.conv1.weight",
        "backbone.conv1.bias",
        "backbone.conv2.weight",
        "backbone.conv2.bias",
        "head.fc1.weight",
        "head.fc1.bias",
        "head.fc2.weight",
        "head.fc2.bias",
        "head.fc3.weight",
        "head.fc3.bias",
    ]


def test_shapes_and_parameter_count():
    model = LeNet5()
    assert model.backbone(torch.zeros(7, 1, 28, 28)).shape == (7, 16, 5, 5)
    assert model(torch.zeros(7, 1, 28, 28)).shape == (7, 10)
    assert sum(p.numel() for p in model.parameters()) == 61_706


def test_weights_are_interchangeable_with_the_tutorial_class():
    torch.manual_seed(3)
    ours = LeNet5()
    theirs = TutorialLeNet5()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    batch = torch.rand(5, 1, 28, 28)
    assert torch.equal(ours(batch), theirs(batch))
    back = LeNet5()
    back.load_state_dict(TutorialLeNet5().state_dict(), strict=True)


def test_summary_counts_parameters_and_mult_adds():
    summary = summarize()
    by_layer = {row.layer: row for row in summary.rows}
    assert summary.total_params == 61_706
    assert by_layer["Conv1"].output_shape == (6, 28, 28)
    assert by_layer["Conv1"].formula == "(28 + 2·2 − 5) / 1 + 1 = 28"
    assert by_layer["Conv1"].mult_adds == 6 * 28 * 28 * 25
    assert by_layer["Pool2"].output_shape == (16, 5, 5)
    assert summary.total_mult_adds == 416_520
    assert summary.param_bytes == 61_706 * 4


def test_forward_and_gradients_are_bit_identical_to_the_tutorial_order():
    torch.manual_seed(5)
    ours, theirs = LeNet5(), TutorialLeNet5()
    theirs.load_state_dict(ours.state_dict())
    batch = torch.rand(32, 1, 28, 28)
    batch[:4] = 0  # blank images: pooling windows full of ties at zero
    labels = torch.randint(0, 10, (32,))
    for model in (ours, theirs):
        F.cross_entropy(model(batch), labels).backward()
    assert torch.equal(ours(batch), theirs(batch))
    for (name, mine), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert torch.equal(mine.grad, reference.grad), name
