"""The embedding cache, and the torch encoder that loads only when a text is not cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bizstream.learning.embeddings import EmbeddingCache, TorchEncoder


class Counting:
    """An encoder that says how many texts it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.asked += texts
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_cached_texts_are_not_encoded_again_and_a_lazy_encoder_never_loads_for_them(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    counting = Counting()
    first = cache.encode(counting, ["moon", "rekt", "moon"])
    assert counting.asked == ["moon", "rekt"] and first.tolist() == [[4, 1], [4, 1], [4, 1]]
    assert cache.encode(counting, ["rekt", "wagmi"]).tolist() == [[4, 1], [5, 1]] and counting.asked[-1:] == ["wagmi"]
    lazy = TorchEncoder(tmp_path / "no-such-body", lazy=True)  # loading it would fail: nothing is there
    assert cache.encode(lazy, ["moon", "wagmi"]).tolist() == [[4, 1], [5, 1]]
    assert "model" not in vars(lazy)
    cache.close()


def test_a_body_loads_only_from_local_safetensors(tmp_path: Path) -> None:
    """Never a pickle, never a download: a body with only pytorch_model.bin, or a hub id not in the local cache, is
    refused with the reason."""
    import shutil

    import pytest
    import torch
    from safetensors.torch import load_file

    from bizstream.errors import AnalyzerUnavailable
    from bizstream.learning.embeddings import default_body

    pickled = tmp_path / "pickled"
    shutil.copytree(default_body(), pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(AnalyzerUnavailable, match="safetensors"):
        TorchEncoder(pickled)
    with pytest.raises(AnalyzerUnavailable, match="must be a local folder"):
        TorchEncoder("sentence-transformers/no-such-model-here")
    assert TorchEncoder(default_body()).encode(["moon"]).shape == (1, 384)
