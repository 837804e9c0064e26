"""`lenet serve` facing real clients over real sockets: refusals the client can read (urllib, httpx),
memory bounded in bytes, slow and surplus connections, the --collect cap, and a worker killed outright."""

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import PRETRAINED
from lenet_cli.serving.app import create_app
from lenet_cli.serving.connections import ConnectionLimits, protocol_with
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.uploads import MAX_BODY_BYTES
from lenet_cli.serving.workers import PreprocessingPool

TOO_LONG = {"error": f"the body is over the {MAX_BODY_BYTES // 2**20} MiB limit"}


def digit_png() -> bytes:
    image = Image.new("L", (28, 28), 0)
    image.paste(255, (12, 4, 16, 24))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def threads():
    pool = PreprocessingPool(0)
    yield pool
    pool.close()


class LiveServer:
    """The app on a real uvicorn server (a thread of this process), with lenet serve's connection rules."""

    def __init__(self, pool, limits: ConnectionLimits, **options):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        app = create_app(*load_any_model(PRETRAINED), ServeOptions(port=self.port, **options), pool)
        config = uvicorn.Config(
            app, http=protocol_with(limits), timeout_keep_alive=1, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}"

    def raw(self, request: bytes) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        connection.sendall(request)
        return connection

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(threads):
    server = LiveServer(
        threads, ConnectionLimits(request_timeout_s=1.5, max_connections=20), upload_memory_mib=24
    )
    yield server
    server.stop()


