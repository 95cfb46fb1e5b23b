"""The training workflow through the CLI, as a person would run it: labels in, train, track, import, roll back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.tracking import log_training
from bizstream.settings import Settings
from tests.conftest import ROOT, child_env, separable


def test_training_runs_are_tracked_in_mlflow(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    registry, metadata, _ = trained
    settings = Settings().replace(broker={"cache_dir": str(tmp_path)}, tracking={"log_body": False})
    run_id = log_training(settings, registry, metadata)
    run = tmp_path / "mlruns"
    found = list(run.glob(f"*/{run_id}"))
    assert len(found) == 1
    assert float((found[0] / "metrics" / "accuracy").read_text().split()[1]) == pytest.approx(metadata.metrics["accuracy"])
    assert (found[0] / "artifacts" / "model" / "head.safetensors").is_file()
    assert (found[0] / "params" / "data_fingerprint").read_text() == metadata.data_fingerprint
    off = settings.replace(tracking={"enabled": False})
    assert log_training(off, registry, metadata) is None


@pytest.mark.slow
def test_train_elsewhere_import_refit_rollback(tmp_path: Path) -> None:
    env = child_env()
    env.update(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_TRACKING__ENABLED="false",
               BIZSTREAM_SETFIT__STARTER="false")  # this test trains the first model itself

    def bizstream(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "bizstream", *args], env=env, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    texts, labels = separable(["$BTC", "$ETH"])  # 30 posts: enough to learn, few pairs to train on
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_bytes(b"".join(orjson.dumps({"text": t, "label": label}) + b"\n" for t, label in zip(texts, labels, strict=True)))
    bizstream("labels", "import", str(labels_file))
    exported = tmp_path / "exported.jsonl"
    bizstream("labels", "export", str(exported))
    assert len(exported.read_text().splitlines()) == len(texts)

    # "The GPU box": the standalone entry point, here on the CPU with the small profile.
    remote, scratch = tmp_path / "remote-registry", tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "bizstream_plugins.setfit.standalone", "--labels", str(exported), "--out", str(remote),
         "--profile", "cpu", "--device", "cpu"],
        env={**env, "TMPDIR": str(scratch)}, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(scratch.glob("bizstream-train-*"))  # its scratch label store is gone
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    # How well it learns is test_training's business; here, that it trained and evaluated on the held-back 20%.
    assert trained["metrics"]["eval_examples"] == 6 and trained["metrics"]["accuracy"] > 1 / 3

    assert trained["version"] in bizstream("models", "import", str(remote), "--promote")
    said = bizstream("train", "setfit", "--fast")  # promoted by the gate, as the trainer's job would: no flag needed
    assert "promoted" in said and "it serves now (not worse than the serving model)" in said, said
    registry = ModelRegistry(tmp_path / "cache" / "models" / "setfit")
    newest = registry.serving()
    assert newest != trained["version"] and registry.metadata(newest or "").parent == trained["version"]
    assert trained["version"] in bizstream("models", "rollback")
    assert registry.serving() == trained["version"]
    plugins = bizstream("plugins")
    assert "setfit" in plugins and trained["version"] in plugins
