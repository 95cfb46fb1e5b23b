"""Ticker extraction against a hand-labelled sample (bench/data/tickers_gold.jsonl: the first 70 sample posts, each
labelled with the coins its thread is about, and 30 hard cases written by hand — ambiguous words, prices, stocks).
Prints JSON: micro precision / recall / F1 over (post, ticker) pairs, per part, the misses and false alarms, and the
extractor's speed in posts/s.

    .venv/bin/python bench/tickers.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.settings import TickerSettings  # noqa: E402
from bizstream.tickers import Lexicon, TickerExtractor  # noqa: E402

GOLD = ROOT / "bench" / "data" / "tickers_gold.jsonl"


def scores(pairs: list[tuple[str, set[str], set[str]]]) -> dict[str, object]:
    tp = sum(len(found & truth) for _, found, truth in pairs)
    fp = sum(len(found - truth) for _, found, truth in pairs)
    fn = sum(len(truth - found) for _, found, truth in pairs)
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return {
        "posts": len(pairs), "precision": round(precision, 3), "recall": round(recall, 3),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 3),
        "false_alarms": {i: sorted(f - t) for i, f, t in pairs if f - t},
        "misses": {i: sorted(t - f) for i, f, t in pairs if t - f},
    }  # fmt: skip


def main() -> None:
    lexicon = Lexicon.load(TickerSettings().lexicon_path)
    gold = [orjson.loads(line) for line in GOLD.read_bytes().splitlines() if line.strip()]
    posts = {str(p["id"]): p for p in (orjson.loads(line) for line in (ROOT / "data" / "sample_posts.jsonl").read_bytes().splitlines())}
    extractor = TickerExtractor(lexicon)
    sample, hard = [], []
    for row in gold:
        if "text" in row:  # a hard case: on its own, no thread
            hard.append((row["id"], set(TickerExtractor(lexicon).for_post(row["id"], row["text"])), set(row["tickers"])))
        else:  # a sample post, in stream order, so a reply can inherit its thread's tickers
            p = posts[row["id"]]
            found = extractor.for_post(row["id"], p["text"], p.get("reply_to"), p.get("thread_id"))
            sample.append((row["id"], set(found), set(row["tickers"])))
    texts = [str(p["text"]) for p in posts.values()] * 30
    timer = TickerExtractor(lexicon)
    started = time.perf_counter()
    for i, text in enumerate(texts):
        timer.for_post(str(i), text)
    seconds = time.perf_counter() - started
    print(json.dumps({"all": scores(sample + hard), "sample_posts": scores(sample), "hard_cases": scores(hard),
                      "posts_per_s": round(len(texts) / seconds)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
