"""`bizstream demo --loop` (issue 13, item 3): a new user watches the loop work end to end in a few minutes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_loop_demo_retrains_promotes_and_serves_the_better_model(tmp_path: Path) -> None:
    env = child_env()
    env.update(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "bizstream", "demo", "--loop"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout
    assert len(re.findall(r"setfit v\S+: promoted — not worse than the serving model \(", said)) >= 2, said
    summary = re.search(r"before any label ([\d.]+)%, after them ([\d.]+)%", said)
    assert summary is not None, said
    before, after = (float(x) for x in summary.groups())
    assert after > before  # the labels made what serves better on posts no model trained on
    assert re.search(r"most talked-about tickers: [A-Z]+ \d+ posts", said), said  # the tickers agent ran too
    assert "round 3 of 3" in done.stderr and not list((tmp_path / "cache" / "brokers").glob("demo-loop*"))  # cleaned up
