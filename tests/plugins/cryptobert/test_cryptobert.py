"""CryptoBERT's code path on a tiny random RoBERTa built from a config: load, LoRA, adapters, ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bizstream.errors import AnalyzerUnavailable
from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.records import Post
from bizstream.testing import check_analyzer
from bizstream_plugins.cryptobert.analyzer import CryptoBertAnalyzer
from bizstream_plugins.cryptobert.export import export_onnx
from bizstream_plugins.cryptobert.model import load_classifier, predict_proba, train_lora, with_adapter

WORDS = "btc eth sol moon rekt pump dump to the scam wagmi ngmi buy sell rug what is wallet".split()
TEXTS = {"bullish": ["btc to the moon", "eth pump wagmi", "buy sol moon"],
         "bearish": ["btc rug scam", "eth dump rekt", "sell sol ngmi"],
         "neutral": ["what is btc", "eth wallet", "sol what wallet"]}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RoBERTa classifier with random weights and CryptoBERT's label names, saved like the real one."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cryptobert")
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "<mask>", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>", mask_token="<mask>", cls_token="<s>", sep_token="</s>").save_pretrained(folder)  # fmt: skip
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=64, pad_token_id=0, num_labels=3,
                           id2label={0: "Bearish", 1: "Neutral", 2: "Bullish"},
                           label2id={"Bearish": 0, "Neutral": 1, "Bullish": 2})  # fmt: skip
    RobertaForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    return folder


def test_loads_from_a_folder_and_predicts(tiny: Path) -> None:
    analyzer = CryptoBertAnalyzer(model=str(tiny))
    analyzer.load()
    out = analyzer.analyze([Post(id="a", text="btc to the moon", thread_id="a"), Post(id="b", text="", thread_id="b")])
    assert out[0] is not None and out[0].problem() is None and out[1] is None
    check_analyzer(analyzer, load=False)


def test_missing_weights_make_it_unavailable_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(AnalyzerUnavailable, match="nothing is downloaded at run time"):
        CryptoBertAnalyzer(model="ElKulako/definitely-not-cached").load()
    with pytest.raises(AnalyzerUnavailable, match="no weights"):
        CryptoBertAnalyzer(model=str(tmp_path / "empty")).load()


def test_lora_training_changes_the_adapters_which_round_trip(tiny: Path, tmp_path: Path) -> None:
    import torch

    model, tokenizer = load_classifier(str(tiny))
    texts = [t for ts in TEXTS.values() for t in ts] * 4
    labels = [label for label, ts in TEXTS.items() for _ in ts] * 4
    before = predict_proba(model, tokenizer, texts)
    peft_model = train_lora(model, tokenizer, texts, labels, tmp_path / "adapter", epochs=30, lr=5e-3)
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.detach().abs().sum()) > 0 for p in lora_b)  # LoRA B starts at zero; training moved it
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    after = predict_proba(peft_model, tokenizer, texts)
    assert not np.allclose(before, after)
    accuracy = float((after.argmax(1) == np.array([["bearish", "neutral", "bullish"].index(y) for y in labels])).mean())
    assert accuracy > 0.8  # it learned the toy set

    fresh, _ = load_classifier(str(tiny))
    merged = with_adapter(fresh, tmp_path / "adapter")
    assert np.allclose(predict_proba(merged, tokenizer, texts), after, atol=1e-5)
    served = CryptoBertAnalyzer(model=str(tiny), adapter=str(tmp_path / "adapter"))
    served.load()
    probs = [p.probabilities for p in served.analyze([Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(texts)]) if p]
    assert np.allclose([[p["bearish"], p["neutral"], p["bullish"]] for p in probs], after, atol=1e-5)

    # The merged model exports to ONNX (INT8) and gives the same answers.
    import onnxruntime as ort

    onnx_file = export_onnx(merged, tokenizer, tmp_path / "onnx", int8=False)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    enc = tokenizer(texts, padding=True, return_tensors="np")
    (logits,) = session.run(["logits"], {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)})
    with torch.no_grad():
        reference = merged(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    assert np.abs(logits - reference).max() < 1e-4
    assert export_onnx(merged, tokenizer, tmp_path / "onnx8").name == "model.int8.onnx"


def test_train_cryptobert_registers_gates_and_serves_the_onnx_export(tiny: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    import orjson

    from bizstream_plugins.cryptobert.model import registry_at
    from tests.conftest import ROOT, child_env

    labels = tmp_path / "labels.jsonl"
    rows = [{"post_id": f"x{i}", "text": t, "label": y} for i, (y, t) in enumerate((y, t) for y, ts in TEXTS.items() for t in ts * 4)]
    labels.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    env = child_env()
    env.update(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_PLUGINS__OPTIONS__CRYPTOBERT__MODEL=str(tiny),
               BIZSTREAM_TRACKING__ENABLED="false", COLUMNS="200")  # fmt: skip

    def bizstream(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "bizstream", *args], env=env, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    bizstream("labels", "import", str(labels))
    first = bizstream("train", "cryptobert", "--epochs", "30", "--lr", "5e-3")
    assert "promoted" in first and "base" in first  # compared with the base model, and better than random weights
    registry = registry_at(tmp_path / "cache" / "models" / "cryptobert")
    (v1,) = [m.version for m in registry.list()]
    assert registry.serving() == v1 and registry.metadata(v1).kind == "lora"
    assert (registry.version_dir(v1) / "adapter" / "adapter_model.safetensors").is_file()
    assert (registry.version_dir(v1) / "onnx" / "model.int8.onnx").is_file()

    # A second run that learns nothing (lr 0) is compared with v1 and not promoted.
    second = bizstream("train", "cryptobert", "--epochs", "1", "--lr", "0", "--no-onnx")
    assert "not promoted" in second and v1 in second
    assert registry.serving() == v1 and len(registry.list()) == 2
    assert v1 in bizstream("models", "list", "--analyzer", "cryptobert")

    # The plugin serves the promoted version: INT8 ONNX by default, the adapter on torch on request; they agree.
    posts = [Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(t for ts in TEXTS.values() for t in ts)]
    onnx = CryptoBertAnalyzer(model=str(tiny), registry=registry.root)
    torch_served = CryptoBertAnalyzer(model=str(tiny), registry=registry.root, runtime="torch")
    onnx.load()
    torch_served.load()
    assert (onnx.version, onnx.serving_runtime, torch_served.serving_runtime) == (v1, "onnx-int8", "torch")
    a = np.array([[p.probabilities[c] for c in ("bearish", "neutral", "bullish")] for p in onnx.analyze(posts) if p])
    b = np.array([[p.probabilities[c] for c in ("bearish", "neutral", "bullish")] for p in torch_served.analyze(posts) if p])
    assert a.shape == (9, 3) and np.abs(a - b).max() < 0.1 and (a.argmax(1) == b.argmax(1)).mean() >= 8 / 9
    check_analyzer(onnx, load=False)

    # The ONNX path needs no base weights at all.
    (registry_only := CryptoBertAnalyzer(model=str(tmp_path / "gone"), registry=registry.root)).load()
    assert registry_only.serving_runtime == "onnx-int8"
    v2 = registry.list()[1].version
    bizstream("models", "promote", "--analyzer", "cryptobert", v2)
    # A running analyzer swaps between batches (its watcher loads v2 beside it; when the load is done is timing):
    # every batch is whole, and once v2 is loaded it serves, on torch since v2 has no ONNX export (--no-onnx).
    assert all(p is not None for p in onnx.analyze(posts)) and onnx.version in (v1, v2)
    onnx.wait_for_swap()
    assert all(p is not None for p in onnx.analyze(posts))
    assert (onnx.version, onnx.serving_runtime) == (v2, "torch")
    assert v1 in bizstream("models", "rollback", "--analyzer", "cryptobert") and registry.serving() == v1


def test_the_trainer_job_retrains_cryptobert_when_asked(
    tiny: Path, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bizstream.learning.job import run_training_job
    from bizstream.store.labels import LabelStore
    from bizstream_plugins.cryptobert.model import registry_at
    from tests.learning.test_job import label_rows, setup

    settings, setfit_registry = setup(trained, tmp_path)
    store = LabelStore(settings.store_path)
    store.add(label_rows(["$BTC", "$ETH", "$SOL", "$DOGE"], flip=False, at=1000.0))
    missing = settings.replace(trainer={"cryptobert": True}, plugins={"options": {"cryptobert": {"model": str(tmp_path / "none")}}})
    result = run_training_job(missing, "labels")
    assert result.promoted and "cryptobert not retrained: no weights" in caplog.text  # SetFit goes on without it

    store.add(label_rows(["$ADA", "$XRP", "$LINK", "$DOT"], flip=False, at=2000.0))
    with_weights = settings.replace(trainer={"cryptobert": True}, plugins={"options": {"cryptobert": {"model": str(tiny)}}})
    run_training_job(with_weights, "labels")
    (version,) = registry_at(with_weights.cryptobert_registry).list()
    assert version.analyzer == "cryptobert" and version.metrics["train_examples"] > 0 and version.metrics["test_examples"] > 0
    assert setfit_registry.serving() is not None
