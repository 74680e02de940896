"""Helpers for the tests that run `ner-window serve` as a real process (not a test module)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10.0):
    """(status, parsed JSON) over a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body is not None else {})
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


def start_server(model_dir, *options, timeout: float = 20.0) -> tuple[subprocess.Popen, int]:
    """`ner-window serve` in its own process; returns once /healthz answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ner_window.cli", "serve", "--model", str(model_dir),
                             "--port", str(port), *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if request(port, "GET", "/healthz", timeout=1.0)[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    stop_server(proc)
    raise AssertionError("serve did not answer /healthz in time")


def stop_server(proc: subprocess.Popen) -> int:
    """SIGTERM, as a service manager stops it; the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
