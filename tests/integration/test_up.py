"""`bizstream up` (issue 14, item 5): the whole local stack starts, serves its dashboard, and stops cleanly on
Ctrl-C; a process that dies is reported, not silently ignored."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from bizstream.stream.broker import free_port
from tests.conftest import ROOT, child_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def children(pid: int) -> list[psutil.Process]:
    """The bizstream processes under ``pid``. An agent's own short-lived helpers (the worker's ``tesseract --version``)
    can be caught between exiting and being reaped: a zombie has no command line, so it is skipped."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "bizstream" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def test_up_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    env = child_env()
    port = free_port()
    env.update(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_BROKER__PORT=str(free_port()),
               BIZSTREAM_BROKER__CONTROLLER_PORT=str(free_port()), BIZSTREAM_SETFIT__STARTER="false")  # fmt: skip
    env["BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{env['BIZSTREAM_BROKER__PORT']}"
    up = subprocess.Popen([sys.executable, "-m", "bizstream", "up", "--dashboard-port", str(port)], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=3) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("the dashboard never answered")
        started = children(up.pid)
        agents = {c.cmdline()[3] for c in started if len(c.cmdline()) > 3}
        assert {"worker", "sink", "monitor", "trainer", "tickers", "dashboard"} <= agents, agents
        health, wanted = tmp_path / "cache" / "health", {f"bizstream-{a}" for a in ("worker", "sink", "monitor", "trainer", "tickers")}
        while time.monotonic() < deadline and not {f.name.partition("@")[0] for f in health.glob("*.json")} >= wanted:
            time.sleep(0.5)  # each agent writes its health file as it starts
        assert {f.name.partition("@")[0] for f in health.glob("*.json")} >= wanted
        up.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = up.communicate(timeout=120)
    finally:
        if up.poll() is None:  # failed: leave no agent or broker behind to slow the rest of the suite
            for child in children(up.pid):
                child.kill()
            up.kill()
    assert up.returncode == 0, err.decode()[-2000:]
    assert f"dashboard: http://127.0.0.1:{port}" in out.decode()
    assert "stopped worker, sink, monitor, trainer, tickers, dashboard, Kafka" in err.decode()
    assert not [c for c in started if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]  # every agent stopped
    assert not list(health.glob("*.json"))  # and took its health file with it
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]  # and Kafka
