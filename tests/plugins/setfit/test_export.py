from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.records import SENTIMENTS
from bizstream.testing import check_analyzer
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer, load_version
from bizstream_plugins.setfit.export import export_version
from tests.conftest import ROOT, separable

pytestmark = pytest.mark.slow


def test_export_quantize_serve_round_trip(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    registry, metadata, split = trained
    exported = export_version(registry, metadata.version)
    # The MatMul weights shrink 4x; the word-embedding table stays fp32 (quantizing it cost agreement).
    assert exported.int8.stat().st_size < 0.7 * exported.fp32.stat().st_size
    texts, _ = separable(["$BTC", "$ETH", "$XRP", "$PEPE", "$ARB", "$SOL", "$ADA", "$DOT"])
    texts += [t.upper() for t in texts] + [t + " lol" for t in texts]  # 360 texts, some off the templates
    torch_p = load_version(registry, metadata.version, "torch", 128).model.predict_proba(texts)
    fp32_p = load_version(registry, metadata.version, "onnx-fp32", 128).model.predict_proba(texts)
    int8_p = load_version(registry, metadata.version, "onnx-int8", 128).model.predict_proba(texts)
    assert np.abs(fp32_p - torch_p).max() < 1e-3
    agreement = float((int8_p.argmax(1) == torch_p.argmax(1)).mean())
    assert agreement >= 0.98, agreement
    analyzer = SetfitAnalyzer(registry.root, runtime="auto")
    analyzer.load()
    assert analyzer.serving_runtime == "onnx-int8"
    # Each post runs alone (INT8 would move its probabilities with its batch-mates): the same answer in any company.
    check_analyzer(analyzer, load=False)
    check_analyzer(SetfitAnalyzer(registry.root, runtime="torch"), atol=1e-4)


def test_onnx_serving_does_not_import_torch(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    registry, metadata, _ = trained
    export_version(registry, metadata.version)
    code = (
        "import sys; from pathlib import Path; from bizstream_plugins.setfit.analyzer import load_version; "
        "from bizstream.learning.registry import ModelRegistry; "
        f"m = load_version(ModelRegistry(Path({str(registry.root)!r})), {metadata.version!r}, 'onnx-int8', 128); "
        "print(m.model.predict_proba(['$BTC to the moon']).argmax()); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert SENTIMENTS[int(result.stdout.strip())].value == "bullish"


def test_the_trainer_measures_a_version_as_it_serves(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    """The gate, pseudo-labels and the labeler read SetFit's probabilities through the trainer: once a body is
    exported they are the INT8 model's that workers serve, not torch's (which disagreed on 3.0% of finance tweets)."""
    from bizstream.records import Post
    from bizstream_plugins.setfit.training import SetfitTrainer

    registry, metadata, split = trained
    export_version(registry, metadata.version)
    texts = list(split.test_texts[:40])
    served = SetfitAnalyzer(registry.root, runtime="auto")
    served.load()
    as_served = np.array([[p.probabilities[s.value] for s in SENTIMENTS]
                          for p in served.analyze([Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(texts)]) if p])  # fmt: skip
    measured = SetfitTrainer(registry).predict_proba(metadata.version, texts)
    again = SetfitTrainer(registry).predict_proba(metadata.version, texts)  # from its cache, which keeps INT8 apart
    on_torch = SetfitTrainer(registry, runtime="torch").predict_proba(metadata.version, texts)
    assert measured is not None and again is not None and on_torch is not None
    assert np.abs(measured - as_served).max() < 1e-5 and np.array_equal(measured, again)
    assert np.abs(on_torch - as_served).max() > 1e-4  # INT8 is not torch: the two caches are not mixed up
