"""Files from others: no file lenet opens may run code or hang it, and what is read has limits."""

import json
import os
import shutil
import socket
import sys

import pytest
import torch
from helpers import (
    answers_within,
    hostile_pt2,
    invoke,
    write_code_running_checkpoint,
    write_digit_png,
)

from lenet_cli.core.reading import NotReadable, read_stdin
from lenet_cli.data.datasets import load_split
from lenet_cli.inference.export import export_checkpoint


@pytest.fixture(scope="module")
def program(tmp_path_factory, trained_checkpoint):
    """A genuine .pt2 export of the tiny checkpoint, to make hostile copies of."""
    folder = tmp_path_factory.mktemp("pt2")
    checkpoint = shutil.copy(trained_checkpoint, folder / "last.pt")
    return export_checkpoint(checkpoint, "pt2").path


@pytest.fixture(scope="module")
def digit(tmp_path_factory, tiny_mnist):
    test = load_split("mnist", tiny_mnist, "test")
    return write_digit_png(tmp_path_factory.mktemp("digit") / "digit.png", test.images[0])


def reading_a_model(command, model, digit, folder):
    """The arguments of each command that opens a model file."""
    return {
        "summary": ["summary", model],
        "evaluate": ["evaluate", model],
        "predict": ["predict", digit, "-c", model],
        "export": ["export", model],
        "init": ["train", "--init", model, "--data-dir", folder, "--checkpoint-dir", folder],
        "resume": ["train", "--resume", model],
    }[command]


HOSTILE_PT2 = {
    "pickled-weight": "it holds pickled weights or constants, which could run code when loaded",
    "sample-inputs": "it holds Python objects that are not allowed in a safe file",
    "opaque-constant": "it holds an entry lenet does not load (data/constants/opaque_obj_0); "
    "lenet loads only graphs and tensors",
}


@pytest.mark.parametrize("kind", HOSTILE_PT2)
@pytest.mark.parametrize("command", ["summary", "evaluate", "predict", "export", "init"])
def test_a_hostile_pt2_runs_nothing_through_any_command(program, digit, tmp_path, kind, command):
    marker = tmp_path / "pwned"
    evil = hostile_pt2(program, tmp_path / "evil.pt2", marker, kind)
    result = invoke(*reading_a_model(command, evil, digit, tmp_path))
    assert result.exit_code == 1
    expected = {
        "export": f"{evil} is already an export; export from the checkpoint (.pt) it came from",
        "init": f"{evil} is not a readable PyTorch checkpoint (corrupt or truncated?)",
    }.get(command, f"refusing to load {evil}: {HOSTILE_PT2[kind]}")
    assert result.stderr == f"Error: {expected}\n"
    assert not marker.exists()


def test_the_genuine_pt2_still_loads(program, digit):
    result = invoke("predict", digit, "-c", program, "--json")
    assert result.exit_code == 0, result.output


def special_files(folder):
    """A named pipe, a character device and a socket: paths a plain open() or read could wait on forever."""
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.png"))
    return {"fifo": fifo, "device": "/dev/zero", "socket": folder / "socket.png"}, server


KIND_TEXT = {"fifo": "a named pipe (FIFO)", "device": "a character device", "socket": "a socket"}


