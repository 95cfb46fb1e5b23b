"""The learning loop end to end: labels arrive in batches through the trainer's job; what serves is measured after each.

    .venv/bin/python bench/loop.py --data ../shared/data/twitter_financial_news.csv [--batches 10] [--batch-size 50]

Three fresh installs side by side, each in a temporary folder: "starter", the defaults a user gets (the starter model,
learned fusion on, pseudo-labels on), "zero", the same without the starter (VADER alone until the first job trains
SetFit), and "starter_no_pseudo", the defaults with trainer.pseudo_labels off, so that what pseudo-labels add is
measured rather than assumed. The held-out part of the file (which the starter never trained on) is split in two: a
stream of posts, and an evaluation set of --eval posts no step ever sees. Every stream post is remembered as the
trainer agent remembers the posts it reads (the pool pseudo-labels come from); --batches x --batch-size of them are
labelled, one batch per round: each round stores its labels and runs the trainer's job
(``bizstream.learning.job.run_training_job``, as the trainer agent does every trainer.retrain_after labels: head refit
on new labels + replay, gated against the serving model on the persistent evaluation holdout; then the learned
fusion, fitted and gated on the same holdout), then scores the evaluation set with the pipeline the worker would
load. Prints JSON: per round, the served SetFit and fusion versions, accuracy, macro-F1 and ECE of the Scores, and
every candidate's decision with its reason.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import metrics, read  # noqa: E402

from bizstream.learning.fusion import expected_calibration_error  # noqa: E402
from bizstream.learning.job import run_training_job  # noqa: E402
from bizstream.plugins import load_pipeline  # noqa: E402
from bizstream.records import SENTIMENTS, Post, Sentiment  # noqa: E402
from bizstream.settings import Settings  # noqa: E402
from bizstream.store.labels import LabelRow, LabelStore  # noqa: E402
from bizstream.store.trainer_state import RecentPosts  # noqa: E402

ARMS = {"starter": (True, True), "zero": (False, True), "starter_no_pseudo": (True, False)}  # (starter, pseudo-labels)


def served(settings: Settings, posts: list[Post], truth: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and ECE of what the worker would serve now, on the evaluation posts."""
    pipeline = load_pipeline(settings, third_party=False, report=lambda status: None)
    scores = []
    for i in range(0, len(posts), 256):
        scores += pipeline.process(posts[i : i + 256]).scores
    pipeline.close()
    assert len(scores) == len(posts)
    versions = {s.analyzers["setfit"].model_version for s in scores if "setfit" in s.analyzers}
    return {**metrics(truth, [s.label.value for s in scores]),
            "ece": round(expected_calibration_error([[s.probabilities[c.value] for c in SENTIMENTS] for s in scores], truth), 4),
            "setfit": ",".join(sorted(versions)), "fusion": ",".join(sorted({s.fusion for s in scores}))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="which installs to run (default: all)")
    args = parser.parse_args()

    _, held_out = read(args.data, args.seed)
    random.Random(args.seed).shuffle(held_out)
    evaluation, stream = held_out[: args.eval], held_out[args.eval :]
    need = args.batches * args.batch_size
    if len(stream) < need:
        raise SystemExit(f"{len(stream)} posts left for the label stream, {need} needed: lower --batches or --eval")
    posts = [Post(id=f"e{i}", text=t, thread_id=f"e{i}") for i, (t, _) in enumerate(evaluation)]
    truth = [label for _, label in evaluation]
    runs = {name: loop(name, *ARMS[name], stream, posts, truth, args) for name in args.arms}
    print(orjson.dumps({
        "benchmark": "loop", "data": args.data.name, "eval_posts": len(posts), "batch_size": args.batch_size,
        "settings": {"retrain_after": args.batch_size, "eval_share": Settings().trainer.eval_share,
                     "fusion_min_labels": Settings().fusion.min_labels, "mode": Settings().trainer.mode,
                     "head_prior": Settings().setfit.head_prior, "pseudo_threshold": Settings().trainer.pseudo_threshold,
                     "pseudo_max_share": Settings().trainer.pseudo_max_share, "stream_posts": len(stream)},
        **runs,
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


def loop(
    name: str, starter: bool, pseudo: bool, stream: list[tuple[str, str]], posts: list[Post], truth: list[str], args: Any
) -> dict[str, Any]:  # fmt: skip
    """One fresh install: label batches through the job, what serves measured after each."""
    folder = Path(tempfile.mkdtemp(prefix=f"bizstream-loop-{name}-"))
    settings = Settings().replace(broker={"cache_dir": str(folder)}, setfit={"starter": starter},
                                  trainer={"retrain_after": args.batch_size, "pseudo_labels": pseudo})  # fmt: skip
    store = LabelStore(settings.store_path)
    recent = RecentPosts(settings.store_path)
    recent.remember([(f"s{i // args.batch_size}-{i % args.batch_size}", text) for i, (text, _) in enumerate(stream)],
                    keep=settings.trainer.recent_posts)  # fmt: skip
    recent.close()
    rounds: list[dict[str, Any]] = [{"labels": 0, **served(settings, posts, truth), "decisions": []}]
    print(orjson.dumps({"run": name, **rounds[-1]}).decode(), file=sys.stderr)
    for batch in range(args.batches):
        chunk = stream[batch * args.batch_size : (batch + 1) * args.batch_size]
        now = time.time()
        store.add([LabelRow(f"s{batch}-{i}", text, Sentiment(label).rating, "bench", None, "human", now + i * 1e-3)
                   for i, (text, label) in enumerate(chunk)])  # fmt: skip
        started = time.perf_counter()
        result = run_training_job(settings, "labels")
        seconds = time.perf_counter() - started
        decisions = [{"model": o.trainer, "candidate": o.candidate.version, "promoted": o.promoted, "why": o.why}
                     for o in result.outcomes] or [{"model": "setfit", "candidate": None, "promoted": False, "why": result.why}]  # fmt: skip
        rounds.append({"labels": (batch + 1) * args.batch_size, "job_seconds": round(seconds, 1),
                       "pseudo_labels": int(result.metrics.get("pseudo_labels", 0)),
                       **served(settings, posts, truth), "decisions": decisions})  # fmt: skip
        print(orjson.dumps({"run": name, **rounds[-1]}).decode(), file=sys.stderr)
    count = {model: {"promoted": sum(d["promoted"] for r in rounds for d in r["decisions"] if d["model"] == model and d["candidate"]),
                     "rejected": sum(not d["promoted"] for r in rounds for d in r["decisions"] if d["model"] == model and d["candidate"])}
             for model in ("setfit", "fusion")}  # fmt: skip
    return {
        "accuracy_first": rounds[0]["accuracy"], "accuracy_last": rounds[-1]["accuracy"],
        "macro_f1_first": rounds[0]["macro_f1"], "macro_f1_last": rounds[-1]["macro_f1"],
        "ece_first": rounds[0]["ece"], "ece_last": rounds[-1]["ece"], "candidates": count, "rounds": rounds,
        "pseudo_labels": pseudo,
    }  # fmt: skip


if __name__ == "__main__":
    main()
