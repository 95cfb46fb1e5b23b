"""Active learning: learning curves of the labeler's strategy (hybrid with a cold start), plain entropy and random
acquisition, with a simulated oracle that labels whatever each strategy asks for.

    .venv/bin/python bench/active_learning.py --data ../shared/data/twitter_financial_news.csv [--seeds 10]
        [--strategies hybrid entropy random hybrid_stale] [--fine-tune-seeds 3] [--body FOLDER]

The model is the one the fast path trains: a logistic-regression head on frozen all-MiniLM-L6-v2 embeddings
(bizstream_plugins.setfit.model.Head). Labels are asked for in batches of 50 (one labeler session; the head is refit
after each), from the whole unlabelled pool. Hybrid starts from the 30 typical posts cold start picks (k-means
centres), entropy and random from 30 random ones. At 50, 100, 200, 400 and 800 labels the head is scored on the
held-out part. "hybrid_stale" (not run by default) ranks by the first model's probabilities throughout, as a
labeler reading the probabilities posts were scored with would. Prints JSON: accuracy and macro-F1 per budget,
strategy and seed, their means, the area under each mean accuracy curve (over log2 of the budget, normalised to
[0, 1]), and how many labels random needs to reach what hybrid reaches with 200, in accuracy and in macro-F1.

--fine-tune-seeds N asks whether the slow path changes the answer: for the first N seeds, the labels hybrid chose by
200 and random's by 200 and 800 each train a fresh body the way the trainer's full fine-tune does (SetFit, the
setfit.profile settings), and that model is scored on the same held-out part ("fine_tuned" in the JSON). --body
measures the same on another local sentence-transformers body's embeddings (as ``BIZSTREAM_SETFIT__BODY`` would serve).
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import read  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from bizstream.errors import AnalyzerUnavailable  # noqa: E402
from bizstream.learning.acquisition import (  # noqa: E402
    cold_start_acquisition,
    entropy_acquisition,
    hybrid_acquisition,
    random_acquisition,
)
from bizstream.learning.embeddings import TorchEncoder, default_body, fine_tune  # noqa: E402
from bizstream.records import SENTIMENTS  # noqa: E402
from bizstream.settings import Settings  # noqa: E402
from bizstream_plugins.setfit.model import Head  # noqa: E402
from bizstream_plugins.setfit.training import PROFILES  # noqa: E402

BUDGETS = [50, 100, 200, 400, 800]
START = 30  # labels before the first model
BATCH = 50  # labels asked for per round (the labeler's default)
FINE_TUNED_AT = {"hybrid": (200,), "random": (200, 800)}  # --fine-tune-seeds: the budgets the target compares


class HeadOnPool:
    """predict_proba over 'texts' that are pool indices, through the current head."""

    def __init__(self, head: Head, embeddings: np.ndarray) -> None:
        self.head, self.embeddings = head, embeddings

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.head.predict_proba(self.embeddings[[int(t) for t in texts]])


def scored(labels: int, y_test: list[str], probabilities: np.ndarray) -> dict[str, float]:
    predicted = [SENTIMENTS[i].value for i in probabilities.argmax(axis=1)]
    return {
        "labels": labels, "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "macro_f1": round(float(f1_score(y_test, predicted, labels=[s.value for s in SENTIMENTS], average="macro", zero_division=0)), 4),
    }  # fmt: skip


def curve(
    strategy: str, seed: int, x: np.ndarray, y: list[str], x_test: np.ndarray, y_test: list[str]
) -> tuple[list[dict[str, float]], dict[int, list[int]]]:  # fmt: skip
    """The learning curve, and which pool posts were labelled at each budget."""
    rnd = random.Random(seed)
    hybrid = strategy.startswith("hybrid")
    labelled = cold_start_acquisition(x, START, seed) if hybrid else rnd.sample(range(len(y)), START)
    points, chosen = [], {}
    first: Head | None = None
    while True:
        head = Head.fit(x[labelled], [y[i] for i in labelled], seed=seed)
        first = first or head
        if len(labelled) in BUDGETS:
            points.append(scored(len(labelled), y_test, head.predict_proba(x_test)))
            chosen[len(labelled)] = list(labelled)
        if len(labelled) >= BUDGETS[-1]:
            return points, chosen
        want = min(BATCH, min(b for b in BUDGETS if b > len(labelled)) - len(labelled))
        taken = set(labelled)
        pool = [i for i in range(len(y)) if i not in taken]
        texts = [str(i) for i in pool]
        model = HeadOnPool(first if strategy == "hybrid_stale" else head, x)
        if strategy == "random":
            order = random_acquisition(texts, want, seed + len(labelled))
        elif strategy == "entropy":
            order = entropy_acquisition(model, texts, want)
        else:
            order = hybrid_acquisition(model, texts, x[pool], want, seed + len(labelled))
        labelled += [pool[i] for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--fine-tune-seeds", type=int, default=0,
                        help="for this many seeds, also fine-tune the body as the trainer's full path does (SetFit, the "
                             "setfit.profile settings) on hybrid's 200 labels and random's 200 and 800: ~11 min a seed "
                             "on 2 cores with the 'cpu' profile")  # fmt: skip
    parser.add_argument("--strategies", nargs="+", default=["hybrid", "entropy", "random"],
                        choices=["hybrid", "entropy", "random", "hybrid_stale"])  # fmt: skip
    parser.add_argument("--body", type=Path, help="a local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2)")
    args = parser.parse_args()
    if not {"hybrid", "random"} <= set(args.strategies):
        parser.error("--strategies must include hybrid and random (the target compares them)")
    train, test = read(args.data, seed=42)
    body = args.body or default_body()
    try:
        encoder = TorchEncoder(body)
    except AnalyzerUnavailable as exc:
        parser.error(str(exc))
    x = encoder.encode([t for t, _ in train])
    x_test = encoder.encode([t for t, _ in test])
    y, y_test = [label for _, label in train], [label for _, label in test]

    runs: dict[str, list[list[dict[str, float]]]] = {s: [] for s in args.strategies}
    fine_tuned: dict[str, list[dict[str, float]]] = {strategy: [] for strategy in FINE_TUNED_AT}
    for seed in range(args.seeds):
        for strategy in runs:
            points, chosen = curve(strategy, seed, x, y, x_test, y_test)
            runs[strategy].append(points)
            print(orjson.dumps({"strategy": strategy, "seed": seed, "curve": points}).decode(), file=sys.stderr)
            for budget in FINE_TUNED_AT.get(strategy, ()) if seed < args.fine_tune_seeds else ():
                texts, labels = [train[i][0] for i in chosen[budget]], [y[i] for i in chosen[budget]]
                fine_tuned[strategy].append({"seed": seed, **fine_tuned_point(texts, labels, test, seed, body)})
                print(orjson.dumps({"strategy": strategy, "fine_tuned": fine_tuned[strategy][-1]}).decode(), file=sys.stderr)

    mean = {s: [{"labels": b, "accuracy": round(statistics.mean(r[k]["accuracy"] for r in rs), 4),
                 "macro_f1": round(statistics.mean(r[k]["macro_f1"] for r in rs), 4)} for k, b in enumerate(BUDGETS)]
            for s, rs in runs.items()}  # fmt: skip
    span = math.log2(BUDGETS[-1]) - math.log2(BUDGETS[0])

    def auc(points: list[dict[str, float]]) -> float:
        area = sum((math.log2(b["labels"]) - math.log2(a["labels"])) * (a["accuracy"] + b["accuracy"]) / 2
                   for a, b in itertools.pairwise(points))  # fmt: skip
        return round(area / span, 4)

    hybrid_200 = next(p for p in mean["hybrid"] if p["labels"] == 200)
    random_800 = mean["random"][-1]

    def random_needs(metric: str) -> int | None:
        return next((int(p["labels"]) for p in mean["random"] if p[metric] >= hybrid_200[metric]), None)

    print(orjson.dumps({
        "benchmark": "active_learning", "data": args.data.name, "pool": len(train), "test": len(test),
        "seeds": args.seeds, "model": f"logistic-regression head on frozen {args.body.name if args.body else 'all-MiniLM-L6-v2'}",
        "mean": mean, "auc_accuracy_log2_budget": {s: auc(m) for s, m in mean.items()},
        "hybrid_at_200": hybrid_200, "random_at_800": random_800,
        "random_labels_to_reach_hybrid_at_200": {m: random_needs(m) for m in ("accuracy", "macro_f1")},
        "target_hybrid_200_matches_random_800": {m: hybrid_200[m] >= random_800[m] for m in ("accuracy", "macro_f1")},
        "runs": runs,
        **({"fine_tuned": fine_tuned_summary(fine_tuned)} if args.fine_tune_seeds else {}),
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


def fine_tuned_point(
    texts: list[str], labels: list[str], test: list[tuple[str, str]], seed: int, body: str | Path
) -> dict[str, float]:  # fmt: skip
    """The slow path on the same labels: a fresh body fine-tuned contrastively as the trainer's full path does, a head
    fitted on its embeddings, scored on the held-out part."""
    profile = PROFILES[Settings().setfit.profile]
    encoder = TorchEncoder(body)
    started = time.perf_counter()
    fine_tune(encoder, texts, [SENTIMENTS.index(label) for label in labels], profile.batch_size,
              profile.num_epochs, profile.num_iterations, seed)  # fmt: skip
    seconds = round(time.perf_counter() - started)
    head = Head.fit(encoder.encode(texts), labels, seed=seed)
    return {**scored(len(texts), [label for _, label in test], head.predict_proba(encoder.encode([t for t, _ in test]))),
            "fine_tune_seconds": seconds}  # fmt: skip


def fine_tuned_summary(fine_tuned: dict[str, list[dict[str, float]]]) -> dict[str, object]:
    """Means per strategy and budget, and whether hybrid's 200 fine-tuned matches random's 800 fine-tuned."""
    mean = {f"{s}_at_{b}": {m: round(statistics.mean(p[m] for p in points if p["labels"] == b), 4) for m in ("accuracy", "macro_f1")}
            for s, points in fine_tuned.items() for b in sorted({int(p["labels"]) for p in points})}  # fmt: skip
    return {
        "profile": Settings().setfit.profile, "seeds": len(fine_tuned["hybrid"]), "mean": mean, "runs": fine_tuned,
        "target_hybrid_200_matches_random_800": {m: mean["hybrid_at_200"][m] >= mean["random_at_800"][m] for m in ("accuracy", "macro_f1")},
    }  # fmt: skip


if __name__ == "__main__":
    main()