def test_predict_answers_each_non_regular_file_with_an_error_row(trained_checkpoint, digit, tmp_path):
    paths, server = special_files(tmp_path)
    with server, answers_within():
        result = invoke("predict", digit, *paths.values(), "-c", trained_checkpoint, "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)["predictions"]
    assert "label" in rows[0]
    assert [row.get("error") for row in rows[1:]] == [
        f"is {KIND_TEXT[kind]}, not a regular file" for kind in paths
    ]
    assert result.stderr == "Error: 3 of 4 images could not be predicted\n"


def test_a_folder_with_a_pipe_inside_is_predicted_without_waiting(trained_checkpoint, digit, tmp_path):
    shutil.copy(digit, tmp_path / "a.png")
    os.mkfifo(tmp_path / "b.png")
    with answers_within():
        result = invoke("predict", tmp_path, "-c", trained_checkpoint, "--json")
    assert result.exit_code == 1
    assert [row.get("error") for row in json.loads(result.stdout)["predictions"]] == [
        None,
        "is a named pipe (FIFO), not a regular file",
    ]


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
@pytest.mark.parametrize("command", ["summary", "evaluate", "predict", "export", "init", "resume"])
def test_a_model_path_that_is_not_a_regular_file_is_one_error(tmp_path, digit, kind, command):
    paths, server = special_files(tmp_path)
    model = paths[kind]
    with server, answers_within():
        result = invoke(*reading_a_model(command, model, digit, tmp_path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {model} is {KIND_TEXT[kind]}, not a regular file\n"


def test_exported_files_that_are_pipes_are_refused(tmp_path):
    for suffix in (".onnx", ".pt2"):
        os.mkfifo(tmp_path / f"model{suffix}")
        with answers_within():
            result = invoke("summary", tmp_path / f"model{suffix}")
        assert (
            result.stderr
            == f"Error: {tmp_path / f'model{suffix}'} is a named pipe (FIFO), not a regular file\n"
        )


def test_labelled_folders_with_a_pipe_inside(trained_checkpoint, tiny_mnist, digit, tmp_path):
    folder = tmp_path / "mine"
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
        shutil.copy(digit, folder / str(label) / "a.png")
    os.mkfifo(folder / "3" / "pipe.png")
    with answers_within():
        evaluated = invoke("evaluate", trained_checkpoint, "--images", folder, "--json")
    assert evaluated.exit_code == 1
    assert json.loads(evaluated.stdout)["errors"] == [
        {
            "path": str(folder / "3" / "pipe.png"),
            "label": 3,
            "error": "is a named pipe (FIFO), not a regular file",
        }
    ]
    with answers_within(60):  # a short training run: the pipe is skipped and counted, not waited on
        trained = invoke(
            "train",
            "--init",
            trained_checkpoint,
            "--images",
            folder,
            "--epochs",
            1,
            "--data-dir",
            tiny_mnist,
            "--checkpoint-dir",
            tmp_path / "runs",
        )
    assert trained.exit_code == 0, trained.output
    assert "10 from " in trained.stdout and "1 other files skipped" in trained.stdout


def test_an_idx_file_that_is_a_pipe_is_named(tiny_mnist, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_mnist, data)
    (data / "t10k-labels-idx1-ubyte.gz").unlink()
    os.mkfifo(data / "t10k-labels-idx1-ubyte.gz")
    with answers_within():
        result = invoke("train", "--data-dir", data, "--checkpoint-dir", tmp_path)
    assert (
        result.stderr
        == f"Error: {data / 't10k-labels-idx1-ubyte.gz'} is a named pipe (FIFO), not a regular file\n"
    )


def test_predict_reads_one_image_from_standard_input(trained_checkpoint, digit):
    from_file = json.loads(invoke("predict", digit, "-c", trained_checkpoint, "--json").stdout)
    piped = invoke("predict", "-", digit, "-c", trained_checkpoint, "--json", input=digit.read_bytes())
    assert piped.exit_code == 0, piped.output
    rows = json.loads(piped.stdout)["predictions"]
    assert rows[0]["path"] == "-"
    alone = from_file["predictions"][0]
    for row in rows:  # batch size changes the kernels, so confidences agree to a tolerance, not bit for bit
        assert row["label"] == alone["label"]
        assert row["confidence"] == pytest.approx(alone["confidence"], abs=1e-5)
    text = invoke("predict", "-", "-c", trained_checkpoint, input=digit.read_bytes())
    assert text.exit_code == 0 and "│ -  " in text.stdout


def test_standard_input_that_is_a_terminal_or_too_long_is_refused(monkeypatch):
    leader, follower = os.openpty()
    with os.fdopen(follower, "rb", buffering=0) as terminal:
        monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": terminal})())
        with pytest.raises(NotReadable, match="standard input is a terminal; pipe an image into it"):
            read_stdin(1000)
    os.close(leader)
    import io

    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": io.BytesIO(b"x" * 1001)})())
    with pytest.raises(NotReadable, match="standard input is over the 0 MiB limit"):
        read_stdin(1000)


def test_predict_dash_twice_is_refused(trained_checkpoint, digit):
    result = invoke("predict", "-", "-", "-c", trained_checkpoint, input=digit.read_bytes())
    assert result.exit_code == 1 and result.stderr == "Error: `-` (standard input) can be given once\n"


def test_size_limits_refuse_before_reading(trained_checkpoint, tmp_path):
    huge_image, huge_model = tmp_path / "huge.png", tmp_path / "huge.pt"
    for path in (huge_image, huge_model):
        with open(path, "wb") as handle:
            handle.truncate(65 * 1024 * 1024)  # sparse: nothing is written, but its size is 65 MiB
    predicted = invoke("predict", huge_image, "-c", trained_checkpoint, "--json")
    assert json.loads(predicted.stdout)["predictions"][0]["error"] == "is 65.0 MiB, over the 64 MiB limit"
    summarised = invoke("summary", huge_model)
    assert summarised.stderr == f"Error: {huge_model} is 65.0 MiB, over the 64 MiB limit for a model file\n"


def test_a_checkpoint_declaring_an_absurd_tensor_size_is_refused_without_allocating(
    tmp_path, trained_checkpoint
):
    import io
    import resource
    import struct
    import zipfile

    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(6)}}, buffer)
    absurd = tmp_path / "absurd.pt"
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(absurd, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename.endswith("data.pkl"):  # the storage and the tensor claim 2e9 floats (8 GB)
                big = b"J" + struct.pack("<i", 2_000_000_000)
                data = data.replace(b"cpuq\x08K\x06t", b"cpuq\x08" + big + b"t").replace(
                    b"K\x00K\x06\x85", b"K\x00" + big + b"\x85"
                )
            target.writestr(entry, data)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = invoke("summary", absurd)
    assert result.stderr == f"Error: {absurd} is not a readable PyTorch checkpoint (corrupt or truncated?)\n"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: far below 8 GB


def test_a_code_running_checkpoint_named_pt2_or_onnx_runs_nothing(tmp_path, digit):
    marker = tmp_path / "pwned"
    for suffix in (".pt2", ".onnx"):
        evil = write_code_running_checkpoint(tmp_path / f"evil{suffix}", marker)
        result = invoke("predict", digit, "-c", evil)
        assert result.exit_code == 1
        assert result.stderr in (
            f"Error: {evil} is not a readable ONNX model ([ONNXRuntimeError] : 7 : INVALID_PROTOBUF : "
            "Failed to load model because protobuf parsing failed.)\n",
            f"Error: refusing to load {evil}: it holds an entry lenet does not load (data.pkl); "
            "lenet loads only graphs and tensors\n",
        ), result.stderr
    assert not marker.exists()
