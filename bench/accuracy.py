"""Accuracy of VADER, SetFit, the fixed-weight ensemble, the learned fusion (raw and calibrated) and the cascade,
trained on K labelled posts per class.

    .venv/bin/python bench/accuracy.py --data ../shared/data/twitter_financial_news.csv --labels-per-class 8 16 32

Trains on K examples per class drawn (seeded) from the CSV's train part (its `split` column, or a seeded 80/20 split
when there is none) and evaluates on the rest — everything through the project's own code: the VADER plugin, SetFit
training into a temporary registry, and the real Pipeline (fusion weights and routing from config). Prints JSON:
accuracy, macro-F1 and training seconds per K and per system, plus the share of posts the cascade settled cheaply.

The learned fusion is fitted the way the trainer's job fits it: on held-back labels no analyzer trained on, as many
as the evaluation holdout would hold (trainer.eval_share of all labels: a quarter as many again as the K per class,
at least 2, per class, drawn from the rest of the train part). "learned_fusion" is the pool before its temperature, "calibrated" after;
each with its expected calibration error (ECE, 10 bins) beside the fixed weights'.
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
from bizstream.learning.fusion import expected_calibration_error, fit_fusion, softmax
from bizstream.learning.registry import ModelRegistry  # noqa: E402
from bizstream.pipeline import Pipeline  # noqa: E402
from bizstream.records import SENTIMENTS, Post, Score  # noqa: E402
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


Analyzed = tuple[list[str], dict[str, list[str]], dict[str, int], float]


def run_pipeline(pipeline: Pipeline, posts: list[Post], keep: list[Score] | None = None) -> Analyzed:
    """Fused labels, each analyzer's labels, routes and seconds (the Scores appended to ``keep`` when given)."""
    fused: list[str] = []
    per_analyzer: dict[str, list[str]] = {}
    routes: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(0, len(posts), 256):
        result = pipeline.process(posts[i : i + 256])
        assert not result.unscored, result.unscored[:1]
        if keep is not None:
            keep += result.scores
        for s in result.scores:
            fused.append(s.label.value)
            routes[s.route] = routes.get(s.route, 0) + 1
            for name, r in s.analyzers.items():
                per_analyzer.setdefault(name, []).append(r.label.value if r.label else "neutral")
    return fused, per_analyzer, routes, time.perf_counter() - started


def learned_fusion(analyzers: list[Any], held: list[tuple[str, str]], test_scores: list[Score], truth: list[str]) -> dict[str, Any]:
    """Fit the learned fusion on the held-back posts (scored by the same analyzers), judge it on the test posts."""
    pipeline = Pipeline(analyzers, Settings().fusion, 3600, RoutingSettings(cascade=False))
    held_scores: list[Score] = []
    run_pipeline(pipeline, [Post(id=f"h{i}", text=t, thread_id=f"h{i}") for i, (t, _) in enumerate(held)], held_scores)
    pipeline.close()
    names = [a.name for a in analyzers]
    trusted = max(names, key=Settings().fusion.weight_of)  # as the trainer's job chooses its incumbent
    fitted = fit_fusion([s.analyzers for s in held_scores], [label for _, label in held], names, seed=0, incumbent=trusted)
    logits = fitted.fusion.logits(fitted.fusion.features([s.analyzers for s in test_scores]))
    raw, calibrated = softmax(logits), softmax(logits / fitted.fusion.temperature)
    fixed = [[s.probabilities[c.value] for c in SENTIMENTS] for s in test_scores]

    def judged(p: Any) -> dict[str, float]:
        return {**metrics(truth, [SENTIMENTS[i].value for i in p.argmax(axis=1)]),
                "ece": round(expected_calibration_error(p, truth), 4)}  # fmt: skip

    return {"held_back_labels": len(held), "chosen": fitted.what,
            "learned_weights": dict(zip(fitted.fusion.analyzers, fitted.fusion.weights.round(3).tolist(), strict=True)),
            "temperature": round(fitted.fusion.temperature, 3), "fixed_weights_ece": round(expected_calibration_error(fixed, truth), 4),
            "learned_fusion": judged(raw), "calibrated": judged(calibrated)}  # fmt: skip


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
    starter_scores: list[Score] = []
    fused, per_analyzer, _, _ = run_pipeline(with_vader, posts, starter_scores)
    with_vader.close()
    starter: dict[str, Any] = {"starter": metrics(truth, per_analyzer["setfit"]), "starter_with_vader": metrics(truth, fused),
                               "starter_with_vader_ece": round(expected_calibration_error(
                                   [[s.probabilities[c.value] for c in SENTIMENTS] for s in starter_scores], truth), 4)}  # fmt: skip
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
        ensemble_scores: list[Score] = []
        fused, per_analyzer, _, seconds = run_pipeline(ensemble, posts, ensemble_scores)
        ensemble.close()
        row["vader"] = metrics(truth, per_analyzer["vader"])
        row["setfit"] = metrics(truth, per_analyzer["setfit"])
        row["ensemble"] = {**metrics(truth, fused), "posts_per_s": round(len(posts) / seconds, 1)}
        # Held-back labels for the learned fusion: a quarter as many again, never trained on by SetFit.
        rest = [p for p in train if p not in set(chosen)]
        held = sample(rest, max(2, k // 4), args.seed + k)  # per class, so every class is there
        row.update(learned_fusion([vader, setfit], held, ensemble_scores, truth))
        # The starter trained on the whole train part, so its held-back labels come from the test part (and are left
        # out of its evaluation).
        held_ids = {i for i, (t, y) in enumerate(test) if (t, y) in set(sample(test, max(2, k // 4), args.seed + k))}
        row["starter_learned_fusion"] = learned_fusion(
            [vader, starter_model], [test[i] for i in sorted(held_ids)],
            [s for i, s in enumerate(starter_scores) if i not in held_ids], [y for i, y in enumerate(truth) if i not in held_ids],
        )  # fmt: skip
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
