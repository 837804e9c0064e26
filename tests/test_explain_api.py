"""POST /explain and GET /explain/kernels, in process through FastAPI's TestClient: what `lenet explain
--json` prints, with /predict's limits and errors."""

import json
import random

import numpy as np
import pytest
from drawing import draw_digit
from fastapi.testclient import TestClient
from helpers import invoke

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import PRETRAINED
from lenet_cli.serving.app import create_app
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.workers import PreprocessingPool

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client():
    pool = PreprocessingPool(0)
    model, info = load_any_model(PRETRAINED)
    yield TestClient(create_app(model, info, ServeOptions(), pool), base_url=BASE)
    pool.close()


@pytest.fixture(scope="module")
def drawing(tmp_path_factory):
    path = tmp_path_factory.mktemp("drawn") / "3.png"
    draw_digit(3, random.Random(5)).save(path)
    return path


def test_answers_what_lenet_explain_json_prints(client, drawing):
    answer = client.post("/explain", content=drawing.read_bytes(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    printed = json.loads(invoke("explain", drawing, "-c", PRETRAINED, "--json").stdout)
    assert document["checkpoint"] == printed["checkpoint"] == str(PRETRAINED)
    served, expected = document["explanations"][0], printed["explanations"][0]
    assert served["path"] == "-"
    assert list(served) == list(expected)
    assert served["label"] == expected["label"] == 3
    assert [(layer["name"], layer["shape"]) for layer in served["layers"]] == [
        (layer["name"], layer["shape"]) for layer in expected["layers"]
    ]
    for mine, theirs in zip(served["layers"], expected["layers"], strict=True):
        np.testing.assert_allclose(mine["values"], theirs["values"], atol=1e-5)
    assert list(served["attribution"]["classes"]) == list(expected["attribution"]["classes"])
    for label, values in served["attribution"]["classes"].items():
        np.testing.assert_allclose(values, expected["attribution"]["classes"][label], atol=1e-4)


def test_a_target_adds_why_that_class_and_brief_summarises(client, drawing):
    document = client.post(
        "/explain?target=8&brief=true&method=gradient", content=drawing.read_bytes()
    ).json()
    explanation = document["explanations"][0]
    assert document["method"] == explanation["attribution"]["method"] == "gradient"
    answer, runner_up = str(explanation["label"]), str(explanation["runner_up"]["label"])
    assert list(explanation["attribution"]["classes"]) == list(dict.fromkeys([answer, runner_up, "8"]))
    assert [len(layer["maps"]) for layer in explanation["layers"][:5]] == [1, 6, 6, 16, 16]


def test_multipart_files_are_each_explained_and_a_bad_one_reported(client, drawing):
    files = [
        ("images", ("3.png", drawing.read_bytes(), "image/png")),
        ("images", ("bad.png", b"nope", "image/png")),
    ]
    document = client.post("/explain", files=files).json()
    assert [e["path"] for e in document["explanations"]] == ["3.png", "bad.png"]
    assert document["explanations"][1]["error"] == "cannot decode image (UnidentifiedImageError)"


@pytest.mark.parametrize(
    ("query", "body", "headers", "status", "error"),
    [
        ("", b"", {}, 400, "the body is empty; send an image file"),
        ("", b"not an image", {}, 422, "cannot decode image (UnidentifiedImageError)"),
        (
            "",
            b"{}",
            {"Content-Type": "application/json"},
            415,
            "send an image (image/*, application/octet-stream or multipart), not application/json",
        ),
        ("?method=saliency", b"x", {}, 422, "method must be one of occlusion, ig, gradient"),
        ("?invert=maybe", b"x", {}, 422, "invert must be one of auto, yes, no"),
        ("?target=10", b"x", {}, 422, "target must be between 0 and 9"),
    ],
)
def test_bad_requests_are_refused_as_predict_refuses_them(client, query, body, headers, status, error):
    answer = client.post("/explain" + query, content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (status, {"error": error})


def test_kernels_and_the_script(client):
    kernels = client.get("/explain/kernels").json()
    assert {name: entry["shape"] for name, entry in kernels.items()} == {
        "Conv1": [6, 1, 5, 5],
        "Conv2": [16, 6, 5, 5],
    }
    assert np.asarray(kernels["Conv2"]["values"]).shape == (16, 6, 5, 5)
    script = client.get("/inside.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'fetch("explain?method=gradient"' in script.text  # the page asks for the fast method


def test_an_exported_model_is_refused(tmp_path, drawing):
    from lenet_cli.inference.export import export_checkpoint

    exported = export_checkpoint(PRETRAINED, "onnx", tmp_path / "model.onnx", None, False, None).path
    pool = PreprocessingPool(0)
    model, info = load_any_model(exported)
    client = TestClient(create_app(model, info, ServeOptions(), pool), base_url=BASE)
    answer = client.post("/explain", content=drawing.read_bytes())
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "explain needs a .pt checkpoint; this server runs an exported model"},
    )
    pool.close()
