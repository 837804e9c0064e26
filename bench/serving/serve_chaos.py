"""`lenet serve` under faults and hostile clients, on loopback, bounded in time.

One server (defaults unless told) takes, in turn:
1. wrk at 64 clients on 28x28 PNGs, then on 1 MP drawings, `--seconds` each, once undisturbed and once
   while a preprocessing process is killed (SIGKILL) every 5 s;
2. 200 concurrent 15 MiB uploads (a 1 MP drawing padded to 15 MiB), sent as urllib sends (no 100
   Continue), each retried after Retry-After when refused with 503, up to 5 tries;
3. 2,000 slow connections (a header sent a byte every 2 s; another opened half a second after the server
   closes one) beside wrk's 64 clients on 28x28 PNGs;
4. 20 MiB uploads (over the 16 MiB limit) from urllib, requests and httpx, each expected to read the 413.
Throughout, the resident memory of the server and of its processes (the forkserver and the workers) is
read every 0.1 s. Reported: requests answered, non-2xx by status, p99, restarts, peak memory.

    apt-get install wrk; pip install requests   (bench only)
    python bench/serving/serve_chaos.py --mnist ../shared/data/mnist --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import requests
from serve_load import LUA as LOAD_LUA  # bench/, this script's folder
from serve_load import descendants, free_port, image_sets

# serve_load's script, counting the statuses too (a killed worker must not turn into 5xx answers).
LUA = (
    LOAD_LUA
    + """
local threads = {}
statuses = {}  -- a global: done() reads each thread's with thread:get
setup = function(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do io.write(string.format("status %d %d\\n", status, count)) end
  end
end
"""
)


class Memory:
    """Peak resident memory of a process and its descendants, read every 0.1 s on a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak_total, self.peak_server, self.stop = pid, 0.0, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def now(self) -> tuple[float, float]:
        """(server, server and descendants) in MiB."""
        server = rss_mib(self.pid)
        return server, server + sum(rss_mib(child) for child in descendants(self.pid))

    def reset(self) -> None:
        self.peak_server, self.peak_total = self.now()

    def _watch(self) -> None:
        while not self.stop.wait(0.1):
            server, total = self.now()
            self.peak_server, self.peak_total = max(self.peak_server, server), max(self.peak_total, total)


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def workers(pid: int) -> list[int]:
    """The preprocessing processes: the forkserver's children."""
    return [worker for child in children(pid) for worker in children(child)]


def health(url: str) -> dict:
    return httpx.get(f"{url}health", timeout=10).json()


def wrk(port: int, seconds: float, script: Path, files: list[Path]) -> dict:
    command = [
        "wrk",
        "-t1",
        "-c64",
        f"-d{round(seconds)}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/predict",
        "--",
        *map(str, files),
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"wrk failed: {finished.stderr.strip()[-500:] or finished.stdout.strip()[-500:]}")
    output = finished.stdout
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
    statuses = {
        int(code): int(count) for code, count in re.findall(r"^status (\d+) (\d+)$", output, re.MULTILINE)
    }
    errors = {kind: int(n) for kind, n in re.findall(r"(connect|read|write|timeout) (\d+)", output) if int(n)}
    return {
        "answered": sum(statuses.values()),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p99_ms": float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit],
        "non_2xx": {code: n for code, n in statuses.items() if not 200 <= code < 300},
        "socket_errors": errors,
    }


def kill_every(pid: int, period_s: float, stop: threading.Event, killed: list[int]) -> None:
    rng = random.Random(0)
    while not stop.wait(period_s):
        alive = workers(pid)
        if alive:
            victim = rng.choice(alive)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)


