from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bizstream.learning.registry import ModelMetadata, ModelRegistry, RegistryError
from bizstream_plugins.setfit.model import Head


def add(registry: ModelRegistry, body_id: str = "body-1", parent: str | None = None) -> str:
    body = registry.staging()
    (body / "model.safetensors").write_bytes(b"weights")
    registry.add_body(body, body_id)
    version = registry.new_version_id()
    staged = registry.staging()
    Head(np.zeros((3, 4), np.float32), np.zeros(3, np.float32)).save(staged / "head.safetensors")
    registry.add_version(staged, ModelMetadata(version, "setfit", body_id, "test", parent, "sha256:x", {"accuracy": 0.5}, "full"))
    return version


def test_promote_and_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.serving() is None
    v1, v2, v3 = add(registry), add(registry), add(registry)
    for v in (v1, v2, v3):
        registry.promote(v)
    assert registry.serving() == v3
    assert registry.rollback() == v2 and registry.serving() == v2
    assert registry.rollback() == v1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    assert [m.version for m in registry.list()] == [v1, v2, v3]
    assert registry.metadata(v2).metrics == {"accuracy": 0.5}


def test_a_crash_during_promotion_leaves_the_old_version_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(tmp_path)
    v1, v2 = add(registry), add(registry)
    registry.promote(v1)

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.promote(v2)
    monkeypatch.undo()
    assert registry.serving() == v1
    assert registry.history() == [v1]


def test_unknown_versions_and_pickles_are_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match=r"no model version 'v0' in .* \(it holds none yet\)"):
        registry.promote("v0")
    body = registry.staging()
    (body / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(RegistryError, match="safetensors only"):
        registry.add_body(body, "body-x")
    staged = registry.staging()
    with pytest.raises(RegistryError, match="refers to body body-9"):
        registry.add_version(staged, ModelMetadata("v1", "setfit", "body-9", "t", None, "x", {}, "full"))
