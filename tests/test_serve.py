"""`lenet serve`'s API, in process through FastAPI's TestClient and an async client for concurrency."""

import asyncio
import io
import json
import random

import faulty
import httpx
import pytest
from drawing import draw_digit
from fastapi.testclient import TestClient
from helpers import invoke
from PIL import Image

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import PRETRAINED
from lenet_cli.images.preprocess import load_digit
from lenet_cli.inference.predict import predict_files
from lenet_cli.serving.app import create_app
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.uploads import MAX_BODY_BYTES
from lenet_cli.serving.workers import CRASHED, PreprocessingPool, free_cores

BASE = "http://127.0.0.1:8000"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Twenty hand-drawn-style digits (dark pen on light paper, large canvases) as PNG files."""
    folder = tmp_path_factory.mktemp("drawn")
    rng = random.Random(3)
    paths = []
    for index in range(20):
        path = folder / f"{index % 10}-{index}.png"
        draw_digit(index % 10, rng).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def threads():
    pool = PreprocessingPool(0)
    yield pool
    pool.close()


def make_client(pool, collect_dir=None, **options) -> TestClient:
    model, info = load_any_model(PRETRAINED)
    app = create_app(model, info, ServeOptions(collect_dir=collect_dir, **options), pool)
    return TestClient(app, base_url=BASE)


@pytest.fixture(scope="module")
def client(threads):
    return make_client(threads)


def test_answers_like_lenet_predict_for_raw_and_multipart_bodies(client, drawn):
    model, _ = load_any_model(PRETRAINED)
    expected = [p.to_dict() for p in predict_files(model, drawn, top_k=3)]
    raw = [client.post("/predict", content=path.read_bytes()).json() for path in drawn]
    files = [("images", (path.name, path.read_bytes(), "image/png")) for path in drawn]
    multipart = client.post("/predict", files=files).json()
    assert multipart["checkpoint"] == str(PRETRAINED)
    for index, reference in enumerate(expected):
        for answer, name in (
            (raw[index]["predictions"][0], "-"),
            (multipart["predictions"][index], drawn[index].name),
        ):
            assert answer["path"] == name
            assert answer["label"] == reference["label"]
            assert [row["label"] for row in answer["top_k"]] == [row["label"] for row in reference["top_k"]]
            assert answer["confidence"] == pytest.approx(reference["confidence"], abs=1e-5)
    assert sum(r["label"] == int(p.name[0]) for r, p in zip(expected, drawn, strict=True)) >= 18


def test_the_network_input_comes_back_as_a_png_data_url(client, drawn):
    answer = client.post("/predict?include_input=true&top_k=10", content=drawn[7].read_bytes()).json()
    prediction = answer["predictions"][0]
    assert len(prediction["top_k"]) == 10
    header, encoded = prediction["input"].split(",", 1)
    assert header == "data:image/png;base64"
    import base64

    seen = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert seen.size == (28, 28) and seen.mode == "L"


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        (b"", {}, 400, "the body is empty; send an image file"),
        (b"not an image", {}, 422, "cannot decode image (UnidentifiedImageError)"),
        ("blank", {}, 422, "no digit found (the image is blank)"),
        (
            "huge",
            {},
            422,
            "image is over the 40,000,000-pixel limit (refused as a possible decompression bomb)",
        ),
        (
            b"{}",
            {"Content-Type": "application/json"},
            415,
            "send an image (image/*, application/octet-stream or multipart), not application/json",
        ),
        ("too-long", {}, 413, f"the body is over the {MAX_BODY_BYTES // 2**20} MiB limit"),
    ],
)
def test_bad_input_is_a_4xx_with_an_error_and_the_server_keeps_serving(
    client, drawn, tmp_path, body, headers, status, error
):
    if body == "blank":
        body = png_bytes(Image.new("L", (60, 60), 255))
    elif body == "huge":
        from test_predict import huge_png

        huge_png(tmp_path / "huge.png")
        body = (tmp_path / "huge.png").read_bytes()
    elif body == "too-long":
        body = b"\0" * (MAX_BODY_BYTES + 1)
    response = client.post("/predict", content=body, headers=headers)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert client.post("/predict", content=drawn[1].read_bytes()).status_code == 200


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("top_k=0", "top_k must be between 1 and 10"),
        ("invert=maybe", "invert must be one of auto, yes, no"),
        ("top_k=x", "top_k: Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_bad_parameters_are_422(client, drawn, query, error):
    response = client.post(f"/predict?{query}", content=drawn[0].read_bytes())
    assert (response.status_code, response.json()) == (422, {"error": error})


def test_other_sites_and_other_host_names_are_refused(client, drawn):
    evil = client.post("/predict", content=drawn[0].read_bytes(), headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert evil.json() == {
        "error": "requests from https://evil.example are refused: only this server's own page may call it"
    }
    rebound = client.get("/health", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 403
    assert client.post("/predict", content=drawn[0].read_bytes(), headers={"Origin": BASE}).status_code == 200
    assert client.get("/nowhere").json() == {"error": "not found"}


def test_model_health_and_page(client):
    assert client.get("/health").json() == {"status": "ok", "preprocessing_processes": 0, "restarts": 0}
    model = client.get("/model").json()
    assert model["total_params"] == 61_706 and model["class_names"] == [str(d) for d in range(10)]
    assert model["checkpoint"]["dataset"] == "mnist" and model["checkpoint"]["test_accuracy"] == 0.9942
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 200


def test_collect_writes_where_and_only_where_it_should(threads, drawn, tmp_path):
    off = make_client(threads)
    assert off.get("/collect").json() == {"enabled": False, "folder": None, "counts": {}, "limit": 1000}
    refused = off.post("/collect?label=3", content=drawn[3].read_bytes())
    assert refused.status_code == 404 and list(tmp_path.iterdir()) == []
    folder = tmp_path / "mine"
    on = make_client(threads, collect_dir=folder)
    saved = on.post("/collect?label=3", content=drawn[3].read_bytes()).json()
    assert saved["counts"]["3"] == 1 and saved["saved"].startswith("3/")
    [written] = folder.glob("*/*.png")
    assert written.parent.name == "3" and written.read_bytes() == drawn[3].read_bytes()
    assert on.post("/collect?label=12", content=drawn[3].read_bytes()).status_code == 422
    assert on.post("/collect?label=3", content=b"GIF89a").status_code == 415
    assert [p.name for p in folder.rglob("*") if p.is_file()] == [
        written.name
    ]  # nothing else, no temporaries
    evaluated = invoke("evaluate", PRETRAINED, "--images", folder, "--json")
    assert json.loads(evaluated.stdout)["total"] == 1


async def concurrently(app, bodies, path="/predict"):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as session:
        return await asyncio.gather(*(session.post(path, content=body) for body in bodies))


def test_concurrent_requests_share_forward_passes(threads, drawn):
    client = make_client(threads, window_ms=50, max_batch=64)
    responses = asyncio.run(concurrently(client.app, [path.read_bytes() for path in drawn]))
    assert all(response.status_code == 200 for response in responses)
    sizes = client.app.state.batcher.batch_sizes
    assert sum(size * count for size, count in sizes.items()) == len(drawn)
    assert max(sizes) > 1  # some requests were answered from the same forward pass
    unbatched = make_client(threads, window_ms=0)
    asyncio.run(concurrently(unbatched.app, [path.read_bytes() for path in drawn]))
    assert dict(unbatched.app.state.batcher.batch_sizes) == {1: len(drawn)}


def test_work_past_the_bound_is_refused_with_retry_after(threads, drawn):
    client = make_client(threads, window_ms=200, max_pending=2)
    responses = asyncio.run(concurrently(client.app, [drawn[0].read_bytes()] * 6))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) >= 2 and 503 in statuses
    busy = next(response for response in responses if response.status_code == 503)
    assert busy.headers["retry-after"] == "1" and busy.json()["error"].startswith("the server is busy")


def test_preprocessing_processes_give_the_same_answers(drawn, tmp_path):
    """Two images in one request go to the worker processes (one image alone is read on a thread)."""
    pool = PreprocessingPool(2)  # real spawned processes, as the server uses
    try:
        with TestClient(
            create_app(*load_any_model(PRETRAINED), ServeOptions(), pool), base_url=BASE
        ) as client:
            files = [("files", (path.name, path.read_bytes(), "image/png")) for path in drawn[5:7]]
            by_process = client.post("/predict", files=files).json()["predictions"]
        blank = tmp_path / "blank.png"
        Image.new("L", (40, 40), 255).save(blank)
        answers, loads = asyncio.run(
            read_in_order(pool, [drawn[5].read_bytes(), blank.read_bytes(), b"not an image"])
        )
        assert sorted(loads) == [1, 2]  # the reads went to both workers, not all to the first
        assert answers[1:] == [
            "no digit found (the image is blank)",
            "cannot decode image (UnidentifiedImageError)",
        ]
        assert answers[0] == load_digit(drawn[5]).numpy().tobytes()  # a second event loop reconnects
    finally:
        pool.close()
    model, _ = load_any_model(PRETRAINED)
    for prediction, reference in zip(by_process, predict_files(model, drawn[5:7]), strict=True):
        assert prediction["label"] == reference.label
        assert prediction["confidence"] == pytest.approx(reference.confidence, abs=1e-5)
    assert not any(worker.process.is_alive() for worker in pool.workers)


async def read_in_order(pool, images):
    """The answers, in order, and how many reads each worker held once all were sent."""
    await pool.network_input(images[0], "auto")  # connected to the workers
    reads = [asyncio.ensure_future(pool.network_input(image, "auto")) for image in images]
    await asyncio.sleep(0)  # each read has been handed to a worker (none can have answered yet)
    loads = [len(channel.reads) for channel in (await pool._dispatcher).channels]
    return await asyncio.gather(*reads), loads


def test_workers_take_reads_only_on_the_cores_the_server_leaves_free():
    for busy, workers in [(0.75, 1), (0.2, 2), (1.9, 1), (0.0, 2)]:
        assert free_cores(2, busy) == workers, busy


def test_a_killed_preprocessing_process_is_replaced_and_its_reads_retried(drawn, caplog):
    pool = PreprocessingPool(1)
    try:

        async def kill_with_reads_in_flight():
            await pool.network_input(drawn[0].read_bytes(), "auto")  # connected
            reads = [
                asyncio.ensure_future(pool.network_input(path.read_bytes(), "auto")) for path in drawn[:4]
            ]
            await asyncio.sleep(0)  # handed to the worker
            pool.workers[0].process.kill()
            answers = await asyncio.wait_for(asyncio.gather(*reads), 30)
            return answers, await asyncio.wait_for(pool.network_input(drawn[5].read_bytes(), "auto"), 30)

        killed = pool.workers[0].process
        answers, after = asyncio.run(kill_with_reads_in_flight())
        assert answers == [load_digit(path).numpy().tobytes() for path in drawn[:4]]
        assert after == load_digit(drawn[5]).numpy().tobytes()
        assert pool.restarts == 1 and pool.alive == 1 and not killed.is_alive()
        assert pool.workers[0].process.pid != killed.pid
        assert f"a preprocessing process (pid {killed.pid}) stopped, killed by SIGKILL" in caplog.text
    finally:
        pool.close()


def test_an_image_that_kills_its_reader_twice_is_a_422_and_nothing_else_fails(drawn):
    """Two real worker processes; the image with the marker kills whichever reads it."""
    pool = PreprocessingPool(2, preprocess=faulty.die_on_marker)
    poison = drawn[0].read_bytes() + faulty.MARKER
    try:
        client = TestClient(create_app(*load_any_model(PRETRAINED), ServeOptions(), pool), base_url=BASE)
        bodies = [path.read_bytes() for path in drawn[1:9]]
        responses = asyncio.run(concurrently(client.app, [*bodies[:4], poison, *bodies[4:]]))
        statuses = [response.status_code for response in responses]
        assert statuses == [200] * 4 + [422] + [200] * 4
        assert responses[4].json() == {"error": CRASHED}
        assert client.get("/health").json() == {"status": "ok", "preprocessing_processes": 2, "restarts": 2}
        files = [("files", (path.name, path.read_bytes(), "image/png")) for path in drawn[10:12]]
        files.insert(1, ("files", ("poison.png", poison, "image/png")))
        predictions = client.post("/predict", files=files).json()["predictions"]
        assert [prediction.get("error") for prediction in predictions] == [None, CRASHED, None]
    finally:
        pool.close()


def test_with_every_process_stopped_reads_go_to_threads(drawn):
    pool = PreprocessingPool(1)
    try:

        async def read_while_replacing():
            await pool.network_input(drawn[0].read_bytes(), "auto")  # connected
            dispatcher = await pool._dispatcher
            pool.workers[0].process.kill()
            while dispatcher.channels:  # the loop has seen the worker go
                await asyncio.sleep(0.001)
            return await asyncio.wait_for(pool.network_input(drawn[1].read_bytes(), "auto"), 30)

        assert asyncio.run(read_while_replacing()) == load_digit(drawn[1]).numpy().tobytes()
    finally:
        pool.close()
