"""Running bizstream's long-running processes together (``bizstream up``, ``bizstream demo --loop``): each a child
process with its log in a folder; a child that exits is reported with the end of its log, never silently ignored;
stopping sends SIGTERM to all and waits, then kills what is left. While children run, SIGTERM and SIGINT to the
parent raise KeyboardInterrupt, so its ``finally: stack.stop()`` runs: a ``kill`` of ``bizstream up`` (or a Ctrl-C
to one started in the background by a script, where SIGINT is ignored by default) leaves no agent behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bizstream.errors import BizstreamError

AGENTS = ("worker", "sink", "monitor", "trainer", "tickers", "dashboard")


class Stack:
    """Child processes ``bizstream <agent>``, one per agent, logging into ``logs``."""

    def __init__(self, logs: Path, env: Mapping[str, str] | None = None) -> None:
        self.logs = logs
        self.env = dict(os.environ if env is None else env)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.handlers: dict[int, object] = {}  # the signal handlers in place before the first start
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, agents: Sequence[str], extra: Mapping[str, Sequence[str]] | None = None) -> None:
        """Start each agent (``extra``: more arguments for some of them)."""
        if not self.handlers and threading.current_thread() is threading.main_thread():
            self.handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        for agent in agents:
            with (self.logs / f"{agent}.log").open("wb") as log:
                command = [sys.executable, "-m", "bizstream", agent, *(extra or {}).get(agent, ())]
                self.children[agent] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def check(self) -> None:
        """BizstreamError naming the first child that exited, with the end of its log."""
        for agent, child in self.children.items():
            if child.poll() is not None:
                raise BizstreamError(f"the {agent} exited with code {child.returncode}; the end of {self.log(agent)}:\n{self.tail(agent)}")

    def log(self, agent: str) -> Path:
        """Where an agent's output goes."""
        return self.logs / f"{agent}.log"

    def tail(self, agent: str, lines: int = 30) -> str:
        """The end of an agent's log."""
        path = self.log(agent)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def wait(self, poll_s: float = 1.0) -> None:
        """Until Ctrl-C (KeyboardInterrupt) or a child exits (BizstreamError)."""
        while True:
            self.check()
            time.sleep(poll_s)

    def stop(self, timeout_s: float = 30.0) -> list[str]:
        """SIGTERM to every child that runs, then wait; kill what has not stopped after ``timeout_s``. Returns the
        names of those that had to be killed."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        killed = []
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                killed.append(name)
        for sig, handler in self.handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self.handlers = {}
        return killed


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
