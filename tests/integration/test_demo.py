"""`bizstream demo`, the plain one: Kafka started by the project, a worker, the sample posts in, every score out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bizstream.stream.broker import free_port
from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.integration


def test_the_plain_demo_scores_every_sample_post_and_stops_what_it_started(tmp_path: Path) -> None:
    env = child_env()
    port = free_port()
    env.update(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_BROKER__PORT=str(port),
               BIZSTREAM_BROKER__CONTROLLER_PORT=str(free_port()), BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
               BIZSTREAM_SETFIT__STARTER="false", COLUMNS="200")  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bizstream", "demo"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stopping Kafka" in done.stderr
    summary = [line for line in done.stdout.splitlines() if line.startswith("│ 405")]
    assert summary and summary[0].split("│")[2].strip() == "405", done.stdout[-2000:]  # 405 posts (36 memes), 405 scored
