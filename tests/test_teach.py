"""Teach from the page, through the API in process: refusals, a run that is accepted and answers at once,
undo, a run kept out, and a server stopped mid-run. A tiny IDX set keeps each run to seconds."""

import hashlib
import io
import json
import os
import signal
import time

import pytest
import torch
from fastapi.testclient import TestClient
from idx import synthetic_digits
from PIL import Image

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import PRETRAINED, default_model
from lenet_cli.serving.app import create_app
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.teach_routes import stop_teaching
from lenet_cli.serving.teach_run import SwapRule
from lenet_cli.serving.workers import PreprocessingPool

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def threads():
    pool = PreprocessingPool(0)
    yield pool
    pool.close()


def png(image_u8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image_u8.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def make_app(checkpoint, threads, tmp_path, data_dir, per_class=None):
    """An app serving `checkpoint` with --collect; `per_class` drawings of each digit posted through /collect."""
    options = ServeOptions(
        collect_dir=tmp_path / "collected", data_dir=data_dir, checkpoint_dir=tmp_path / "ck"
    )
    options.collect_dir.mkdir()
    model, info = load_any_model(checkpoint)
    app = create_app(model, info, options, threads)
    client = TestClient(app, base_url=BASE)
    images, labels = synthetic_digits(200, seed=5)
    posted = {digit: 0 for digit in range(10)}
    for image, label in zip(images, labels.tolist(), strict=True):
        if posted[label] < (per_class or {}).get(label, 6):
            answer = client.post(
                f"/collect?label={label}", content=png(image), headers={"Content-Type": "image/png"}
            )
            assert answer.status_code == 200
            posted[label] += 1
    return app, client


def collected_digest(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*.png")
    }


def wait_for_end(client, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.get("/teach").json()
        if state["state"] not in ("starting", "learning", "measuring"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"teaching did not end: {state}")


def test_too_few_drawings_are_refused_saying_how_many_are_missing(
    trained_checkpoint, threads, tmp_path, tiny_mnist
):
    _, client = make_app(trained_checkpoint, threads, tmp_path, tiny_mnist, per_class={1: 2, 7: 0})
    answer = client.post("/teach")
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "teaching needs at least 5 drawings of each digit; save 3 more of 1, 5 more of 7"},
    )
    state = client.get("/teach").json()
    assert (
        state["state"] == "idle" and state["missing"] == {"1": 3, "7": 5} and state["needed_per_class"] == 5
    )


def test_without_the_dataset_at_hand_it_says_what_is_needed(trained_checkpoint, threads, tmp_path):
    _, client = make_app(trained_checkpoint, threads, tmp_path, tmp_path / "nothing-here")
    answer = client.post("/teach")
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(
        f"teaching needs mnist (mixed into every batch so the model does not forget it, and its test set to "
        f"measure on), and {tmp_path / 'nothing-here'} does not hold it; start lenet serve with --data-dir DIR"
    )
    assert not (tmp_path / "ck").exists()


def test_without_collect_there_is_no_teaching(trained_checkpoint, threads, tiny_mnist):
    model, info = load_any_model(trained_checkpoint)
    client = TestClient(create_app(model, info, ServeOptions(data_dir=tiny_mnist), threads), base_url=BASE)
    assert client.post("/teach").status_code == 404
    assert client.get("/model").json()["answering"]["source"] == "started with"


def test_a_taught_model_that_passes_answers_at_once_and_undo_goes_back(
    trained_checkpoint, threads, tmp_path, tiny_mnist
):
    app, client = make_app(trained_checkpoint, threads, tmp_path, tiny_mnist)
    app.state.teacher.settings.rule = SwapRule(min_held_out_gain=-1.0, max_test_drop=1.0)  # any model passes
    collected = collected_digest(tmp_path / "collected")
    drawing = next((tmp_path / "collected" / "3").glob("*.png")).read_bytes()
    assert client.post("/teach").status_code == 202
    second = client.post("/teach")
    assert (second.status_code, second.json()) == (
        409,
        {"error": "a teaching run is under way; wait for it to end"},
    )
    state = wait_for_end(client)
    assert state["state"] == "accepted", state
    # one in five of each class held out and checked on (run-1); then all 60 learned from (run-2)
    assert state["held_out_count"] == 10 and state["learned_count"] == 60
    assert set(state["before"]) == set(state["after"]) == {"held_out", "test"}
    assert state["note"].startswith("only 10 held-out drawings, so the figures are rough")
    check_dir, run_dir = tmp_path / "ck" / "run-1", tmp_path / "ck" / "run-2"
    assert json.loads((check_dir / "teach.json").read_text())["status"] == "checked"
    assert {"last.pt", "metrics.csv", "teach.json", "curves.png"} <= {path.name for path in run_dir.iterdir()}
    record = json.loads((run_dir / "teach.json").read_text())
    assert record["status"] == "accepted" and record["init"]["path"] == str(trained_checkpoint)
    assert record["checked_by"] == str(check_dir) and state["run"] == str(run_dir)
    assert (
        record["after"]["held_out"] == json.loads((check_dir / "teach.json").read_text())["after"]["held_out"]
    )
    described = client.get("/model").json()
    assert described["answering"]["path"] == str(run_dir / "last.pt")
    assert described["answering"]["source"] == "taught"
    assert described["answering"]["init"] == str(trained_checkpoint)
    assert client.post("/predict", content=drawing).json()["checkpoint"] == str(run_dir / "last.pt")
    assert app.state.batcher.model is app.state.teacher.answering.model
    assert client.get("/teach").json()["can_undo"] is True
    assert default_model(tmp_path / "ck")[0] == run_dir / "last.pt"  # what the next plain `lenet serve` takes

    undone = client.post("/teach/undo")
    assert undone.status_code == 200 and undone.json()["state"] == "undone"
    assert client.get("/model").json()["answering"]["path"] == str(trained_checkpoint)
    assert client.post("/predict", content=drawing).json()["checkpoint"] == str(trained_checkpoint)
    assert json.loads((run_dir / "teach.json").read_text())["status"] == "undone"
    assert default_model(tmp_path / "ck")[0] == PRETRAINED  # an undone run is no one's default
    again = client.post("/teach/undo")
    assert (again.status_code, again.json()) == (
        409,
        {"error": "nothing to undo: no taught model has answered yet"},
    )
    assert collected_digest(tmp_path / "collected") == collected  # never changed, never deleted


