"""Training the text sarcasm model from a CSV of sarcasm labels (``bizstream train sarcasm FILE``): a fine-tuned
sentence body, a head, and the decision threshold for the base rate a deployment sees."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bizstream.errors import AnalyzerUnavailable, BizstreamError
from bizstream.learning.embeddings import TorchEncoder, default_body, weights_sha256
from bizstream_plugins.sarcasm.model import SarcasmHead

TRUTH = {"sarcastic": True, "1": True, "true": True, "yes": True,
         "not_sarcastic": False, "non_sarcastic": False, "0": False, "false": False, "no": False}  # fmt: skip


DEFAULT_BASE_RATE = 0.15  # sarcastic share a deployment is assumed to see (iSarcasmEval's test split: 14%)
INFO = "sarcasm.json"  # beside the head: how it was trained, its decision threshold, the checksums
PACKAGED_BODY = "all-MiniLM-L6-v2 (frozen)"  # sarcasm.json's "body" for the packaged body, kept frozen


@dataclass(frozen=True)
class Trained:
    """What ``train_from_csv`` wrote."""

    path: Path
    examples: int
    sarcastic: int
    threshold: float  # P(sarcastic) from which a post counts as sarcastic at the base rate
    validation_f1: float  # at that threshold, on the held-back fifth, reweighted to the base rate
    fine_tuned: bool


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


def train_from_csv(
    file: Path, target: Path, seed: int = 42, base_rate: float = DEFAULT_BASE_RATE, fine_tune_body: bool = True,
    iterations: int = 2, show_progress: bool = False, body: Path | None = None,
) -> Trained:  # fmt: skip
    """Train the text sarcasm model on four fifths of the CSV (stratified): a sentence body (``body``, a local
    sentence-transformers folder; default the packaged all-MiniLM-L6-v2) fine-tuned contrastively on the sarcasm
    labels (SetFit's way; ``fine_tune_body=False`` keeps it frozen) and a balanced logistic-regression head; choose on
    the last fifth the threshold with the best F1 at ``base_rate`` (the share of sarcastic posts the deployment sees,
    which need not be the CSV's). Writes ``target`` (the head), ``body/`` beside it (when fine-tuned) and sarcasm.json
    (threshold, base rate, metrics, which body, and the sha256 of the head and of the body's weights)."""
    import hashlib
    import json

    import numpy as np
    from sklearn.model_selection import train_test_split

    from bizstream.learning.embeddings import fine_tune

    if not 0 < base_rate < 1:
        raise BizstreamError(f"the base rate must be in (0, 1), got {base_rate}")
    texts, sarcastic = read_csv(file)
    if min(sum(sarcastic), len(sarcastic) - sum(sarcastic)) < 5:
        raise BizstreamError(f"{file}: needs at least 5 sarcastic and 5 not sarcastic posts")
    fit_texts, val_texts, fit_y, val_y = train_test_split(texts, sarcastic, test_size=0.2, stratify=sarcastic, random_state=seed)
    source = body.resolve() if body is not None else default_body()
    encoder = TorchEncoder(source)
    if fine_tune_body:
        fine_tune(encoder, fit_texts, [int(y) for y in fit_y], num_iterations=iterations, seed=seed, show_progress=show_progress)
    head = SarcasmHead.fit(encoder.encode(fit_texts), fit_y, seed=seed)
    threshold, f1 = threshold_for(head.probability(encoder.encode(val_texts)), np.array(val_y, dtype=bool), base_rate)
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = target.parent / "body"
    if fine_tune_body:
        encoder.model.save(str(saved), safe_serialization=True)
    head.save(target)
    used = saved if fine_tune_body else source
    info = {"threshold": threshold, "base_rate": base_rate, "validation_f1_at_base_rate": f1, "fine_tuned": fine_tune_body,
            "iterations": iterations if fine_tune_body else 0, "examples": len(texts), "sarcastic": sum(sarcastic),
            "source": file.name, "head_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "body": "body/" if fine_tune_body else str(source) if body is not None else PACKAGED_BODY,
            "body_sha256": weights_sha256(used)}  # fmt: skip
    (target.parent / INFO).write_text(json.dumps(info, indent=2))
    return Trained(target, len(texts), sum(sarcastic), threshold, f1, fine_tune_body)


def body_for(folder: Path, info: dict[str, Any]) -> Path:
    """The sentence body a head in ``folder`` was trained on, as its sarcasm.json (``info``) records it: ``body/``
    beside the head when fine-tuned, the folder it named when frozen over another body, else the packaged one. Its
    weights must match the recorded sha256: a head is never served over another body."""
    recorded = str(info.get("body", PACKAGED_BODY))
    if info.get("fine_tuned"):
        body = folder / "body"
    elif recorded == PACKAGED_BODY:
        body = default_body()
    else:
        body = Path(recorded)
    if not body.is_dir():
        raise AnalyzerUnavailable(f"the text sarcasm head in {folder} was trained on the body {body}, which is not there")
    if "body_sha256" in info and weights_sha256(body) != info["body_sha256"]:
        raise AnalyzerUnavailable(f"the weights in {body} do not match the sha256 in {folder / INFO}; train it again")
    return body


def threshold_for(probability: Any, truth: Any, base_rate: float) -> tuple[float, float]:
    """(threshold, F1): the threshold with the best F1 when sarcastic posts are ``base_rate`` of all — precision
    recomputed from the true- and false-positive rates on ``truth`` at that share."""
    best = (0.5, 0.0)
    positives, negatives = truth.sum(), (~truth).sum()
    for threshold in [i / 100 for i in range(5, 96)]:
        said = probability >= threshold
        tpr, fpr = (said & truth).sum() / positives, (said & ~truth).sum() / negatives
        if tpr == 0:
            continue
        precision = base_rate * tpr / (base_rate * tpr + (1 - base_rate) * fpr)
        f1 = float(2 * precision * tpr / (precision + tpr))
        if f1 > best[1]:
            best = (threshold, f1)
    return best
