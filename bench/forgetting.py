"""Catastrophic forgetting, with and without experience replay, through the trainer's own retraining job.

    .venv/bin/python bench/forgetting.py --a ../shared/data/twitter_financial_news.csv \\
        --b ../shared/data/surge_crypto_reddit.csv [--per-class 100]

Domain A's labels arrive first and a model is trained on them (job 1); then domain B's labels arrive and the job
runs again (job 2), three ways: as a job for new labels (every label alike: B's and the replayed A's), as a job after
a drift event (trainer.new_share = 0.7: 70% of the weight on B, 30% on replayed A) and as a drift job without replay
(new_share = 1.0). The candidate of job 2 is evaluated on held-out A and B posts either way (promoted or not).
Prints JSON. Target: with replay, accuracy on A drops by at most 2 points.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import read, sample  # noqa: E402

from bizstream.learning.embeddings import TorchEncoder, default_body
from bizstream.learning.job import run_training_job
from bizstream.learning.registry import ModelMetadata, ModelRegistry  # noqa: E402
from bizstream.learning.trainers import accuracy
from bizstream.records import Sentiment  # noqa: E402
from bizstream.settings import Settings  # noqa: E402
from bizstream.store.labels import LabelRow, LabelStore  # noqa: E402
from bizstream_plugins.setfit.model import Head  # noqa: E402
from bizstream_plugins.setfit.training import SetfitTrainer  # noqa: E402


def bootstrap(registry: ModelRegistry, texts: list[str], labels: list[str]) -> str:
    """A first serving version: the packaged MiniLM body with a head fitted on a few examples."""
    staged = registry.staging()
    shutil.copytree(default_body(), staged, dirs_exist_ok=True)
    registry.add_body(staged, "body-minilm")
    version = registry.new_version_id()
    head_dir = registry.staging()
    Head.fit(TorchEncoder(registry.body_dir("body-minilm")).encode(texts), labels).save(head_dir / "head.safetensors")
    registry.add_version(head_dir, ModelMetadata(version, "setfit", "body-minilm", str(default_body()), None, "-", {}, "head",
                                                 {"max_seq_length": 128}))  # fmt: skip
    registry.promote(version)
    return version


def run(reason: str, new_share: float, a_train: list, b_train: list, a_test: list, b_test: list, seed: int) -> dict[str, float]:  # type: ignore[type-arg]
    work = Path(tempfile.mkdtemp(prefix="bizstream-forget-"))
    settings = Settings().replace(
        broker={"cache_dir": str(work)}, store={"path": str(work / "labels.sqlite")},
        setfit={"registry": str(work / "registry"), "seed": seed}, tracking={"enabled": False},
        trainer={"new_share": new_share, "mode": "head"},
    )  # fmt: skip
    registry = ModelRegistry(settings.setfit_registry)
    bootstrap(registry, [t for t, _ in a_train[::10]], [y for _, y in a_train[::10]])  # a few of each class
    store = LabelStore(settings.store_path)
    now = time.time()
    store.add([LabelRow(f"a{i}", t, Sentiment(y).rating, "bench", labeled_at=now + i * 1e-4) for i, (t, y) in enumerate(a_train)])
    first = run_training_job(settings, "labels")
    a_model = first.candidate
    later = time.time() + 1
    store.add([LabelRow(f"b{i}", t, Sentiment(y).rating, "bench", labeled_at=later + i * 1e-4) for i, (t, y) in enumerate(b_train)])
    second = run_training_job(settings, reason)

    def acc(version: str | None, data: list) -> float:  # type: ignore[type-arg]
        return round(accuracy(SetfitTrainer(registry), version, [t for t, _ in data], [y for _, y in data]), 4)

    return {
        "a_accuracy_after_a": acc(a_model, a_test), "b_accuracy_after_a": acc(a_model, b_test),
        "a_accuracy_after_b": acc(second.candidate, a_test), "b_accuracy_after_b": acc(second.candidate, b_test),
        "replayed_labels": second.metrics.get("replay_labels", 0.0), "new_labels": second.metrics.get("new_labels", 0.0),
        "promoted_after_b": second.promoted,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True)
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--test", type=int, default=600, help="held-out posts per domain")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    a_train_all, a_test_all = read(args.a, args.seed)
    b_train_all, b_test_all = read(args.b, args.seed)
    rnd = random.Random(args.seed)
    a_train, b_train = sample(a_train_all, args.per_class, args.seed), sample(b_train_all, args.per_class, args.seed)
    a_test = rnd.sample(a_test_all, min(args.test, len(a_test_all)))
    b_test = rnd.sample(b_test_all, min(args.test, len(b_test_all)))
    with_replay = run("labels", 0.7, a_train, b_train, a_test, b_test, args.seed)
    drift = run("drift", 0.7, a_train, b_train, a_test, b_test, args.seed)
    without = run("drift", 1.0, a_train, b_train, a_test, b_test, args.seed)

    def drop(arm: dict[str, float]) -> float:
        return round(100 * (arm["a_accuracy_after_a"] - arm["a_accuracy_after_b"]), 2)

    print(orjson.dumps({
        "benchmark": "forgetting", "a": args.a.name, "b": args.b.name, "per_class": args.per_class,
        "a_train": len(a_train), "b_train": len(b_train), "a_test": len(a_test), "b_test": len(b_test),
        "with_replay": with_replay, "drift_with_replay": drift, "drift_without_replay": without,
        "a_drop_points_with_replay": drop(with_replay), "a_drop_points_drift_with_replay": drop(drift),
        "a_drop_points_drift_without_replay": drop(without),
        "target_a_drop_at_most_2_points_with_replay": drop(with_replay) <= 2.0 and drop(drift) <= 2.0,
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
