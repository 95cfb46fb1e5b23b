"""Serving whatever a model registry's pointer names, swapping between batches when another version is promoted.

The analyzer asks :meth:`HotSwap.for_batch` at the start of each batch. When the registry's serving version has
changed, a background thread loads it while the old model keeps scoring; the batch after the load finished uses the
new one. Nothing is dropped, and a version that fails to load is logged and the old one keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from bizstream.learning.registry import ModelRegistry

log = logging.getLogger(__name__)
Model = TypeVar("Model")


class HotSwap(Generic[Model]):
    """The model of the registry's serving version, built by ``load(version)``, swapped in the background."""

    def __init__(self, registry: ModelRegistry, load: Callable[[str], Model], what: str) -> None:
        self.registry = registry
        self.load = load
        self.what = what
        self.version = "-"
        self.current: Model | None = None
        self._next: tuple[str, Model] | None = None
        self._loading: str | None = None
        self._lock = threading.Lock()

    def start(self, version: str) -> None:
        """Load ``version`` in the foreground and serve it."""
        self._install(version, self.load(version))

    def for_batch(self) -> Model:
        """The model to score this batch with (a finished background load is swapped in first)."""
        with self._lock:
            if self._next is not None:
                self._install(*self._next)
                self._next = None
        promoted = self.registry.serving()
        if promoted is not None and promoted not in (self.version, self._loading):
            self._loading = promoted
            threading.Thread(target=self._load_in_background, args=(promoted,), name=f"{self.what}-loader", daemon=True).start()
        if self.current is None:
            raise RuntimeError(f"{self.what}: analyze() called before load()")
        return self.current

    def wait_for_swap(self, timeout_s: float = 60.0) -> None:
        """Block until a background load (if any) is done; for tests and benchmarks."""
        deadline = time.monotonic() + timeout_s
        while self._loading is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _install(self, version: str, model: Model) -> None:
        self.current, self.version = model, version
        log.info("%s serves %s", self.what, version)

    def _load_in_background(self, version: str) -> None:
        try:
            model = self.load(version)
        except Exception:  # boundary: keep serving the old version, and say why
            log.exception("could not load newly promoted %s version %s; still serving %s", self.what, version, self.version)
            return
        finally:
            self._loading = None
        with self._lock:
            self._next = (version, model)
