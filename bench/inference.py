"""SetFit inference: torch fp32 vs ONNX fp32 vs ONNX INT8 on the same posts in one run, label agreement, the
throughput of the VADER + SetFit cascade, and batch dependence: whether a post gets the same label alone as in a
batch (INT8's activations are quantized with one scale per batch, so its other posts move its embedding).

    .venv/bin/python bench/inference.py [--data CSV] [--posts 2000]

A model is trained first (cpu profile; with --data on K labels per class of its train part, else on the project's
sample labels) into a temporary registry and exported. The posts measured come from --data (its evaluation part
first) or the sample posts. Prints JSON; compare
the ratios (int8 / torch), not absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.export.onnx import quantize
from bizstream.learning.dataset import Split
from bizstream.learning.embeddings import OnnxEncoder, default_body  # noqa: E402
from bizstream.learning.registry import ModelRegistry  # noqa: E402
from bizstream.pipeline import Pipeline  # noqa: E402
from bizstream.records import Post  # noqa: E402
from bizstream.settings import RoutingSettings, Settings  # noqa: E402
from bizstream.store.label_files import read_label_file  # noqa: E402
from bizstream.store.labels import LabelStore  # noqa: E402
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer, load_version  # noqa: E402
from bizstream_plugins.setfit.export import export_version  # noqa: E402
from bizstream_plugins.setfit.training import PROFILES, train_full  # noqa: E402
from bizstream_plugins.vader.analyzer import VaderAnalyzer  # noqa: E402


def texts_from(path: Path | None, n: int) -> list[str]:
    if path is None:
        lines = (ROOT / "data" / "sample_posts.jsonl").read_bytes().splitlines()
        texts = [orjson.loads(line)["text"] for line in lines]
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        texts = [r["text"] for r in rows if r.get("split", "test") != "train"] + [r["text"] for r in rows if r.get("split") == "train"]
    return [texts[i % len(texts)] for i in range(n)]


def timed(predict, texts: list[str], chunk: int = 256) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    """Posts handed over in worker-sized batches (worker.batch_size); each encoder batches them its own way."""
    predict(texts[:chunk])  # warm-up
    started = time.perf_counter()
    out = np.concatenate([predict(texts[i : i + chunk]) for i in range(0, len(texts), chunk)])
    return out, len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--train-per-class", type=int, default=64, help="with --data: labels per class to train on")
    parser.add_argument("--batch", type=int, default=16, help="posts per forward pass (setfit.batch_size)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bizstream-inf-"))
    registry = ModelRegistry(work / "registry")
    if args.data is not None:  # a model trained on the same kind of posts it will serve
        sys.path.insert(0, str(ROOT / "bench"))
        from accuracy import read, sample

        train, _ = read(args.data, seed=42)
        chosen = sample(train, args.train_per_class, seed=42)
        split = Split([t for t, _ in chosen], [label for _, label in chosen], [], [])
    else:
        store = LabelStore(work / "labels.sqlite")
        store.add(read_label_file(ROOT / "data" / "sample_labels.jsonl").rows)
        split = Split.from_dataset(store.dataset())
    trained = train_full(registry, split, default_body(), PROFILES["cpu"], show_progress=False)
    registry.promote(trained.version)
    export_version(registry, trained.version)
    texts = texts_from(args.data, args.posts)

    runs = {}
    probabilities = {}
    for runtime in ("torch", "onnx-fp32", "onnx-int8"):
        model = load_version(registry, trained.version, runtime, 128, batch_size=args.batch).model
        probabilities[runtime], runs[runtime] = timed(model.predict_proba, texts)
    # The more precise INT8 variant (`bizstream export onnx --keep-fp32 ffn-out`), measured beside the default.
    onnx_dir = registry.body_dir(trained.body_id) / "onnx"
    quantize(onnx_dir / "model.onnx", work / "ffn-out.int8.onnx", keep_fp32="ffn-out")
    precise = load_version(registry, trained.version, "onnx-int8", 128, batch_size=args.batch).model
    precise.encoder = OnnxEncoder(work / "ffn-out.int8.onnx", registry.body_dir(trained.body_id) / "tokenizer.json", batch_size=args.batch)
    probabilities["onnx-int8-ffn-out-fp32"], runs["onnx-int8-ffn-out-fp32"] = timed(precise.predict_proba, texts)
    labels = {k: v.argmax(axis=1) for k, v in probabilities.items()}
    alone = {}
    few = texts[: min(len(texts), 500)]
    for runtime in ("onnx-fp32", "onnx-int8"):
        single = load_version(registry, trained.version, runtime, 128, batch_size=1).model
        p_alone, rate = timed(single.predict_proba, few)
        alone[runtime] = {"label_agreement_alone_vs_batched": round(float((p_alone.argmax(axis=1) == labels[runtime][: len(few)]).mean()), 4),
                          "max_abs_probability_diff": round(float(np.abs(p_alone - probabilities[runtime][: len(few)]).max()), 4),
                          "posts_per_s_one_at_a_time": round(rate, 1)}  # fmt: skip

    settings = Settings()
    vader = VaderAnalyzer()
    vader.load()
    setfit = SetfitAnalyzer(registry.root, runtime="onnx-int8", batch_size=args.batch)
    setfit.load()
    posts = [Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(texts)]
    cascade_rates = {}
    for on in (True, False):
        pipeline = Pipeline([vader, setfit], settings.fusion, 3600, RoutingSettings(cascade=on))
        pipeline.process(posts[:256])
        started = time.perf_counter()
        routes = [s.route for i in range(0, len(posts), 256) for s in pipeline.process(posts[i : i + 256]).scores]
        cascade_rates["cascade" if on else "vader_plus_setfit_every_post"] = {
            "posts_per_s": round(len(posts) / (time.perf_counter() - started), 1),
            "settled_by_vader": round(routes.count("cheap") / len(routes), 3),
        }
        pipeline.close()

    print(orjson.dumps({
        "benchmark": "inference",
        "posts": len(texts), "batch": args.batch, "data": args.data.name if args.data else "data/sample_posts.jsonl",
        "posts_per_s": {k: round(v, 1) for k, v in runs.items()},
        "speedup_vs_torch_fp32": {k: round(v / runs["torch"], 2) for k, v in runs.items()},
        "label_agreement_with_torch": {k: round(float((v == labels["torch"]).mean()), 4) for k, v in labels.items()},
        "max_abs_probability_diff_vs_torch": {k: round(float(np.abs(v - probabilities["torch"]).max()), 4) for k, v in probabilities.items()},
        "pipelines": cascade_rates,
        "batch_dependence": {"posts": len(few), **alone},
        "model_bytes": {"onnx-fp32": (registry.body_dir(trained.body_id) / "onnx" / "model.onnx").stat().st_size,
                        "onnx-int8": (registry.body_dir(trained.body_id) / "onnx" / "model.int8.onnx").stat().st_size},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
