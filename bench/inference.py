"""SetFit inference: torch fp32 vs ONNX fp32 vs ONNX INT8 on the same posts in one run, label agreement, the
throughput of the VADER + SetFit cascade, and "one_at_a_time": ONNX as served (each post alone, unpadded, a few at
once: bizstream.learning.serving.OnnxSession) against padded passes of --batch posts sorted by length on all cores,
the way it ran before: speed, and how many posts get another label in a pass than alone (INT8 quantizes activations
with one scale per pass, so the other posts in it move a post's embedding).

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
from bizstream.learning.embeddings import OnnxEncoder, default_body, pool  # noqa: E402
from bizstream.learning.registry import ModelRegistry  # noqa: E402
from bizstream.pipeline import Pipeline  # noqa: E402
from bizstream.records import Post  # noqa: E402
from bizstream.settings import RoutingSettings, Settings  # noqa: E402
from bizstream.store.label_files import read_label_file  # noqa: E402
from bizstream.store.labels import LabelStore  # noqa: E402
from bizstream_plugins.setfit.analyzer import ONNX_FILES, SetfitAnalyzer, load_version  # noqa: E402
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


class PaddedPasses:
    """The reference served ONNX is measured against: texts sorted by length, in padded passes of ``batch`` on all
    cores (how bizstream ran the encoder before each post ran alone)."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path, batch: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=128)
        self.tokenizer.no_padding()  # tokenizer.json may pad every text to 128; passes pad to their own longest
        self.batch = batch

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            ids = np.zeros((len(chunk), max(len(encodings[i].ids) for i in chunk)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(chunk):
                ids[row, : len(encodings[i].ids)], mask[row, : len(encodings[i].ids)] = encodings[i].ids, 1
            (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            out[chunk] = pool(hidden, mask)
        return out


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
    precise.encoder = OnnxEncoder(work / "ffn-out.int8.onnx", registry.body_dir(trained.body_id) / "tokenizer.json")
    probabilities["onnx-int8-ffn-out-fp32"], runs["onnx-int8-ffn-out-fp32"] = timed(precise.predict_proba, texts)
    labels = {k: v.argmax(axis=1) for k, v in probabilities.items()}
    one_at_a_time = {}
    body = registry.body_dir(trained.body_id)
    head = load_version(registry, trained.version, "torch", 128).model.head
    for runtime in ("onnx-fp32", "onnx-int8"):
        passes = PaddedPasses(body / "onnx" / ONNX_FILES[runtime], body / "tokenizer.json", args.batch)
        served = load_version(registry, trained.version, runtime, 128).model
        rates: dict[str, list[float]] = {"alone": [], "padded": []}
        for _ in range(3):  # interleaved rounds: the ratio, not either rate, is what this machine can be trusted with
            _, rate = timed(served.predict_proba, texts)
            rates["alone"].append(rate)
            p_padded, rate = timed(lambda t, passes=passes: head.predict_proba(passes.encode(t)), texts)  # type: ignore[misc]
            rates["padded"].append(rate)
        shuffled = np.random.default_rng(0).permutation(len(texts))
        p_shuffled = np.empty_like(probabilities[runtime])
        p_shuffled[shuffled] = served.predict_proba([texts[i] for i in shuffled])
        one_at_a_time[runtime] = {
            "posts_per_s": round(float(np.median(rates["alone"])), 1),
            "padded_passes_posts_per_s": round(float(np.median(rates["padded"])), 1),
            "speedup_vs_padded_passes": round(float(np.median(np.divide(rates["alone"], rates["padded"]))), 2),
            "label_agreement_padded_passes_vs_alone": round(float((p_padded.argmax(axis=1) == labels[runtime]).mean()), 4),
            "max_abs_probability_diff_padded_passes_vs_alone": round(float(np.abs(p_padded - probabilities[runtime]).max()), 4),
            "max_abs_probability_diff_served_shuffled": float(np.abs(p_shuffled - probabilities[runtime]).max()),
        }  # fmt: skip

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
        "one_at_a_time": one_at_a_time,
        "model_bytes": {"onnx-fp32": (registry.body_dir(trained.body_id) / "onnx" / "model.onnx").stat().st_size,
                        "onnx-int8": (registry.body_dir(trained.body_id) / "onnx" / "model.int8.onnx").stat().st_size},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
