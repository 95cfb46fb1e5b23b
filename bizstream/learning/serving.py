"""Serving whatever a model registry's pointer names, swapping between batches when another version is promoted.

A watcher thread looks at the registry's serving pointer every ``POLL_S``; when it names another version, the watcher
loads it while the old model keeps scoring, and the first batch after the load finished uses the new one — so a
promotion made while the worker waits for posts serves from the very next batch. :meth:`HotSwap.for_batch` (called
at the start of each batch) also looks, so a worker never serves an old version for longer than one load. Nothing is
dropped, and a version that fails to load is logged and the old one keeps serving.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from bizstream.learning.registry import ModelRegistry

log = logging.getLogger(__name__)
Model = TypeVar("Model")
POLL_S = 1.0  # how often the watcher reads the registry's serving pointer (a symlink: cheap)
# analyzer -> why a newly promoted version of it is not serving (a refused download, a failed load); every Score
# carries it in the analyzer's details["model_refused"] until a version serves as promoted.
NOTICES: dict[str, str] = {}


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
        self._failed: str | None = None  # a version whose load failed is not tried again until another is promoted
        self._lock = threading.Lock()

    def start(self, version: str) -> None:
        """Load ``version`` in the foreground and serve it; from then on, watch the registry for promotions."""
        self._install(version, self.load(version))
        threading.Thread(target=self._watch, name=f"{self.what}-watcher", daemon=True).start()

    def for_batch(self) -> Model:
        """The model to score this batch with (a finished background load is swapped in first)."""
        with self._lock:
            if self._next is not None:
                self._install(*self._next)
                self._next = None
        self._look()
        if self.current is None:
            raise RuntimeError(f"{self.what}: analyze() called before load()")
        return self.current

    def wait_for_swap(self, timeout_s: float = 60.0) -> None:
        """Block until the promoted version is loaded (the next batch uses it) or its load failed; for tests and
        benchmarks."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            promoted = self.registry.serving()
            with self._lock:
                ready = promoted in (None, self.version) or (self._next is not None and self._next[0] == promoted)
                failed = promoted == self._failed
            if ready or failed:
                return
            time.sleep(0.05)

    def _look(self) -> None:
        """Start loading the promoted version in the background when it is new."""
        promoted = self.registry.serving()
        with self._lock:
            if promoted in (None, self.version, self._loading, self._failed) or (self._next and self._next[0] == promoted):
                return
            self._loading = promoted
        threading.Thread(target=self._load_in_background, args=(promoted,), name=f"{self.what}-loader", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(POLL_S)
            try:
                self._look()
            except Exception:  # boundary: a registry being rewritten must not end the watch
                log.debug("could not read %s's serving pointer", self.what, exc_info=True)

    def _install(self, version: str, model: Model) -> None:
        self.current, self.version = model, version
        NOTICES.pop(self.what, None)
        log.info("%s serves %s", self.what, version)

    def _load_in_background(self, version: str) -> None:
        try:
            model = self.load(version)
        except Exception:  # boundary: keep serving the old version, and say why
            log.exception("could not load newly promoted %s version %s; still serving %s", self.what, version, self.version)
            NOTICES[self.what] = f"{version} could not be loaded; still serving {self.version}"
            with self._lock:
                self._failed, self._loading = version, None
            return
        with self._lock:
            self._next, self._loading = (version, model), None


class OnnxSession:
    """An ONNX graph on onnxruntime's CPU provider, run on one input at a time, several at once.

    Why not padded batches: dynamic INT8 quantization (what ``bizstream export onnx`` writes) quantizes each activation
    with one scale for the whole input tensor, so in a batch a post's output depends on the other posts in it and on
    their padding. Two runs of ``bizstream score`` on the sample posts gave 9 of 405 posts another label; one post's
    MiniLM embedding had a cosine of 0.956 between two batchings. Run alone and unpadded, a post gets the same output
    whatever arrives with it. That is not slower: with one onnxruntime thread per run and ``threads`` runs at once
    (onnxruntime releases the GIL), MiniLM INT8 scored more posts per second than in padded batches of 16 on all
    cores (``bench/inference.py``, "one_at_a_time").
    """

    def __init__(self, onnx_file: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.threads = threads or _cores()

    def run_texts(self, output: str, encodings: Sequence[Any]) -> list[np.ndarray]:
        """``output`` for each tokenized text (a tokenizers ``Encoding``: its ids, unpadded), in the order given."""
        feeds = []
        for encoding in encodings:
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            feeds.append(feed)
        return self.run(output, feeds)

    def run(self, output: str, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
        """``output`` for each feed (the arrays of one input, batch dimension 1), in the order given."""

        def one(feed: Mapping[str, np.ndarray]) -> np.ndarray:
            result: np.ndarray = self.session.run([output], dict(feed))[0]
            return result

        if self.threads == 1 or len(feeds) < 2:
            return [one(feed) for feed in feeds]
        return list(_runners(self.threads).map(one, feeds))


def _cores() -> int:
    """The cores this process may run on (a container's cpuset), not every core of the host."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _runners(threads: int) -> ThreadPoolExecutor:
    """One pool per size for every session in the process, so sessions loaded side by side share the cores."""
    return ThreadPoolExecutor(threads, thread_name_prefix="onnx")