def test_a_taught_model_that_does_not_pass_is_kept_out_and_says_why(
    trained_checkpoint, threads, tmp_path, tiny_mnist
):
    app, client = make_app(trained_checkpoint, threads, tmp_path, tiny_mnist)
    app.state.teacher.settings.rule = SwapRule(min_held_out_gain=2.0)  # no model gains 200 points
    client.post("/teach")
    state = wait_for_end(client)
    assert state["state"] == "kept out"
    assert state["why"].startswith("it reads the held-out drawings worse")
    assert state["can_undo"] is False
    assert client.get("/model").json()["answering"]["path"] == str(trained_checkpoint)
    assert json.loads((tmp_path / "ck" / "run-1" / "teach.json").read_text())["status"] == "kept out"
    assert default_model(tmp_path / "ck")[0] == PRETRAINED


def test_a_server_stopped_mid_run_leaves_no_run_and_no_child(
    trained_checkpoint, threads, tmp_path, tiny_mnist
):
    app, client = make_app(trained_checkpoint, threads, tmp_path, tiny_mnist)
    client.post("/teach")
    teacher = app.state.teacher
    deadline = time.monotonic() + 120
    while (teacher.child is None or teacher.child.run_dir is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(teacher.child.process.pid, signal.SIGSTOP)  # held mid-run, so the stop surely comes first
    stop_teaching(app)
    assert teacher.child.process.poll() is not None
    assert client.get("/teach").json()["state"] == "stopped"
    assert [
        path for path in (tmp_path / "ck").rglob("*") if path.is_file() or path.name.startswith("run-")
    ] == []
    assert client.get("/model").json()["answering"]["source"] == "started with"


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        ((0.8, 0.99), (0.8, 0.985), None),
        ((0.8, 0.99), (0.9, 0.984), "it loses 0.60 points on the test set (at most 0.5 allowed)"),
        ((0.8, 0.99), (0.7, 0.995), "it reads the held-out drawings worse (70.0% against 80.0%)"),
    ],
)
def test_the_swap_rule(before, after, why):
    from lenet_cli.serving.teach_run import Figures

    assert SwapRule().refusal(Figures(*before), Figures(*after)) == why


def test_train_progress_json_is_hidden_and_adds_only_its_lines(tiny_mnist, tmp_path):
    from helpers import invoke

    assert "--progress-json" not in invoke("train", "--help").stdout
    args = ("train", "--epochs", 2, "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path, "--json")
    plain, with_progress = invoke(*args), invoke(*args, "--progress-json")
    progress = [
        json.loads(line)["progress"] for line in with_progress.stderr.splitlines() if line.startswith("{")
    ]
    assert progress[0] == {"run_dir": str(tmp_path / "run-2"), "step": 0, "steps": 10}
    assert progress[-1] == {"step": 10, "steps": 10}
    assert [entry["step"] for entry in progress] == sorted(entry["step"] for entry in progress)
    others = [line for line in with_progress.stderr.splitlines() if not line.startswith("{")]
    assert len(others) == len(plain.stderr.splitlines()) and not plain.stderr.count("{")
    assert json.loads(with_progress.stdout).keys() == json.loads(plain.stdout).keys()


def test_held_out_drawings_are_read_in_seven_views():
    from lenet_cli.data.datasets import Split
    from lenet_cli.serving.teach_run import HELD_OUT_VIEWS, held_out_views

    drawings = torch.zeros(3, 28, 28, dtype=torch.uint8)
    drawings[:, 8:20, 13:15] = 255  # a 1
    views = held_out_views(Split(drawings, torch.tensor([1, 1, 7])))
    assert len(HELD_OUT_VIEWS) == 7 and views.images.shape == (21, 28, 28)
    assert views.labels.tolist() == [1, 1, 7] * 7
    assert torch.equal(views.images[:3], drawings)  # the drawing as drawn
    columns = torch.arange(28.0)
    centre = lambda image: float((image.float().sum(0) * columns).sum() / image.float().sum())  # noqa: E731
    assert centre(views.images[3]) == pytest.approx(centre(drawings[0]) + 1, abs=0.01)  # a pixel right
    assert centre(views.images[6]) == pytest.approx(centre(drawings[0]) - 1, abs=0.01)  # a pixel left
    assert not torch.equal(views.images[15], drawings[0])  # turned