def read_answer(connection: socket.socket) -> tuple[int, dict]:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_an_oversize_body_is_answered_413_readably_by_urllib_and_httpx(live):
    body = b"\0" * (20 * 2**20)  # sent whole, without waiting for 100 Continue
    request = urllib.request.Request(f"{live.url}/predict", data=body, headers={"Content-Type": "image/png"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # Connection: close
    assert (refused.value.code, json.loads(refused.value.read())) == (413, TOO_LONG)
    with httpx.Client(base_url=live.url, timeout=30) as client:  # keep-alive: the connection is reused
        for _ in range(2):
            answer = client.post("/predict", content=body)
            assert (answer.status_code, answer.json()) == (413, TOO_LONG)
        assert client.post("/predict", content=digit_png()).status_code == 200
    chunked = httpx.post(f"{live.url}/predict", content=iter([body[: 2**20]] * 20), timeout=30)
    assert (chunked.status_code, chunked.json()) == (413, TOO_LONG)


def test_past_the_byte_budget_a_request_gets_503_before_its_body_is_read(live):
    size = 15 * 2**20
    holding = live.raw(
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Length: {size}\r\n\r\n".encode()
    )
    holding.sendall(b"\0" * 2**20)  # 15 MiB of the 24 MiB budget taken while it arrives
    time.sleep(0.3)
    refused = live.raw(
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Length: {size}\r\n"
        "Connection: close\r\n\r\n".encode()
    )  # not one byte of its body sent: the answer comes anyway
    status, document = read_answer(refused)
    assert status == 503 and document["error"].startswith(
        "the server is receiving or holding 15 MiB of uploads"
    )
    holding.sendall(b"\0" * (size - 2**20))  # the first finishes (an unreadable image) ...
    assert read_answer(holding)[0] == 422
    with httpx.Client(base_url=live.url) as client:  # ... and gives its bytes back
        assert client.post("/predict", content=digit_png() + b"\0" * size).status_code == 200


def test_a_body_of_no_declared_length_is_counted_as_it_arrives(live):
    size = 15 * 2**20
    holding = live.raw(
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Length: {size}\r\n\r\n".encode()
    )
    time.sleep(0.3)  # 15 MiB of the 24 MiB budget taken
    chunked = httpx.post(f"{live.url}/predict", content=iter([b"\0" * 2**20] * 12), timeout=30)
    assert chunked.status_code == 503 and chunked.headers["retry-after"] == "1"
    holding.close()


def test_an_idle_keep_alive_connection_is_closed(live):
    idle = live.raw(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n\r\n".encode())
    assert idle.recv(4096).startswith(b"HTTP/1.1 200 OK")
    started = time.monotonic()
    assert idle.recv(4096) == b""  # closed by the server (timeout_keep_alive=1 here)
    assert time.monotonic() - started < 5


def test_a_slow_header_is_cut_off_with_408(live):
    started = time.monotonic()
    slow = live.raw(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n".encode())
    status, document = read_answer(slow)
    assert (status, document) == (408, {"error": "the request did not arrive within 1.5 s"})
    assert 1.5 <= time.monotonic() - started < 4
    silent = socket.create_connection(("127.0.0.1", live.port), timeout=10)  # connects, never sends
    assert read_answer(silent)[0] == 408


def test_a_body_that_stops_arriving_is_cut_off_with_408(live):
    started = time.monotonic()
    stalled = live.raw(
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Length: 100000\r\n\r\n".encode()
        + b"\0" * 1024  # a second more for the KiB received, then nothing
    )
    assert read_answer(stalled) == (408, {"error": "the request did not arrive within 1.5 s"})
    assert 2.5 <= time.monotonic() - started < 6


def test_at_the_connection_limit_a_new_client_takes_an_idle_ones_place_or_gets_503(threads):
    live = LiveServer(threads, ConnectionLimits(request_timeout_s=60, max_connections=20))
    try:
        at_the_limit(live)
    finally:
        live.stop()


def at_the_limit(live):
    idle = [live.raw(b"") for _ in range(20)]  # connected, no request: the limit of 20 is reached
    time.sleep(0.3)
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/health").status_code == 200  # took the place of the oldest idle one
    [evicted] = select.select(idle, [], [], 10)[0]  # the one waiting longest (here: all alike)
    assert read_answer(evicted) == (
        408,
        {"error": "the request was still arriving when the server, at its connection limit, needed room"},
    )
    for connection in idle:
        connection.close()
    head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Length: 100\r\n\r\n0123456789"
    busy = [live.raw(head.encode()) for _ in range(20)]  # each a request in progress, its body coming
    time.sleep(0.5)
    surplus = live.raw(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n\r\n".encode())
    status, document = read_answer(surplus)
    assert status == 503 and document["error"].startswith("the server has 20 connections open, its limit")
    for connection in busy:
        connection.close()
    time.sleep(0.3)
    assert httpx.get(f"{live.url}/health").status_code == 200


def test_collect_stops_at_its_limit_and_says_so(threads, tmp_path):
    client = TestClient(
        create_app(*load_any_model(PRETRAINED), ServeOptions(collect_dir=tmp_path, collect_limit=2), threads),
        base_url="http://127.0.0.1:8000",
    )
    for _ in range(2):
        assert client.post("/collect?label=4", content=digit_png()).status_code == 200
    full = client.post("/collect?label=4", content=digit_png())
    assert full.status_code == 507
    assert full.json() == {
        "error": f"{tmp_path / '4'} holds 2 drawings, the limit (--collect-limit); no more are saved for this class"
    }
    assert client.post("/collect?label=5", content=digit_png()).status_code == 200
    assert client.get("/collect").json()["limit"] == 2
    assert client.post("/collect?label=5", content=b"\x89PNG\r\n\x1a\n" + b"\0" * 2**20).status_code == 413
    assert sorted(path.parent.name for path in tmp_path.rglob("*.png")) == ["4", "4", "5"]


@pytest.mark.slow
def test_lenet_serve_replaces_a_killed_preprocessing_process(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "lenet_cli", "serve", "--port", "0", "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        url = process.stdout.readline().split(" at ")[1].split()[0]
        forkserver = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        workers = preprocessing_processes(forkserver, process.pid)
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}health").json()["restarts"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{url}health").json() == {
            "status": "ok",
            "preprocessing_processes": 2,
            "restarts": 1,
        }
        files = [("files", (f"{index}.png", digit_png(), "image/png")) for index in range(4)]
        answer = httpx.post(f"{url}predict", files=files, timeout=30).json()
        assert [prediction["label"] for prediction in answer["predictions"]] == [1, 1, 1, 1]
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    log = process.stderr.read()
    assert f"a preprocessing process (pid {workers[0]}) stopped, killed by SIGKILL" in log


def preprocessing_processes(forkserver: list[str], server: int) -> list[str]:
    """The forkserver's children but the reading process (for /read), which runs at a lower priority:
    waited for until all three are up and the reading process has lowered its own."""
    deadline = time.monotonic() + 30
    while True:
        children = subprocess.run(
            ["pgrep", "-P", ",".join(forkserver)], capture_output=True, text=True
        ).stdout.split()
        server_priority = os.getpriority(os.PRIO_PROCESS, server)
        workers = [pid for pid in children if os.getpriority(os.PRIO_PROCESS, int(pid)) == server_priority]
        if (len(children) == 3 and len(workers) == 2) or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)
