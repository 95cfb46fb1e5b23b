"""The starter model: shipped with its provenance, installed on first use, served fast, and a head refit starts from it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.records import Post, Sentiment
from bizstream.testing import check_analyzer
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer
from bizstream_plugins.setfit.model import Head
from bizstream_plugins.setfit.starter import HEAD_FILE, INFO_FILE, VERSION, install_starter
from bizstream_plugins.setfit.training import refit_head
from tests.conftest import ROOT, child_env, separable


def test_the_shipped_starter_records_where_it_came_from_and_is_intact() -> None:
    info = json.loads(INFO_FILE.read_text())
    assert info["head_sha256"] == hashlib.sha256(HEAD_FILE.read_bytes()).hexdigest()
    assert info["sources"] and all(s["licence"] == "MIT" and len(s["sha256"]) == 64 and s["train_examples"] > 0
                                   for s in info["sources"])  # fmt: skip
    assert all(0.0 < v <= 1.0 for k, v in info["metrics"].items() if k.endswith("_accuracy"))


def test_first_use_installs_it_as_v0_and_serves_it_on_int8_onnx(tmp_path: Path) -> None:
    analyzer = SetfitAnalyzer(tmp_path / "registry")  # an empty registry, the starter on (the default)
    analyzer.load()
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.serving() == VERSION == analyzer.version and analyzer.serving_runtime == "onnx-int8"
    metadata = registry.metadata(VERSION)
    assert metadata.kind == "starter" and metadata.params["sources"][0]["licence"] == "MIT"
    check_analyzer(analyzer, load=False)
    up, down = analyzer.analyze([Post(id="u", text="$NVDA shares soar to a record high after earnings beat", thread_id="u"),
                                 Post(id="d", text="$TSLA stock plunges after deliveries miss, analysts cut targets", thread_id="d")])  # fmt: skip
    assert up is not None and down is not None and up.label is Sentiment.BULLISH and down.label is Sentiment.BEARISH
    # Installed once: a second analyzer (another worker) finds it there.
    again = SetfitAnalyzer(tmp_path / "registry")
    again.load()
    assert [m.version for m in registry.list()] == [VERSION]


def test_it_never_replaces_a_model_that_serves(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    source, metadata, _ = trained
    registry = ModelRegistry(tmp_path / "registry")
    shutil.copytree(source.root, registry.root, symlinks=True)
    registry.promote(metadata.version)
    assert install_starter(registry) is None and registry.serving() == metadata.version
    assert VERSION not in {m.version for m in registry.list()}


def test_train_setfit_fast_works_from_the_starter_right_after_labels_import(tmp_path: Path) -> None:
    env = child_env()
    env.update(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_TRACKING__ENABLED="false", COLUMNS="200")
    texts, labels = separable()
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_bytes(b"".join(orjson.dumps({"text": t, "label": y}) + b"\n" for t, y in zip(texts, labels, strict=True)))

    def bizstream(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "bizstream", *args], env=env, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout + result.stderr

    bizstream("labels", "import", str(labels_file))
    out = bizstream("train", "setfit", "--fast")
    registry = ModelRegistry(tmp_path / "cache" / "models" / "setfit")
    (refit,) = [m for m in registry.list() if m.version != VERSION]
    assert refit.kind == "head" and refit.parent == VERSION
    # The gate compares it with the starter on the holdout: better there, so it serves (no --promote needed).
    assert f"promoted {refit.version}: it serves now" in out and registry.serving() == refit.version
    # A body set in the settings is what a full fine-tune starts from: --fast keeps the serving one, and says so.
    env["BIZSTREAM_SETFIT__BODY"] = str(tmp_path / "a-larger-body")
    assert f"--fast refits the head on the body {refit.version} serves; setfit.body" in bizstream("train", "setfit", "--fast")


def test_head_refits_stay_held_near_the_starter_so_labels_count_once(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    install_starter(registry)
    texts, labels = separable()
    split = Split(texts, labels, [], [])
    first = refit_head(registry, split, parent=VERSION)
    # A second job on the same labels (the replay buffer hands every job all of them again) learns nothing new: held
    # near its parent instead of the starter, it counted them twice and drifted further from the starter.
    second = refit_head(registry, split, parent=first.version)
    head = {m.version: Head.load(registry.version_dir(m.version) / "head.safetensors") for m in (first, second)}
    np.testing.assert_allclose(head[second.version].coef, head[first.version].coef, atol=1e-6)
    # The starter's head travels with every refit of it, so pruning the starter (or a follower that never had it)
    # changes nothing.
    shutil.rmtree(registry.version_dir(VERSION))
    third = refit_head(registry, split, parent=second.version)
    np.testing.assert_allclose(Head.load(registry.version_dir(third.version) / "head.safetensors").coef,
                               head[first.version].coef, atol=1e-6)  # fmt: skip


def test_a_refit_after_a_full_fine_tune_is_held_near_its_parent(trained: tuple[ModelRegistry, ModelMetadata, Split],
                                                                tmp_path: Path) -> None:  # fmt: skip
    source, metadata, split = trained
    registry = ModelRegistry(tmp_path / "registry")
    shutil.copytree(source.root, registry.root, symlinks=True)
    refit = refit_head(registry, split, parent=metadata.version)  # its head learned from these labels: no anchor
    assert not (registry.version_dir(refit.version) / "anchor.safetensors").exists()