def load_runs(
    server: subprocess.Popen, port: int, url: str, seconds: float, script: Path, sets, memory, rounds: int
) -> list:
    """wrk on each image set, undisturbed and with kills, `rounds` times (which goes first alternates)."""
    rows = []
    for round_number in range(rounds):
        for kind, files in sets.items():
            for kills in (False, True) if round_number % 2 == 0 else (True, False):
                restarts_before = health(url)["restarts"]
                memory.reset()
                stop, killed = threading.Event(), []
                killer = threading.Thread(target=kill_every, args=(server.pid, 5.0, stop, killed))
                if kills:
                    killer.start()
                measured = wrk(port, seconds, script, files)
                stop.set()
                if kills:
                    killer.join()
                time.sleep(0.5)
                measured |= {
                    "images": kind,
                    "kills": len(killed),
                    "restarts": health(url)["restarts"] - restarts_before,
                    "peak_mib": round(memory.peak_total),
                    "peak_server_mib": round(memory.peak_server),
                }
                rows.append(measured)
                print(json.dumps(measured), flush=True)
    for kind in sets:
        quiet = statistics.median(row["rps"] for row in rows if row["images"] == kind and not row["kills"])
        killed = statistics.median(row["rps"] for row in rows if row["images"] == kind and row["kills"])
        print(f"{kind}: median req/s {quiet:.1f} undisturbed, {killed:.1f} with kills ({killed / quiet:.0%})")
    return rows


