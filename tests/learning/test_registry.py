from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from bizstream.learning.registry import BODY_GRACE_S, ModelMetadata, ModelRegistry, RegistryError
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


def test_prune_keeps_the_newest_the_serving_and_what_rollback_walks_back_to(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    v = [add(registry, body_id=f"body-{i}") for i in range(6)]  # each with a body of its own
    registry.promote(v[0])
    registry.promote(v[1])  # history v0, v1; v1 serves
    long_ago = time.time() - 2 * BODY_GRACE_S
    for body in registry.bodies.iterdir():
        os.utime(body, (long_ago, long_ago))
    assert registry.prune(0) == [] and len(registry.list()) == 6  # 0: keep everything
    assert registry.prune(2) == [v[2], v[3]]  # the newest two, and the two that served
    assert [m.version for m in registry.list()] == [v[0], v[1], v[4], v[5]]
    assert sorted(b.name for b in registry.bodies.iterdir()) == ["body-0", "body-1", "body-4", "body-5"]
    assert not list((tmp_path / ".staging").iterdir())  # nothing left half-deleted
    # A body just moved into place, whose version is about to be added (maybe by another process), is left alone.
    fresh = registry.staging()
    (fresh / "model.safetensors").write_bytes(b"weights")
    registry.add_body(fresh, "body-new")
    assert registry.prune(2) == [] and (registry.bodies / "body-new").is_dir()
    assert registry.serving() == v[1] and registry.rollback() == v[0]
