"""Outage bookkeeping without a broker: one line when it starts, one when it ends, the state on disk."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from bizstream.settings import KafkaSettings
from bizstream.stream import leftovers, outages


def test_an_outage_is_one_line_and_its_end_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "health.json"
    health = outages.BrokerHealth(KafkaSettings(), state)
    quiet = outages.OutageLog(health)
    source = logging.getLogger("aiokafka.test-source")
    source.addFilter(quiet)
    with caplog.at_level(logging.INFO):
        for _ in range(500):
            source.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connect call failed")
        source.error("Group Coordinator Request failed: GroupCoordinatorNotAvailableError")  # a broker's own error
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and said[0].startswith("Kafka unreachable at 127.0.0.1:9092 (Unable connect to node")
    assert said[1] == "Group Coordinator Request failed: GroupCoordinatorNotAvailableError"
    assert health.suppressed == 499 and json.loads(state.read_text())["kafka"] == "down"

    async def accepts(kafka: KafkaSettings) -> bool:
        return True

    assert asyncio.run(health.check(accepts)) is None  # errors too recent: not over yet
    monkeypatch.setattr(outages, "QUIET_S", 0.0)
    with caplog.at_level(logging.INFO):
        lasted = asyncio.run(health.check(accepts))
    assert lasted is not None and "Kafka reachable again after" in caplog.records[-1].getMessage()
    assert json.loads(state.read_text())["kafka"] == "up" and health.down_since is None



def test_what_a_process_killed_outright_left_is_removed_and_nothing_else(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True).stdout.strip()
    stale_file, stale_folder = tmp_path / f"bizstream-worker@{host}-{gone}.json", tmp_path / f"bizstream-sink@{host}-{gone}-0123abcd"
    kept = [
        tmp_path / f"bizstream-sink@{host}-{os.getpid()}.json",  # a process that runs
        tmp_path / f"bizstream-sink@another-host-{gone}.json",  # another container's: its processes are not ours to see
        tmp_path / "notes.json",  # not a leftover
    ]
    stale_folder.mkdir()
    (stale_folder / "v1").mkdir()
    for path in (stale_file, *kept):
        path.write_text("{}")
    assert sorted(leftovers.remove_orphans(tmp_path)) == sorted([stale_file, stale_folder])
    assert all(path.exists() for path in kept)


def test_an_agents_state_file_goes_when_it_exits(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, pathlib; from bizstream.settings import KafkaSettings; from bizstream.stream import outages; "
        "path = outages.state_file(pathlib.Path(sys.argv[1]), 'bizstream-worker'); outages.install(KafkaSettings(), path); "
        "print(path.exists())"
    )
    ran = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "True" and not list((tmp_path / "health").iterdir())
