"""Active learning: learning curves of hybrid (entropy + k-means), entropy and random acquisition with a simulated
oracle that labels whatever each strategy asks for.

    .venv/bin/python bench/active_learning.py --data ../shared/data/twitter_financial_news.csv [--seeds 3]

The model is the one the fast path trains: a logistic-regression head on frozen all-MiniLM-L6-v2 embeddings
(bizstream_plugins.setfit.model.Head). Every strategy starts from the same 25 random labels; at 50, 100, 200, 400 and
800 labels the head is refit and scored on the held-out part. Prints JSON: accuracy and macro-F1 per budget,
strategy and seed, their means, the area under each mean accuracy curve (over log2 of the budget, normalised to
[0, 1]), and the budget random needs to reach what hybrid reaches with 200.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import sys
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import read  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from bizstream.learning.acquisition import entropy_acquisition, hybrid_acquisition, random_acquisition  # noqa: E402
from bizstream.learning.embeddings import TorchEncoder, default_body
from bizstream.records import SENTIMENTS  # noqa: E402
from bizstream_plugins.setfit.model import Head

BUDGETS = [25, 50, 100, 200, 400, 800]
CANDIDATES = 3000  # each acquisition looks at this many random unlabelled posts (k-means on the whole pool is slow)


class HeadOnPool:
    """predict_proba over 'texts' that are pool indices, through the current head."""

    def __init__(self, head: Head, embeddings: np.ndarray) -> None:
        self.head, self.embeddings = head, embeddings

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.head.predict_proba(self.embeddings[[int(t) for t in texts]])


def curve(strategy: str, seed: int, x: np.ndarray, y: list[str], x_test: np.ndarray, y_test: list[str]) -> list[dict[str, float]]:
    rnd = random.Random(seed)
    labelled = rnd.sample(range(len(y)), BUDGETS[0])
    points = []
    for budget_index, budget in enumerate(BUDGETS):
        head = Head.fit(x[labelled], [y[i] for i in labelled], seed=seed)
        predicted = [SENTIMENTS[i].value for i in head.predict_proba(x_test).argmax(axis=1)]
        points.append({
            "labels": budget, "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
            "macro_f1": round(float(f1_score(y_test, predicted, labels=[s.value for s in SENTIMENTS], average="macro", zero_division=0)), 4),
        })  # fmt: skip
        if budget_index + 1 == len(BUDGETS):
            break
        want = BUDGETS[budget_index + 1] - budget
        taken = set(labelled)
        pool = [i for i in range(len(y)) if i not in taken]
        candidates = rnd.sample(pool, min(CANDIDATES, len(pool)))
        texts = [str(i) for i in candidates]
        model = HeadOnPool(head, x)
        if strategy == "random":
            order = random_acquisition(texts, want, seed + budget)
        elif strategy == "entropy":
            order = entropy_acquisition(model, texts, want)
        else:
            order = hybrid_acquisition(model, texts, x[candidates], want, seed + budget)
        labelled += [candidates[i] for i in order]
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    train, test = read(args.data, seed=42)
    encoder = TorchEncoder(default_body())
    x = encoder.encode([t for t, _ in train])
    x_test = encoder.encode([t for t, _ in test])
    y, y_test = [label for _, label in train], [label for _, label in test]

    runs: dict[str, list[list[dict[str, float]]]] = {s: [] for s in ("hybrid", "entropy", "random")}
    for seed in range(args.seeds):
        for strategy in runs:
            runs[strategy].append(curve(strategy, seed, x, y, x_test, y_test))
            print(orjson.dumps({"strategy": strategy, "seed": seed, "curve": runs[strategy][-1]}).decode(), file=sys.stderr)

    mean = {s: [{"labels": b, "accuracy": round(statistics.mean(r[k]["accuracy"] for r in rs), 4),
                 "macro_f1": round(statistics.mean(r[k]["macro_f1"] for r in rs), 4)} for k, b in enumerate(BUDGETS)]
            for s, rs in runs.items()}  # fmt: skip
    span = math.log2(BUDGETS[-1]) - math.log2(BUDGETS[0])

    def auc(points: list[dict[str, float]]) -> float:
        area = sum((math.log2(b["labels"]) - math.log2(a["labels"])) * (a["accuracy"] + b["accuracy"]) / 2
                   for a, b in itertools.pairwise(points))  # fmt: skip
        return round(area / span, 4)

    hybrid_200 = next(p["accuracy"] for p in mean["hybrid"] if p["labels"] == 200)
    random_needs = next((p["labels"] for p in mean["random"] if p["accuracy"] >= hybrid_200), None)
    print(orjson.dumps({
        "benchmark": "active_learning", "data": args.data.name, "pool": len(train), "test": len(test),
        "seeds": args.seeds, "model": "logistic-regression head on frozen all-MiniLM-L6-v2",
        "mean": mean, "auc_accuracy_log2_budget": {s: auc(m) for s, m in mean.items()},
        "hybrid_accuracy_at_200": hybrid_200,
        "random_accuracy_at_800": mean["random"][-1]["accuracy"],
        "random_labels_to_reach_hybrid_at_200": random_needs,
        "target_hybrid_200_matches_random_800": hybrid_200 >= mean["random"][-1]["accuracy"],
        "runs": runs,
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
