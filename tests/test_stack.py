"""The process stack behind ``bizstream up`` and the loop demo: a signal to the parent stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bizstream.stack import Stack


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_parent_stops_the_children(tmp_path: Path, sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a process a script started in the background
    stack = Stack(tmp_path)
    try:
        stack.start([])
        stack.children["sleeper"] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler raises here
    finally:
        stack.stop(timeout_s=5)
        assert stack.children["sleeper"].poll() is not None  # SIGTERMed, not left behind
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # the handlers in place before are back
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(sig, before)
