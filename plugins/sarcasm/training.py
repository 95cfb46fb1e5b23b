"""Training the text-only sarcasm head from a CSV of sarcasm labels (``bizstream train sarcasm FILE``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bizstream.errors import BizstreamError
from bizstream.learning.embeddings import TorchEncoder, default_body
from bizstream_plugins.sarcasm.model import SarcasmHead

TRUTH = {"sarcastic": True, "1": True, "true": True, "yes": True,
         "not_sarcastic": False, "non_sarcastic": False, "0": False, "false": False, "no": False}  # fmt: skip


@dataclass(frozen=True)
class Trained:
    """What ``train_from_csv`` wrote."""

    path: Path
    examples: int
    sarcastic: int


def read_csv(file: Path) -> tuple[list[str], list[bool]]:
    """Texts and sarcasm labels from a CSV with `text` and `label` columns; a bad row is named by its line."""
    texts, sarcastic = [], []
    with file.open(newline="", encoding="utf-8") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            label = str(row.get("label", "")).strip().lower()
            if not row.get("text") or label not in TRUTH:
                raise BizstreamError(f"{file}:{number}: needs `text` and a `label` in {sorted(TRUTH)}, got {label!r}")
            texts.append(row["text"])
            sarcastic.append(TRUTH[label])
    return texts, sarcastic


def train_from_csv(file: Path, target: Path, seed: int = 42) -> Trained:
    """Fit a balanced logistic-regression head on all-MiniLM-L6-v2 embeddings of the CSV's texts; write it to target."""
    texts, sarcastic = read_csv(file)
    head = SarcasmHead.fit(TorchEncoder(default_body()).encode(texts), sarcastic, seed=seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    head.save(target)
    return Trained(target, len(texts), sum(sarcastic))
