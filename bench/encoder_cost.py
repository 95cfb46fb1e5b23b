"""What a larger encoder would cost to serve on the CPU: ONNX Runtime INT8 posts/s of MiniLM-L6 (what serves today)
beside base- and large-sized encoders, on the same posts, in interleaved rounds.

    .venv/bin/python bench/encoder_cost.py [--data CSV] [--posts 256] [--rounds 3] [--sizes base large]

Sarcasm F1 >= 0.50 (issue 11) looks out of reach for MiniLM and for a base-sized encoder (bench/sarcasm_ceiling.py);
the iSarcasmEval systems that reached it used large ones (RoBERTa-large, DeBERTa-v3-large). Which one, from where, is
a person's call, and its serving cost is part of it. No weights are downloaded: the base and large encoders are BERT
architectures of those sizes built from a config with random weights (compute does not depend on the weights' values)
and the packaged MiniLM's tokenizer, exported and quantized by the same code that serves SetFit
(bizstream_plugins.setfit.export.export_body, bizstream.learning.embeddings.OnnxEncoder). Read "large" as a lower
bound for DeBERTa-v3-large, whose disentangled attention costs more than BERT's. Prints JSON; compare the ratios to
MiniLM within one run, not absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.learning.embeddings import OnnxEncoder, default_body  # noqa: E402
from bizstream_plugins.setfit.export import export_body  # noqa: E402

SIZES = {  # (layers, hidden, heads, feed-forward): the shapes of the usual checkpoints of each size
    "base": (12, 768, 12, 3072),  # bert-base, roberta-base, all-mpnet-base-v2
    "large": (24, 1024, 16, 4096),  # bert-large, roberta-large, (deberta-v3-large: more, see above)
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def texts_from(path: Path | None, n: int) -> list[str]:
    if path is None:
        texts = [orjson.loads(line)["text"] for line in (ROOT / "data" / "sample_posts.jsonl").read_bytes().splitlines()]
        texts = [t for t in texts if t]
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            texts = [r["text"] for r in csv.DictReader(fh)]
    return [texts[i % len(texts)] for i in range(n)]


def build(size: str, folder: Path) -> Path:
    """A BERT encoder of that size with random weights, saved as safetensors beside MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # stdout/stderr: the JSON alone

    layers, hidden, heads, ffn = SIZES[size]
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=512)  # fmt: skip
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(default_body() / name, folder / name)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a CSV with a text column (default: the sample posts)")
    parser.add_argument("--posts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=sorted(SIZES))
    args = parser.parse_args()
    texts = texts_from(args.data, args.posts)

    work = Path(tempfile.mkdtemp(prefix="bizstream-encoders-"))
    try:
        minilm = work / "minilm"
        shutil.copytree(default_body(), minilm, ignore=shutil.ignore_patterns("onnx"))
        folders = {"minilm": minilm, **{size: build(size, work / size) for size in args.sizes}}
        encoders, sizes_mb, export_s = {}, {}, {}
        for name, folder in folders.items():
            started = time.perf_counter()
            exported = export_body(folder)
            export_s[name] = round(time.perf_counter() - started, 1)
            sizes_mb[name] = round(exported.int8.stat().st_size / 2**20, 1)
            encoders[name] = OnnxEncoder(exported.int8, folder / "tokenizer.json")
            encoders[name].encode(texts[:16])  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in encoders}
        for _ in range(args.rounds):  # interleaved, so a machine that slows down slows every encoder alike
            for name, encoder in encoders.items():
                started = time.perf_counter()
                encoder.encode(texts)
                rates[name].append(len(texts) / (time.perf_counter() - started))
        per_round = {name: [r / m for r, m in zip(rates[name], rates["minilm"], strict=True)] for name in encoders}
        print(orjson.dumps({
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
            "posts": len(texts), "rounds": args.rounds, "data": str(args.data or "data/sample_posts.jsonl"),
            "posts_per_s": {name: round(statistics.median(r), 1) for name, r in rates.items()},
            "ratio_to_minilm": {name: round(statistics.median(r), 3) for name, r in per_round.items()},
            "ratio_per_round": {name: [round(x, 3) for x in r] for name, r in per_round.items()},
            "int8_onnx_mb": sizes_mb, "export_and_quantize_s": export_s,
        }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
