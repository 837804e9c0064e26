"""Teach's `lenet train` child supervised: a child that crashes, is killed, hangs, floods stderr, writes
progress that cannot be read, or outlives a stop is ended (with all it started) and reported, and the
state leaves RUNNING with a message; a stop during a run's start leaves nothing behind. A fake `lenet`
stands in for the child (TeachSettings.child_command), so each case takes a second or two."""

import sys
import threading
import time

import pytest
from test_teach import make_app, threads, wait_for_end  # noqa: F401 - threads is a fixture

from lenet_cli.serving import teach_steps
from lenet_cli.serving.teach_child import ChildLimits
from lenet_cli.serving.teach_routes import stop_teaching

FAKE_LENET = """
import json, os, signal, subprocess, sys, time
mode, arguments = sys.argv[1], sys.argv[2:]
run_dir = os.path.join(arguments[arguments.index("--checkpoint-dir") + 1], "run-1")
os.makedirs(run_dir, exist_ok=True)
def say(line):
    sys.stderr.write(line + "\\n")
    sys.stderr.flush()
say(json.dumps({"progress": {"run_dir": run_dir, "step": 0, "steps": 10}}))
if mode == "error":
    say("Error: the disk is full")
    sys.exit(1)
if mode == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "flood":
    while True:
        say("x" * 1000)
if mode == "garbled":
    say('{"progress": "not a document"}')
if mode == "grandchild":
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    say(json.dumps({"progress": {"step": 1, "steps": 10, "helper": helper.pid}}))
    print(helper.pid, file=open(os.path.join(run_dir, "helper.pid"), "w"), flush=True)
time.sleep(600)  # hang
"""


@pytest.fixture
def fake_teacher(trained_checkpoint, threads, tmp_path, tiny_mnist):  # noqa: F811
    """An app whose Teach runs the fake `lenet` in MODE, with small limits: (app, client, start(mode))."""
    script = tmp_path / "fake_lenet.py"
    script.write_text(FAKE_LENET)
    app, client = make_app(trained_checkpoint, threads, tmp_path, tiny_mnist)
    settings = app.state.teacher.settings
    settings.child_limits = ChildLimits(silence_s=1.0, max_stderr_bytes=2**20, exit_s=5.0)

    def start(mode):
        settings.child_command = [sys.executable, str(script), mode]
        answer = client.post("/teach")
        assert answer.status_code == 202, answer.json()

    yield app, client, start
    stop_teaching(app)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("error", "training failed: the disk is full"),
        ("killed", "training failed: killed by SIGKILL"),
        ("hang", "training was ended: it said nothing for 1 s"),
        ("flood", "training was ended: it wrote more than 1 MiB to stderr"),
        (
            "garbled",
            "training was ended: its output could not be read (TypeError: string indices must be integers"
            ", not 'str')",
        ),
    ],
)
def test_a_failing_child_is_ended_and_reported_and_teaching_can_start_again(fake_teacher, mode, error):
    app, client, start = fake_teacher
    start(mode)
    state = wait_for_end(client, timeout_s=60)
    assert (state["state"], state["error"]) == ("failed", error)
    child = app.state.teacher.child
    assert child.process.poll() is not None  # ended, not left behind
    assert client.post("/teach").status_code == 202  # the page may try again


def test_a_child_and_what_it_started_do_not_outlive_a_stop(fake_teacher, tmp_path):
    app, client, start = fake_teacher
    app.state.teacher.settings.child_limits = ChildLimits(silence_s=600)
    start("grandchild")
    helper_file = tmp_path / "ck" / "run-1" / "helper.pid"
    deadline = time.monotonic() + 60
    while not (helper_file.is_file() and helper_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    helper = int(helper_file.read_text())
    stop_teaching(app)
    child = app.state.teacher.child
    assert child.process.poll() is not None
    assert not process_exists(helper)  # the child's whole group was ended
    assert client.get("/teach").json()["state"] == "stopped"
    assert not (tmp_path / "ck" / "run-1").exists()  # nothing of a stopped run is kept
    refused = client.post("/teach")
    assert (refused.status_code, refused.json()) == (503, {"error": "the server is stopping"})


def process_exists(pid: int) -> bool:
    """Alive and not a zombie (a killed grandchild waits for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stop_during_a_runs_start_starts_no_child(fake_teacher, monkeypatch, tmp_path):
    app, client, start = fake_teacher
    splitting, go_on = threading.Event(), threading.Event()
    real_split = teach_steps.split_drawings

    def held_split(*arguments):
        splitting.set()
        go_on.wait(timeout=60)
        return real_split(*arguments)

    monkeypatch.setattr(teach_steps, "split_drawings", held_split)
    start("hang")
    assert splitting.wait(timeout=60)
    stopper = threading.Thread(target=stop_teaching, args=(app,))
    stopper.start()
    while not app.state.teacher.stopping.is_set():
        time.sleep(0.01)
    go_on.set()  # the run goes on to start its child, after the stop was asked
    stopper.join(timeout=60)
    assert app.state.teacher.child is None  # no child was started
    assert client.get("/teach").json()["state"] == "stopped"
    assert [path for path in (tmp_path / "ck").rglob("*") if path.is_file()] == []
