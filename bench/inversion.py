"""Does the sarcasm fuser's inversion help sentiment? Sentiment accuracy on sarcastic and on plain posts, without the
rule, with it driven by the text sarcasm model, and with it driven by the truth (the rule's own ceiling); beside them
the rule as it was (bearish and bullish swapped) driven by each.

    .venv/bin/python bench/inversion.py --data ../shared/data/isarcasmeval_en.csv [--fine-tune]

The sentiment labels are ours: bench/data/isarcasmeval_sentiment.csv gives the intended sentiment (bearish =
negative, neutral, bullish = positive) of 120 sarcastic and 120 not-sarcastic tweets drawn (seed 7) from
iSarcasmEval's test split, read and labelled by the bizstream team (one annotator, from the text alone, no agreement
measured). It is keyed by the sha256 of each text, so the tweets themselves stay in ../shared/data.

Text sentiment comes from what a user gets on day one: VADER and the starter SetFit model, fused with the configured
weights. The sarcasm model is trained as ``bizstream train sarcasm`` trains it on iSarcasmEval's train split (body
frozen unless --fine-tune, which takes about 12 minutes on 2 cores), threshold chosen for --base-rate, and served
through the real SarcasmFuser in the Pipeline (``invert_at`` from the defaults). Prints JSON: per variant, accuracy
and macro-F1 on the sarcastic and on the plain posts, how many posts were inverted, and the accuracy of a mix with
the base rate's share of sarcastic posts.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import metrics, run_pipeline  # noqa: E402

from bizstream.learning.registry import ModelRegistry  # noqa: E402
from bizstream.pipeline import Pipeline  # noqa: E402
from bizstream.records import Post, Score  # noqa: E402
from bizstream.settings import RoutingSettings, Settings  # noqa: E402
from bizstream_plugins.sarcasm.fuser import SarcasmFuser  # noqa: E402
from bizstream_plugins.sarcasm.rules import ModalityWeights, Signals, fuse  # noqa: E402
from bizstream_plugins.sarcasm.training import DEFAULT_BASE_RATE, train_from_csv  # noqa: E402
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer  # noqa: E402
from bizstream_plugins.setfit.starter import install_starter  # noqa: E402
from bizstream_plugins.vader.analyzer import VaderAnalyzer  # noqa: E402

LABELS = ROOT / "bench" / "data" / "isarcasmeval_sentiment.csv"


def labelled(data: Path) -> list[tuple[str, bool, str]]:
    """(text, sarcastic, sentiment) for every post in LABELS, found in the iSarcasmEval file by its sha256."""
    with data.open(newline="", encoding="utf-8") as fh:
        by_hash = {hashlib.sha256(r["text"].encode()).hexdigest(): r for r in csv.DictReader(fh)}
    out = []
    with LABELS.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            found = by_hash.get(row["text_sha256"])
            if found is None:
                raise SystemExit(f"{data} has no text with sha256 {row['text_sha256']}: not the iSarcasmEval file LABELS was made from")
            if (found["label"] == "sarcastic") != (row["sarcastic"] == "true"):
                raise SystemExit(f"{row['text_sha256']}: the sarcasm label in {data} differs from {LABELS.name}'s")
            out.append((found["text"], row["sarcastic"] == "true", row["sentiment"]))
    return out


def sarcasm_model(data: Path, folder: Path, base_rate: float, fine_tune: bool) -> Path:
    """The text sarcasm head trained on the train split of ``data``, as `bizstream train sarcasm` trains it."""
    with data.open(newline="", encoding="utf-8") as fh:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(fh) if r["split"] == "train"]
    folder.mkdir(parents=True, exist_ok=True)
    train = folder / "train.csv"
    with train.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return train_from_csv(train, folder / "model" / "head.safetensors", base_rate=base_rate, fine_tune_body=fine_tune).path


def judged(posts: list[tuple[str, bool, str]], labels: list[str], inverted: list[bool], base_rate: float) -> dict[str, Any]:
    """Accuracy and macro-F1 on the sarcastic and the plain posts, the inversions in each, and the base-rate mix."""
    out: dict[str, Any] = {}
    for name, wanted in (("sarcastic", True), ("not_sarcastic", False)):
        idx = [i for i, (_, s, _) in enumerate(posts) if s == wanted]
        out[name] = {**metrics([posts[i][2] for i in idx], [labels[i] for i in idx]), "inverted": sum(inverted[i] for i in idx)}
    out["accuracy_at_base_rate"] = round(base_rate * out["sarcastic"]["accuracy"] + (1 - base_rate) * out["not_sarcastic"]["accuracy"], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the iSarcasmEval CSV (../shared/data/isarcasmeval_en.csv)")
    parser.add_argument("--base-rate", type=float, default=DEFAULT_BASE_RATE)
    parser.add_argument("--fine-tune", action="store_true", help="fine-tune the sarcasm body, as `bizstream train sarcasm --fine-tune` does")
    args = parser.parse_args()
    posts = labelled(args.data)
    settings = Settings()
    folder = Path(tempfile.mkdtemp(prefix="bizstream-inversion-"))
    registry = ModelRegistry(folder / "setfit")
    install_starter(registry, export=False)
    vader, starter = VaderAnalyzer(), SetfitAnalyzer(registry.root, runtime="torch")
    vader.load()
    starter.load()
    head = sarcasm_model(args.data, folder / "sarcasm", args.base_rate, args.fine_tune)
    weights = ModalityWeights()
    fuser = SarcasmFuser(settings.fusion, weights, text_model=head)
    fuser.load()
    batch = [Post(id=str(i), text=t, thread_id=str(i)) for i, (t, _, _) in enumerate(posts)]
    plain: list[Score] = []
    ruled: list[Score] = []
    for fusers, scores in (((), plain), ((fuser,), ruled)):
        pipeline = Pipeline([vader, starter], settings.fusion, 3600, RoutingSettings(cascade=False), fusers=fusers)
        run_pipeline(pipeline, batch, scores)
        pipeline.close()
    model_inverted = [bool(s.analyzers["sarcasm"].details["inverted"]) for s in ruled]
    # The rule itself, given the truth: the fused text inverted exactly on the posts labelled sarcastic.
    truth_driven = [fuse(Signals(text=tuple(s.probabilities[c] for c in ("bearish", "neutral", "bullish")),  # type: ignore[arg-type]
                                 text_sarcasm=1.0 if sarcastic else 0.0), weights)
                    for s, (_, sarcastic, _) in zip(plain, posts, strict=True)]  # fmt: skip
    # The rule as it was before this bench, for comparison: bearish and bullish swapped, which swaps the label.
    flip = {"bearish": "bullish", "bullish": "bearish"}
    swapped = [flip.get(s.label.value, s.label.value) for s in plain]
    print(orjson.dumps({
        "benchmark": "inversion", "data": args.data.name, "labels": LABELS.name, "posts": len(posts),
        "sentiment": "vader + starter setfit, configured weights", "sarcasm_model": "fine-tuned" if args.fine_tune else "frozen body",
        "base_rate": args.base_rate, "invert_at": weights.invert_at,
        "sarcasm_model_flags": {"sarcastic": sum(model_inverted[i] for i, p in enumerate(posts) if p[1]),
                                "not_sarcastic": sum(model_inverted[i] for i, p in enumerate(posts) if not p[1])},
        "no_rule": judged(posts, [s.label.value for s in plain], [False] * len(posts), args.base_rate),
        "rule_with_model": judged(posts, [s.label.value for s in ruled], model_inverted, args.base_rate),
        "rule_with_truth": judged(posts, [f.label.value for f in truth_driven], [f.inverted for f in truth_driven], args.base_rate),
        "swap_with_model": judged(posts, [w if f else s.label.value for w, f, s in zip(swapped, model_inverted, plain, strict=True)],
                                  model_inverted, args.base_rate),
        "swap_with_truth": judged(posts, [w if p[1] else s.label.value for w, p, s in zip(swapped, posts, plain, strict=True)],
                                  [p[1] for p in posts], args.base_rate),
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
