"""`lenet serve` keeps answering whatever one request does: a slow read of a number never delays a digit's
predict, reads past their bound are refused, an unexpected error in a worker is that request's 500 alone,
and refused connections give their file descriptors back."""

import asyncio
import io
import os
import resource
import signal
import socket
import threading
import time

import faulty
import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import start_serve
from PIL import Image

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import PRETRAINED
from lenet_cli.serving import read_route
from lenet_cli.serving.app import create_app
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.read_route import MAX_READS_ACCEPTED
from lenet_cli.serving.workers import PreprocessingPool

BASE = "http://127.0.0.1:8000"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png() -> bytes:
    image = Image.new("L", (28, 28), 0)
    image.paste(255, (12, 4, 16, 24))
    return png(image)


def number_png() -> bytes:
    image = Image.new("L", (120, 40), 0)
    for left in (10, 50, 90):
        image.paste(255, (left, 8, left + 4, 32))
    return png(image)


@pytest.fixture(scope="module")
def threads():
    pool = PreprocessingPool(0)
    yield pool
    pool.close()


@pytest.fixture
def held_reads(monkeypatch):
    """Reads of numbers that start, then wait until the test lets them go (as a slow image would)."""
    started, release = threading.Semaphore(0), threading.Event()
    real = read_route.read_named

    def slow_read_named(*arguments):
        started.release()
        release.wait(timeout=60)  # never left hanging if the test fails first
        return real(*arguments)

    monkeypatch.setattr(read_route, "read_named", slow_read_named)
    yield started, release
    release.set()


def make_app(pool):
    return create_app(*load_any_model(PRETRAINED), ServeOptions(), pool)


def test_a_predict_is_answered_while_slow_reads_are_in_flight(threads, held_reads):
    started, release = held_reads
    app = make_app(threads)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client:
            reads = [asyncio.ensure_future(client.post("/read", content=number_png())) for _ in range(4)]
            while not started.acquire(blocking=False):  # the first read is on the read thread
                await asyncio.sleep(0.01)
            predicted = await asyncio.wait_for(client.post("/predict", content=digit_png()), 30)
            in_flight = sum(not read.done() for read in reads)
            release.set()
            return predicted, in_flight, await asyncio.gather(*reads)

    predicted, in_flight, reads = asyncio.run(scenario())
    assert predicted.status_code == 200 and predicted.json()["predictions"][0]["label"] == 1
    assert in_flight == 4  # every read was still held while the predict was answered
    assert [read.status_code for read in reads] == [200] * 4


def test_reads_past_the_bound_are_refused_with_retry_after(threads, held_reads):
    started, release = held_reads
    app = make_app(threads)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client:
            reads = [
                asyncio.ensure_future(client.post("/read", content=number_png()))
                for _ in range(MAX_READS_ACCEPTED)
            ]
            while app.state.reads.accepted < MAX_READS_ACCEPTED:
                await asyncio.sleep(0.01)
            refused = await client.post("/read", content=number_png())
            release.set()
            return refused, await asyncio.gather(*reads)

    refused, reads = asyncio.run(scenario())
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert refused.json() == {
        "error": f"the server is busy ({MAX_READS_ACCEPTED} numbers are being read or waiting "
        f"(at most {MAX_READS_ACCEPTED})); try again shortly"
    }
    assert all(read.status_code == 200 for read in reads)


ERROR_500 = {"error": "unexpected ValueError: a fault injected by the test"}


def test_an_unexpected_error_on_a_thread_is_that_requests_500_and_the_server_goes_on():
    pool = PreprocessingPool(0, preprocess=faulty.raise_on_marker)
    try:
        client = TestClient(make_app(pool), base_url=BASE, raise_server_exceptions=False)
        failed = client.post("/predict", content=digit_png() + faulty.MARKER)
        assert (failed.status_code, failed.json()) == (500, ERROR_500)
        assert client.post("/predict", content=digit_png()).json()["predictions"][0]["label"] == 1
    finally:
        pool.close()


def test_an_unexpected_error_in_a_worker_process_is_that_requests_500_and_the_worker_goes_on():
    pool = PreprocessingPool(1, preprocess=faulty.raise_on_marker)
    try:
        with TestClient(make_app(pool), base_url=BASE, raise_server_exceptions=False) as client:
            worker = pool.workers[0].process.pid
            files = [
                ("files", ("a.png", digit_png(), "image/png")),
                ("files", ("b.png", digit_png() + faulty.MARKER, "image/png")),
            ]  # two images: read in the worker process
            failed = client.post("/predict", files=files)
            assert (failed.status_code, failed.json()) == (500, ERROR_500)
            files[1] = ("files", ("b.png", digit_png(), "image/png"))
            answered = client.post("/predict", files=files).json()["predictions"]
            assert [prediction["label"] for prediction in answered] == [1, 1]
            assert pool.restarts == 0 and pool.workers[0].process.pid == worker
    finally:
        pool.close()


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_open_files(pid: int, expected: int | None = None, within_s: float = 10) -> int:
    """The server's open file count once it stops changing (or reaches `expected`), within `within_s`."""
    deadline, last = time.monotonic() + within_s, -1
    while time.monotonic() < deadline:
        count = open_files(pid)
        if count == expected or (expected is None and count == last):
            return count
        last = count
        time.sleep(0.2)
    return open_files(pid)


@pytest.fixture
def many_files():
    """Room in this process for the test's own sockets (a CI runner may allow only 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/<pid>/fd")
def test_a_thousand_refused_connections_give_their_descriptors_back_within_5_s(tmp_path, many_files):
    arguments = ["--workers", "0", "--max-connections", "4", "--request-timeout", "60"]
    process, url = start_serve(arguments, tmp_path)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    connections = []
    try:
        assert httpx.get(f"{url}health").status_code == 200
        base = settled_open_files(process.pid)
        head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100\r\n\r\n0123"
        for _ in range(4):  # the cap: each a request in progress, its body still coming
            connections.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            connections[-1].sendall(head.encode())
        assert settled_open_files(process.pid, base + 4) == base + 4
        request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        refused = []
        for _ in range(1000):  # each sends its request and neither reads nor closes
            refused.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            refused[-1].sendall(request)
        connections += refused
        assert settled_open_files(process.pid, base + 4, within_s=5) == base + 4
        statuses = {answer.recv(64).split(b" ")[1] for answer in refused}
        assert statuses == {b"503"}  # each could read its refusal
    finally:
        for connection in connections:
            connection.close()
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_numbers_are_read_in_a_reading_process_and_one_killed_is_replaced(threads):
    pool = PreprocessingPool(1)
    app = make_app(pool)
    try:
        client = TestClient(app, base_url=BASE)
        in_process = client.post("/read", content=number_png())
        on_thread = TestClient(make_app(threads), base_url=BASE).post("/read", content=number_png())
        assert in_process.status_code == 200 and in_process.json() == on_thread.json()
        reading = app.state.reads.start().submit(os.getpid).result(timeout=60)
        assert reading not in (os.getpid(), pool.workers[0].process.pid)  # a process of its own
        os.kill(reading, signal.SIGKILL)
        killed = client.post("/read", content=number_png())
        assert (killed.status_code, killed.json()) == (
            500,
            {"error": "the reading process stopped; try again"},
        )
        assert client.post("/read", content=number_png()).json() == on_thread.json()
    finally:
        app.state.reads.close()
        pool.close()
