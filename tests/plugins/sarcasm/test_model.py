from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bizstream_plugins.sarcasm.model import SarcasmHead


def test_sarcasm_head_learns_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(1.0, 0.3, size=(40, 8)), rng.normal(-1.0, 0.3, size=(160, 8))]).astype(np.float32)
    y = [True] * 40 + [False] * 160
    head = SarcasmHead.fit(x, y)
    p = head.probability(x)
    assert p[:40].min() > 0.5 > p[40:].max()
    head.save(tmp_path / "s.safetensors")
    assert np.allclose(SarcasmHead.load(tmp_path / "s.safetensors").probability(x), p)
    with pytest.raises(ValueError, match="both sarcastic and not"):
        SarcasmHead.fit(x[:10], [True] * 10)