def upload(port: int, body: bytes) -> tuple[int | str, float]:
    """POST `body` on a fresh connection, the way urllib does (no 100 Continue); (status, Retry-After)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
            connection.sendall(
                f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            connection.sendall(memoryview(body))
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    except OSError as error:
        return type(error).__name__, 1.0
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
    retry = re.search(r"(?im)^retry-after: *(\d+)", head)
    return int(head.split()[1]), float(retry.group(1)) if retry else 1.0


def big_uploads(port: int, body: bytes, count: int = 200, tries: int = 5) -> dict:
    """`count` concurrent uploads of `body` (a thread each: the kernel copies, not Python), each retried
    after Retry-After on 503."""
    first: dict = {}
    final: dict = {}
    attempts = [0]
    lock = threading.Lock()

    def one() -> None:
        for attempt in range(tries):
            status, retry_after = upload(port, body)
            with lock:
                attempts[0] += 1
                if attempt == 0:
                    first[status] = first.get(status, 0) + 1
            if status != 503:
                break
            time.sleep(retry_after * (0.5 + random.random()))
        with lock:
            final[status] = final.get(status, 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "first_answer": first,
        "final_answer": final,
        "attempts": attempts[0],
        "seconds": round(time.perf_counter() - started, 1),
    }


async def slow_clients(port: int, count: int, stop: asyncio.Event, tally: dict[str, int]) -> None:
    """`count` connections that send a request header a byte every 2 s; reopened when the server closes one."""

    async def one(index: int) -> None:
        await asyncio.sleep(index * 0.002)  # opened over 4 s, not as one burst
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                tally["opened"] += 1
                writer.write(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while not stop.is_set():
                    writer.write(b"X")
                    await writer.drain()
                    try:
                        answer = await asyncio.wait_for(reader.read(200), 2)
                    except TimeoutError:
                        continue
                    status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed"
                    tally[status] = tally.get(status, 0) + 1
                    break
                writer.close()
            except OSError as error:
                tally[type(error).__name__] = tally.get(type(error).__name__, 0) + 1
            await asyncio.sleep(0.5)  # then open another: the bench's own CPU stays small

    await asyncio.gather(*(one(index) for index in range(count)))


def beside_slow_clients(
    port: int, seconds: float, script: Path, files: list[Path], count: int = 2000
) -> dict:
    tally = {"opened": 0}
    result: dict = {}

    async def run() -> None:
        stop = asyncio.Event()
        clients = asyncio.ensure_future(slow_clients(port, count, stop, tally))
        await asyncio.sleep(5)  # all open
        result.update(await asyncio.to_thread(wrk, port, seconds, script, files))
        stop.set()
        await clients

    asyncio.run(run())
    return result | {"slow_connections": tally}


def oversize(url: str, repeats: int = 5) -> dict[str, dict[str, int]]:
    """20 MiB bodies (the limit is 16): what urllib, requests and httpx read back."""
    body = b"\0" * (20 * 2**20)

    def by_urllib() -> str:
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"{url}predict", data=body, headers={"Content-Type": "image/png"})
            )
        except urllib.error.HTTPError as error:
            return f"{error.code} {json.loads(error.read())['error'][:12]}"
        return "2xx"

    def by(call) -> str:
        answer = call()
        return f"{answer.status_code} {answer.json()['error'][:12]}"

    clients = {
        "urllib": by_urllib,
        "requests": lambda: by(lambda: requests.post(f"{url}predict", data=body, timeout=30)),
        "httpx": lambda: by(lambda: httpx.post(f"{url}predict", content=body, timeout=30)),
    }
    seen: dict[str, dict[str, int]] = {}
    for name, client in clients.items():
        for _ in range(repeats):
            try:
                outcome = client()
            except Exception as error:  # noqa: BLE001 - what the client saw is the measurement
                outcome = f"{type(error).__name__}: {error}"[:60]
            seen.setdefault(name, {})[outcome] = seen.setdefault(name, {}).get(outcome, 0) + 1
    return seen


def padded_drawing(path: Path, size: int) -> bytes:
    data = path.read_bytes()
    return data + b"\0" * (size - len(data))  # a PNG reader stops at IEND: the padding is never decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--serve-args", default="", help="extra `lenet serve` options, one string")
    parser.add_argument("--parts", default="load,big,slow,oversize", help="which runs, in order")
    parser.add_argument("--rounds", type=int, default=1, help="load runs with and without kills, alternating")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))  # 2,000 slow connections
    scratch = Path(tempfile.mkdtemp(prefix="lenet-chaos-"))
    sets = image_sets(scratch, args.mnist)
    script = scratch / "post.lua"
    script.write_text(LUA)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "lenet_cli", "serve", "--port", str(port), *args.serve_args.split()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=scratch,
    )
    try:
        server.stdout.readline()
        memory = Memory(server.pid)
        for files in sets.values():  # warm up
            wrk(port, 3, script, files)
        idle = memory.now()
        print(json.dumps({"idle_server_mib": round(idle[0]), "idle_total_mib": round(idle[1])}), flush=True)
        results: dict = {}
        parts = args.parts.split(",")
        if "load" in parts:
            results["load"] = load_runs(server, port, url, args.seconds, script, sets, memory, args.rounds)
        if "big" in parts:
            memory.reset()
            body = padded_drawing(sets["1 MP drawing"][0], 15 * 2**20)
            results["big_uploads"] = big_uploads(port, body) | {
                "peak_mib": round(memory.peak_total),
                "peak_server_mib": round(memory.peak_server),
            }
            print(json.dumps(results["big_uploads"]), flush=True)
        if "slow" in parts:
            memory.reset()
            results["slow"] = beside_slow_clients(port, args.seconds, script, sets["28x28 PNG"]) | {
                "peak_mib": round(memory.peak_total),
                "peak_server_mib": round(memory.peak_server),
            }
            print(json.dumps(results["slow"]), flush=True)
        if "oversize" in parts:
            results["oversize"] = oversize(url)
            print(json.dumps(results["oversize"]), flush=True)
        results["health"] = health(url)
        print(json.dumps(results["health"]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = server.stderr.read()
    ready = sorted(float(seconds) for seconds in re.findall(r"ready in ([\d.]+) s", log))
    print(
        f"server log: {len(log.splitlines())} lines; restart lines: {log.count('stopped, killed by')}; "
        f"replacements ready in {ready[len(ready) // 2] if ready else 0:.2f} s (median), "
        f"{ready[-1] if ready else 0:.2f} s at most; other lines: "
        f"{[line for line in log.splitlines() if 'preprocessing process' not in line]}"
    )


if __name__ == "__main__":
    main()
