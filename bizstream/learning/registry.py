"""Trained models on disk: versioned, self-describing, promoted atomically.

    <root>/bodies/<body_id>/            a sentence-transformers directory (safetensors), shared by the versions
    <root>/bodies/<body_id>/onnx/       model.onnx (fp32) and model.int8.onnx, written by `bizstream export onnx`
    <root>/versions/<version>/          the version's payload (SetFit: head.safetensors) + metadata.json
    <root>/serving -> versions/<v>      a symlink, swapped with one rename (atomic on POSIX)
    <root>/history.json                 versions that served, oldest first (rollback walks back through it)

CryptoBERT's registry has versions without bodies (its base model lives outside, named by ``body_source``): each
version holds a LoRA adapter (``adapter/``) and the merged model's INT8 ONNX export (``onnx/``).

A version directory is written under a temporary name and renamed into place, so a crash never leaves a half
model where a whole one is expected; promotion is one ``os.replace`` of a symlink, so a crash mid-way leaves the old
version serving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bizstream.errors import BizstreamError

log = logging.getLogger(__name__)
BODY_GRACE_S = 3600.0  # an unused body younger than this may be one whose version is about to be added


class RegistryError(BizstreamError):
    """A version is missing, malformed, or cannot be promoted."""


@dataclass(frozen=True)
class ModelMetadata:
    """What metadata.json records about one version."""

    version: str
    analyzer: str
    body_id: str
    body_source: str  # what the body was built from: a path or a hub id
    parent: str | None
    data_fingerprint: str
    metrics: dict[str, float]
    kind: str  # "full" (body fine-tuned) or "head" (head refit on a parent's body)
    params: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)


class ModelRegistry:
    """One analyzer's models under one root folder; every version holds ``payload`` (a path inside it)."""

    def __init__(self, root: Path, payload: str = "head.safetensors") -> None:
        self.root = root
        self.payload = payload
        self.bodies = root / "bodies"
        self.versions = root / "versions"
        self.serving_link = root / "serving"
        self.history_file = root / "history.json"

    # -- writing ---------------------------------------------------------------------------------------------------

    def new_version_id(self) -> str:
        """A sortable, unique version name: v<utc time>-<random>."""
        return time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + f"-{uuid.uuid4().hex[:6]}"

    def staging(self) -> Path:
        """A fresh temporary folder inside the registry (same filesystem, so the final rename is atomic)."""
        path = self.root / ".staging" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def add_body(self, staged: Path, body_id: str) -> Path:
        """Move a staged body directory into place (no-op if that body is already there)."""
        target = self.bodies / body_id
        if target.exists():
            shutil.rmtree(staged, ignore_errors=True)
            return target
        _refuse_pickles(staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)
        return target

    def add_version(self, staged: Path, metadata: ModelMetadata) -> Path:
        """Write metadata.json into a staged version directory and move it into place."""
        if metadata.body_id and not (self.bodies / metadata.body_id).is_dir():
            raise RegistryError(f"version {metadata.version} refers to body {metadata.body_id}, which is not in {self.bodies}")
        if not (staged / self.payload).is_file():
            raise RegistryError(f"a version needs {self.payload}; {staged} has none")
        _refuse_pickles(staged)
        (staged / "metadata.json").write_text(json.dumps(asdict(metadata), indent=2, sort_keys=True))
        target = self.versions / metadata.version
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)
        return target

    def record_decision(self, version: str, promoted: bool, why: str, gate: dict[str, float]) -> None:
        """Keep what the gate decided about a version, and why, beside it (``decision.json``)."""
        _write_atomically(self.version_dir(version) / "decision.json",
                          json.dumps({"promoted": promoted, "why": why, "gate": gate, "decided_at": time.time()}))  # fmt: skip

    def decision(self, version: str) -> dict[str, Any] | None:
        """What the gate decided about a version (None for versions from before decisions were kept)."""
        path = self.version_dir(version) / "decision.json"
        return dict(json.loads(path.read_text())) if path.is_file() else None

    def promote(self, version: str) -> None:
        """Make ``version`` the serving one, atomically, and append it to the history."""
        self.metadata(version)  # must exist and be readable
        temporary = self.root / f".serving-{uuid.uuid4().hex}"
        os.symlink(Path("versions") / version, temporary)
        os.replace(temporary, self.serving_link)  # the atomic step
        history = [v for v in self.history() if v != version] + [version]
        _write_atomically(self.history_file, json.dumps(history))

    def rollback(self) -> str:
        """Serve the version that served before the current one; returns it."""
        history = self.history()
        current = self.serving()
        earlier = [v for v in history if v != current and (self.versions / v).is_dir()]
        if not earlier:
            raise RegistryError("nothing to roll back to: no earlier version has served")
        previous = earlier[-1]
        self.promote(previous)
        # Forget the rolled-back version in the history, so a second rollback goes further back.
        _write_atomically(self.history_file, json.dumps([v for v in self.history() if v != current]))
        return previous

    def prune(self, keep: int, body_grace_s: float = BODY_GRACE_S) -> list[str]:
        """Delete all but the newest ``keep`` versions — never the serving one, nor the latest ``keep`` of the history
        (what rollback walks back to) — then every body no remaining version uses and untouched for
        ``body_grace_s`` (a body is moved into place just before its version, possibly by another process). Returns
        the versions deleted; ``keep`` 0 deletes nothing. A version is renamed out of place before it is removed, so
        no half-deleted version is ever read as whole. Never raises: what it cannot do is logged, and tried again at
        the next call."""
        if keep <= 0:
            return []
        try:
            versions = self.list()
            spared = {m.version for m in versions[-keep:]} | set(self.history()[-keep:]) | {self.serving()}
            doomed = [m.version for m in versions if m.version not in spared]
            for version in doomed:
                _remove(self.versions / version, self.root)
            used = {m.body_id for m in versions if m.version not in doomed}
            for body in self.bodies.iterdir() if self.bodies.is_dir() else []:
                if body.name not in used and time.time() - _mtime(body) > body_grace_s:
                    _remove(body, self.root)
        except (RegistryError, OSError) as exc:
            log.warning("could not prune %s: %s", self.root, exc)
            return []
        if doomed:
            log.info("pruned %d old versions from %s (kept: the newest %d, the serving one and rollback's)", len(doomed),
                     self.root, keep)  # fmt: skip
        return doomed

    def import_from(self, other: ModelRegistry) -> list[str]:
        """Copy every body and version of another registry (e.g. trained on a GPU box) that this one lacks."""
        if not other.versions.is_dir():
            raise RegistryError(f"{other.root} is not a model registry: it has no versions/ folder (give the folder "
                                f"that holds versions/ and bodies/)")  # fmt: skip
        added = []
        for body in sorted(other.bodies.iterdir()) if other.bodies.is_dir() else []:
            if not (self.bodies / body.name).exists():
                staged = self.staging()
                shutil.copytree(body, staged, dirs_exist_ok=True)
                self.add_body(staged, body.name)
        for metadata in other.list():
            if not (self.versions / metadata.version).exists():
                staged = self.staging()
                shutil.copytree(other.version_dir(metadata.version), staged, dirs_exist_ok=True)
                (staged / "metadata.json").unlink()
                self.add_version(staged, metadata)
                added.append(metadata.version)
        return added

    def install(self, manifest: Mapping[str, Any], fetch: Callable[[Mapping[str, Any]], bytes]) -> str:
        """Add the version a manifest (from :meth:`manifest`, received from elsewhere) describes, with its body, by
        ``fetch``-ing each file this registry lacks; every file is checked against its size and SHA-256 before it is
        written, and nothing is in place until all of it is (RegistryError otherwise). Returns the version."""
        version, body_id, files = _checked(manifest)
        if (self.versions / version / "metadata.json").is_file():
            return version
        staged: dict[str, Path] = {}
        try:
            for entry in files:
                top, name, inner = entry["path"].split("/", 2)
                if top == "bodies" and (self.bodies / name).is_dir():
                    continue  # the body is here already (bodies are immutable, named by content)
                data = fetch(entry)
                if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise RegistryError(f"{entry['path']} of {version} does not match its checksum; refused")
                folder = staged.setdefault(f"{top}/{name}", self.staging())
                target = folder / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            for key, folder in staged.items():
                _refuse_pickles(folder)
                top, name = key.split("/")
                if top == "bodies":
                    self.add_body(folder, name)
            if body_id and not (self.bodies / body_id).is_dir():
                raise RegistryError(f"{version} needs body {body_id}, which its manifest does not carry")
            if f"versions/{version}" not in staged or not (staged[f"versions/{version}"] / "metadata.json").is_file():
                raise RegistryError(f"the manifest of {version} has no metadata.json")
            self.versions.mkdir(parents=True, exist_ok=True)
            os.rename(staged.pop(f"versions/{version}"), self.versions / version)
        finally:
            for folder in staged.values():
                shutil.rmtree(folder, ignore_errors=True)
        return version

    # -- reading ---------------------------------------------------------------------------------------------------

    def manifest(self, version: str) -> dict[str, Any]:
        """What another machine needs to serve ``version``: each file of the version and of its body, as a path
        relative to the registry's root with its size and SHA-256 (for :meth:`install`)."""
        metadata = self.metadata(version)
        folders = [self.version_dir(version)]
        if metadata.body_id and self.body_dir(metadata.body_id).is_dir():
            folders.append(self.body_dir(metadata.body_id))
        files = []
        for folder in folders:
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SAFE_SUFFIXES):
                data = path.read_bytes()
                files.append({"path": path.relative_to(self.root).as_posix(), "size": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
        return {"version": version, "body_id": metadata.body_id, "files": files}


    def serving(self) -> str | None:
        """The serving version, or None."""
        try:
            return Path(os.readlink(self.serving_link)).name
        except FileNotFoundError:
            return None

    def history(self) -> list[str]:
        """Versions that have served, oldest first."""
        try:
            history = json.loads(self.history_file.read_text())
        except FileNotFoundError:
            return []
        return [str(v) for v in history]

    def metadata(self, version: str) -> ModelMetadata:
        """A version's metadata."""
        path = self.versions / version / "metadata.json"
        try:
            return ModelMetadata(**json.loads(path.read_text()))
        except FileNotFoundError:
            known = sorted(p.name for p in self.versions.iterdir() if p.is_dir()) if self.versions.is_dir() else []
            hint = "it holds none yet"
            if known:
                hint = f"the newest: {', '.join(known[-3:])}; `bizstream models list` shows them all"
            raise RegistryError(f"no model version {version!r} in {self.versions} ({hint})") from None
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{path} is malformed: {exc}") from None

    def list(self) -> list[ModelMetadata]:
        """Every version, oldest first."""
        if not self.versions.is_dir():
            return []
        found = [self.metadata(p.name) for p in self.versions.iterdir() if (p / "metadata.json").is_file()]
        return sorted(found, key=lambda m: m.created_at)

    def version_dir(self, version: str) -> Path:
        """Where a version's files are."""
        return self.versions / version

    def body_dir(self, body_id: str) -> Path:
        """Where a body's files are."""
        return self.bodies / body_id


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another process (a worker sharing this registry) removed it a moment ago
        return time.time()


def _remove(path: Path, root: Path) -> None:
    """Out of place with one rename (atomic), then deleted."""
    trash = root / ".staging" / f"removed-{uuid.uuid4().hex}"
    trash.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, trash)
    except FileNotFoundError:  # another process removed it first
        return
    shutil.rmtree(trash, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(text)
    os.replace(temporary, path)


MAX_MANIFEST_FILES = 256
MAX_MANIFEST_BYTES = 4 * 1024**3
SAFE_SUFFIXES = {".safetensors", ".onnx", ".json", ".txt", ".md", ".model"}  # no pickles, nothing executable
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def _checked(manifest: Mapping[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """(version, body id, files) of a manifest that arrived from elsewhere, or RegistryError: bounded in size and
    count, every path inside versions/<version>/ or bodies/<body id>/ with plain names and a safe suffix."""
    try:
        version, body_id = str(manifest["version"]), str(manifest.get("body_id") or "")
        files = [dict(f) for f in manifest["files"]]
        for f in files:
            f["path"], f["size"], f["sha256"] = str(f["path"]), int(f["size"]), str(f["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"a malformed model manifest ({type(exc).__name__}: {exc})") from None
    if not _NAME.fullmatch(version) or (body_id and not _NAME.fullmatch(body_id)):
        raise RegistryError(f"a model manifest names version {version!r}, body {body_id!r}: refused")
    if len(files) > MAX_MANIFEST_FILES or sum(f["size"] for f in files) > MAX_MANIFEST_BYTES:
        raise RegistryError(f"the manifest of {version} is larger than {MAX_MANIFEST_FILES} files / {MAX_MANIFEST_BYTES} bytes")
    allowed = {("versions", version), ("bodies", body_id)}
    for f in files:
        parts = f["path"].split("/")
        if (len(parts) < 3 or (parts[0], parts[1]) not in allowed or not all(_NAME.fullmatch(p) and p not in {".", ".."} for p in parts)
                or PurePosixPath(f["path"]).suffix not in SAFE_SUFFIXES or not re.fullmatch(r"[0-9a-f]{64}", f["sha256"])):  # fmt: skip
            raise RegistryError(f"the manifest of {version} has a file that is not allowed: {f['path']!r}")
    return version, body_id, files


def _refuse_pickles(folder: Path) -> None:
    pickles = [p for p in folder.rglob("*") if p.suffix in {".pkl", ".pickle", ".bin", ".pt", ".ckpt"}]
    if pickles:
        raise RegistryError(f"refusing to store pickle-based files (safetensors only): {[str(p) for p in pickles]}")
