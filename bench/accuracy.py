"""Accuracy of VADER, SetFit, the ensemble and the cascade, trained on K labelled posts per class.

    .venv/bin/python bench/accuracy.py --data ../shared/data/twitter_financial_news.csv --labels-per-class 8 16 32

Trains on K examples per class drawn (seeded) from the CSV's train part (its `split` column, or a seeded 80/20 split
when there is none) and evaluates on the rest — everything through the project's own code: the VADER plugin, SetFit
training into a temporary registry, and the real Pipeline (fusion weights and routing from config). Prints JSON:
accuracy, macro-F1 and training seconds per K and per system, plus the share of posts the cascade settled cheaply.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from bizstream.learning.dataset import Split
from bizstream.learning.embeddings import default_body
from bizstream.learning.registry import ModelRegistry  # noqa: E402
from bizstream.pipeline import Pipeline  # noqa: E402
from bizstream.records import (
    SENTIMENTS,  # noqa: E402
    Post,  # noqa: E402
)
from bizstream.settings import RoutingSettings, Settings  # noqa: E402
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer  # noqa: E402
from bizstream_plugins.setfit.starter import VERSION, install_starter  # noqa: E402
from bizstream_plugins.setfit.training import PROFILES, refit_head, train_full  # noqa: E402
from bizstream_plugins.vader.analyzer import VaderAnalyzer  # noqa: E402


def read(path: Path, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in SENTIMENTS]
    if rows and "split" in rows[0]:
        train = [(r["text"], r["label"]) for r in rows if r["split"] == "train"]
        test = [(r["text"], r["label"]) for r in rows if r["split"] != "train"]
        return train, test
    pairs = [(r["text"], r["label"]) for r in rows]
    random.Random(seed).shuffle(pairs)
    cut = int(len(pairs) * 0.8)
    return pairs[:cut], pairs[cut:]


def sample(train: list[tuple[str, str]], k: int, seed: int) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    out = []
    for label in SENTIMENTS:
        pool = [p for p in train if p[1] == label]
        out += rnd.sample(pool, min(k, len(pool)))
    return out


def metrics(truth: list[str], predicted: list[str]) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=[s.value for s in SENTIMENTS], average="macro", zero_division=0)), 4),
    }


def run_pipeline(pipeline: Pipeline, posts: list[Post]) -> tuple[list[str], dict[str, list[str]], dict[str, int], float]:
    fused: list[str] = []
    per_analyzer: dict[str, list[str]] = {}
    routes: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(0, len(posts), 256):
        result = pipeline.process(posts[i : i + 256])
        assert not result.unscored, result.unscored[:1]
        for s in result.scores:
            fused.append(s.label.value)
            routes[s.route] = routes.get(s.route, 0) + 1
            for name, r in s.analyzers.items():
                per_analyzer.setdefault(name, []).append(r.label.value if r.label else "neutral")
    return fused, per_analyzer, routes, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-test", type=int, default=0, help="evaluate on at most this many posts (0: all)")
    args = parser.parse_args()

    settings = Settings()
    train, test = read(args.data, args.seed)
    if args.max_test:
        test = random.Random(args.seed).sample(test, min(args.max_test, len(test)))
    posts = [Post(id=str(i), text=t, thread_id=str(i)) for i, (t, _) in enumerate(test)]
    truth = [label for _, label in test]
    vader = VaderAnalyzer()
    vader.load()
    # The starter model bizstream ships, alone and fused with VADER (when --data is one of its sources, the test posts
    # are that source's held-out part, which the starter never trained on).
    starter_registry = ModelRegistry(Path(tempfile.mkdtemp(prefix="bizstream-acc-starter-")))
    install_starter(starter_registry, export=False)
    starter_model = SetfitAnalyzer(starter_registry.root, runtime="torch")
    starter_model.load()
    with_vader = Pipeline([vader, starter_model], settings.fusion, 3600, RoutingSettings(cascade=False))
    fused, per_analyzer, _, _ = run_pipeline(with_vader, posts)
    with_vader.close()
    starter = {"starter": metrics(truth, per_analyzer["setfit"]), "starter_with_vader": metrics(truth, fused)}
    print(orjson.dumps(starter).decode(), file=sys.stderr)
    results: list[dict[str, Any]] = []
    for k in args.labels_per_class:
        chosen = sample(train, k, args.seed)
        split = Split([t for t, _ in chosen], [label for _, label in chosen], [], [])
        registry = ModelRegistry(Path(tempfile.mkdtemp(prefix="bizstream-acc-")))
        started = time.perf_counter()
        trained = train_full(registry, split, default_body(), PROFILES[args.profile], seed=args.seed, show_progress=False)
        train_seconds = time.perf_counter() - started
        registry.promote(trained.version)
        setfit = SetfitAnalyzer(registry.root, runtime="torch")
        setfit.load()
        row: dict[str, Any] = {"labels_per_class": k, "train_examples": len(chosen), "train_seconds": round(train_seconds, 1)}
        ensemble = Pipeline([vader, setfit], settings.fusion, 3600, RoutingSettings(cascade=False))
        fused, per_analyzer, _, seconds = run_pipeline(ensemble, posts)
        ensemble.close()
        row["vader"] = metrics(truth, per_analyzer["vader"])
        row["setfit"] = metrics(truth, per_analyzer["setfit"])
        row["ensemble"] = {**metrics(truth, fused), "posts_per_s": round(len(posts) / seconds, 1)}
        cascade = Pipeline([vader, setfit], settings.fusion, 3600, RoutingSettings(cascade=True))
        fused, _, routes, seconds = run_pipeline(cascade, posts)
        cascade.close()
        row["cascade"] = {**metrics(truth, fused), "posts_per_s": round(len(posts) / seconds, 1),
                          "settled_by_vader": round(routes.get("cheap", 0) / len(posts), 3)}  # fmt: skip
        # A head refit on the starter's body from these labels alone (what `train setfit --fast` does today).
        refit = refit_head(starter_registry, split, parent=VERSION, seed=args.seed)
        starter_registry.promote(refit.version)
        refit_model = SetfitAnalyzer(starter_registry.root, runtime="torch")
        refit_model.load()
        only = Pipeline([refit_model], settings.fusion, 3600, RoutingSettings(cascade=False))
        refit_fused, _, _, _ = run_pipeline(only, posts)
        only.close()
        starter_registry.promote(VERSION)
        row["starter_head_refit_on_these_labels"] = metrics(truth, refit_fused)
        results.append(row)
        print(orjson.dumps(row).decode(), file=sys.stderr)
    print(orjson.dumps({
        "benchmark": "accuracy", "data": args.data.name, "test_posts": len(test), "profile": args.profile,
        "seed": args.seed, "fusion_weights": settings.fusion.weights,
        "cascade": {"min_confidence": settings.routing.min_confidence, "min_abs_score": settings.routing.min_abs_score},
        **starter, "results": results,
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
