"""Promotion by hand is announced like the trainer's (issue 13, item 2): workers and dashboards follow the models
topic, so `models promote` and `models rollback` say what they did there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.stream import topics
from bizstream_plugins.setfit.training import refit_head
from tests.conftest import ROOT
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def test_promote_and_rollback_are_announced(cluster: Cluster, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    source, first, split = trained
    registry = ModelRegistry(tmp_path / "registry")
    shutil.copytree(source.root, registry.root, symlinks=True)
    registry.promote(first.version)
    second = refit_head(registry, split, parent=first.version, seed=1)
    env = cluster.env(BIZSTREAM_SETFIT__REGISTRY=str(registry.root), BIZSTREAM_STORE__PATH=str(tmp_path / "labels.db"))

    def bizstream(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "bizstream", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert f"{second.version} serves now" in bizstream("models", "promote", second.version)
    assert f"{first.version} serves now" in bizstream("models", "rollback")
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b"".join(orjson.dumps({"text": t, "label": y}) + b"\n" for t, y in zip(split.train_texts, split.train_labels, strict=True)))
    bizstream("labels", "import", str(labels))
    assert "not promoted (kept aside on request" in bizstream("train", "setfit", "--fast", "--no-promote")  # a training is announced too
    events = [orjson.loads(m.value) for m in cluster.wait_for(topics.MODELS, lambda m: len(m) >= 3, timeout_s=30)]
    assert [(e["version"], e["promoted"], e["reason"]) for e in events[:2]] == [(second.version, True, "manual"), (first.version, True, "manual")]
    assert "promoted by hand" in events[0]["why"] and f"rolled back by hand from {second.version}" in events[1]["why"]
    assert (events[2]["promoted"], events[2]["reason"], events[2]["analyzer"]) == (False, "manual", "setfit")
    assert events[2]["version"] not in (first.version, second.version) and "accuracy" in events[2]["metrics"]
    assert "measured on" in bizstream("models", "list")
