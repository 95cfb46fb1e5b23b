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
    not_a_model = tmp_path / "not-a-model"  # a folder, but no model's: transformers raises ValueError, not OSError
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{}")
    with pytest.raises(AnalyzerUnavailable, match="cannot be loaded"):
        TorchEncoder(not_a_model)
    assert TorchEncoder(default_body()).encode(["moon"]).shape == (1, 384)


def test_an_int8_post_gets_the_same_embedding_whatever_it_is_encoded_with(tmp_path: Path) -> None:
    """Dynamic INT8 quantizes activations with one scale per input tensor: in a padded batch a post's embedding moved
    with the other posts in it (two runs of `bizstream score` gave 9 of 405 sample posts another label). Each post runs
    alone, so its embedding is exactly the same alone, in any company, in any order."""
    import torch
    from transformers import BertConfig, BertModel

    from bizstream.learning.embeddings import OnnxEncoder, default_body
    from bizstream_plugins.setfit.export import export_body

    body = tmp_path / "body"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(body, safe_serialization=True)  # fmt: skip
    exported = export_body(body)
    texts = ["$BTC to the moon", "rekt again, sold the bottom like always and now it pumps without me", "wagmi",
             "is $ETH a buy here or do we wait for the halving to play out first?", "ngmi"]  # fmt: skip
    for onnx_file in (exported.int8, exported.fp32):
        encoder = OnnxEncoder(onnx_file, default_body() / "tokenizer.json")
        together = encoder.encode(texts)
        assert together.shape == (5, 32) and np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
        alone = np.concatenate([encoder.encode([t]) for t in texts])
        backwards = encoder.encode(texts[::-1])[::-1]
        assert np.array_equal(together, alone) and np.array_equal(together, backwards), onnx_file.name
    assert OnnxEncoder(exported.int8, default_body() / "tokenizer.json").encode([]).shape[0] == 0
