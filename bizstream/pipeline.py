"""Analyze a batch of posts with every analyzer, isolated from each other, and fuse the results into Scores.

Plain Python with no faust import: the worker runs :meth:`Pipeline.process` off the event loop, and ``bizstream
score`` runs the very same code with no broker.

Fusion: a learned fusion (bizstream.learning.fusion) when ``fusion_source`` gives one, checked once per batch, else
the fixed weights; each Score says which (``Score.fusion``).

After fusion, fusers (e.g. the sarcasm fusion plugin) may refine each Score, seeing every analyzer's result and the
Score of the post it replies to (posts are keyed by thread, so a thread's posts reach the same worker; the pipeline
remembers the last ``context_posts`` Scores).

Isolation: each analyzer runs on its own single thread with the batch's time budget. One that raises, returns
something malformed, or overruns costs only its own output; the Score records why. A thread cannot be killed, so an
analyzer still stuck on an earlier batch is skipped (and recorded as such) until it comes back.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime

from bizstream.analyzer import Analyzer, Context, Fuser, Prediction, disagreement
from bizstream.learning.fusion import FIXED, UNWEIGHTED, LearnedFusion
from bizstream.learning.serving import NOTICES
from bizstream.records import SENTIMENTS, AnalyzerResult, Post, Route, Score
from bizstream.settings import FusionSettings, RoutingSettings
from bizstream.tickers import TickerExtractor

log = logging.getLogger(__name__)
CLASS_NAMES = [s.value for s in SENTIMENTS]


@dataclass(frozen=True)
class Unscored:
    """A post that got no score because no analyzer produced a usable result for it."""

    post: Post
    reason: str


@dataclass(frozen=True)
class BatchResult:
    """Scores for the posts that got one (in input order) and the posts that did not, with why."""

    scores: list[Score]
    unscored: list[Unscored]


class Pipeline:
    """Runs analyzers on batches and fuses their predictions with the configured weights."""

    def __init__(
        self,
        analyzers: Sequence[Analyzer],
        fusion: FusionSettings,
        timeout_s: float,
        routing: RoutingSettings | None = None,
        fusers: Sequence[Fuser] = (),
        context_posts: int = 10_000,
        fusion_source: Callable[[], LearnedFusion | None] | None = None,
        tickers: TickerExtractor | None = None,
    ) -> None:
        if not analyzers:
            raise ValueError("a pipeline needs at least one available analyzer")
        self.analyzers = list(analyzers)
        self.fusion = fusion
        self.timeout_s = timeout_s
        self.routing = routing or RoutingSettings()
        self.cheap = [a for a in self.analyzers if a.name in self.routing.cheap]
        self.expensive = [a for a in self.analyzers if a.name not in self.routing.cheap]
        self.cascading = self.routing.cascade and bool(self.cheap) and bool(self.expensive)
        self._threads = {a.name: _AnalyzerThread(a) for a in analyzers}
        self._running: dict[str, Future[_Ran]] = {}
        self.fusers = list(fusers)
        self.context_posts = context_posts
        self._recent: OrderedDict[str, Score] = OrderedDict()
        self.fusion_source = fusion_source
        self.tickers = tickers

    def process(self, posts: Sequence[Post]) -> BatchResult:
        """Score one batch (through the cascade when it is on). Never raises because of an analyzer or a post."""
        if not posts:
            return BatchResult([], [])
        results: list[dict[str, AnalyzerResult | None]] = [{} for _ in posts]
        routes: list[Route] = ["all"] * len(posts)
        if not self.cascading:
            self._merge(results, range(len(posts)), self._run_all(self.analyzers, posts))
        else:
            self._merge(results, range(len(posts)), self._run_all(self.cheap, posts))
            ambiguous = [i for i, r in enumerate(results) if self.is_ambiguous(r)]
            routes = ["cheap"] * len(posts)
            for i in ambiguous:
                routes[i] = "escalated"
            if ambiguous:
                self._merge(results, ambiguous, self._run_all(self.expensive, [posts[i] for i in ambiguous]))
        scores: list[Score] = []
        scored_posts: list[Post] = []
        unscored: list[Unscored] = []
        learned = self._learned(results)
        tickers = [self.tickers.for_post(p.id, p.text, p.reply_to, p.thread_id) if self.tickers else [] for p in posts]
        for post, per_post, route, by_learned, named in zip(posts, results, routes, learned, tickers, strict=True):
            score = self._fuse(post, per_post, route, by_learned, named)
            if isinstance(score, Score):
                scores.append(score)
                scored_posts.append(post)
            else:
                unscored.append(Unscored(post, score))
        if self.fusers and scores:  # only fusers read the context, so only they pay for remembering it
            scores = self._refine(scored_posts, scores)
            for score in scores:
                self._recent[score.post_id] = score
                self._recent.move_to_end(score.post_id)
            while len(self._recent) > self.context_posts:
                self._recent.popitem(last=False)
        return BatchResult(scores, unscored)

    def _refine(self, posts: list[Post], scores: list[Score]) -> list[Score]:
        """Run the fusers in order; a fuser that raises or returns something unusable keeps the Score it was given."""
        for fuser in self.fusers:
            in_batch = {s.post_id: s for s in scores}
            items = [(p, s, Context(parent=in_batch.get(p.reply_to or "") or self._recent.get(p.reply_to or "")))
                     for p, s in zip(posts, scores, strict=True)]  # fmt: skip
            try:
                refined = list(fuser.refine(items))
                if len(refined) != len(scores):
                    raise ValueError(f"returned {len(refined)} scores for {len(scores)} posts")
            except Exception as exc:  # boundary: a fuser costs only its own refinement
                log.warning("fuser %s raised %s: %s", fuser.name, type(exc).__name__, exc)
                scores = [_with_failure(s, fuser, f"{type(exc).__name__}: {exc}") for s in scores]
                continue
            scores = [self._accept(fuser, old, new) for old, new in zip(scores, refined, strict=True)]
        return scores

    @staticmethod
    def _accept(fuser: Fuser, old: Score, new: Score | None) -> Score:
        if new is None:
            return old
        problem = None
        if not isinstance(new, Score) or new.post_id != old.post_id:
            problem = f"not a Score for post {old.post_id}: {new!r:.80}"
        else:
            problem = disagreement(new.score, new.label, new.confidence, new.probabilities)
        return new if problem is None else _with_failure(old, fuser, problem)

    def is_ambiguous(self, results: dict[str, AnalyzerResult | None]) -> bool:
        """True unless a cheap analyzer is sure enough (routing.min_confidence, min_abs_score) to settle the post."""
        return not any(
            r is not None and r.error is None and r.confidence is not None and r.score is not None
            and r.confidence >= self.routing.min_confidence and abs(r.score) >= self.routing.min_abs_score
            for r in results.values()
        )  # fmt: skip

    @staticmethod
    def _merge(
        into: list[dict[str, AnalyzerResult | None]],
        indices: Sequence[int],
        outcomes: dict[str, list[AnalyzerResult | None]],
    ) -> None:
        for name, per_post in outcomes.items():
            for i, result in zip(indices, per_post, strict=True):
                into[i][name] = result

    def close(self) -> None:
        """Let go of the analyzer threads (a hung one is abandoned, not joined)."""
        for thread in self._threads.values():
            thread.close()

    # -- running ---------------------------------------------------------------------------------------------------

    def _run_all(self, analyzers: Sequence[Analyzer], posts: Sequence[Post]) -> dict[str, list[AnalyzerResult | None]]:
        """Every analyzer on the batch, in chunks, within the time budget; see _settle for an overrun."""
        outcomes: dict[str, list[AnalyzerResult | None]] = {}
        chunks: dict[str, list[_Chunk]] = {}
        for analyzer in analyzers:
            busy = self._running.get(analyzer.name)
            if busy is not None and not busy.done():
                error = f"skipped: still busy with an earlier batch that overran worker.analyzer_timeout_s={self.timeout_s}"
                outcomes[analyzer.name] = self._failed(analyzer, error, len(posts), 0.0)
                continue
            chunks[analyzer.name] = self._submit(analyzer, posts, range(len(posts)))
        wait([c.future for cs in chunks.values() for c in cs], timeout=self.timeout_s)
        for analyzer in analyzers:
            if analyzer.name in chunks:
                outcomes[analyzer.name] = self._settle(analyzer, posts, chunks[analyzer.name])
        return outcomes

    def _submit(self, analyzer: Analyzer, posts: Sequence[Post], indices: Sequence[int]) -> list[_Chunk]:
        """Queue ``posts[indices]`` on the analyzer's thread in up to CHUNKS chunks (run one after another)."""
        size = max(MIN_CHUNK, -(-len(indices) // CHUNKS))
        return [_Chunk(part, self._threads[analyzer.name].submit([posts[i] for i in part]))
                for part in (indices[i : i + size] for i in range(0, len(indices), size))]  # fmt: skip

    def _settle(self, analyzer: Analyzer, posts: Sequence[Post], chunks: list[_Chunk], retry: bool = True) -> list[AnalyzerResult | None]:
        """Results per post once the budget is spent: finished chunks' predictions; the chunk in hand at the deadline
        times out (only its posts); chunks that had not started are run again, with a fresh budget, as soon as the
        slow chunk is done (once per batch) — so one expensive post costs its own chunk, not the batch."""
        results: list[AnalyzerResult | None] = [None] * len(posts)
        waiting: list[int] = []
        for chunk in chunks:
            part = [posts[i] for i in chunk.indices]
            if chunk.future.cancel():  # never started: held up by a slow chunk before it
                waiting += chunk.indices
                continue
            if not chunk.future.done():
                self._running[analyzer.name] = chunk.future
                error = (f"timed out after worker.analyzer_timeout_s={self.timeout_s} s on a chunk of {len(part)} "
                         f"of the batch's {len(posts)} posts")  # fmt: skip
                log.warning("analyzer %s %s (posts %s)", analyzer.name, error, ", ".join(p.id for p in part[:5]))
                outcome = self._failed(analyzer, error, len(part), self.timeout_s)
            else:
                ran, seconds = chunk.future.result()
                if isinstance(ran, BaseException):
                    log.warning("analyzer %s raised %s: %s", analyzer.name, type(ran).__name__, ran)
                    outcome = self._failed(analyzer, f"{type(ran).__name__}: {ran}", len(part), seconds)
                else:
                    outcome = self._collect(analyzer, part, ran, seconds)
            for i, result in zip(chunk.indices, outcome, strict=True):
                results[i] = result
        if waiting:
            slow = self._running[analyzer.name]
            if retry and wait([slow], timeout=self.timeout_s).done:
                again = self._submit(analyzer, posts, waiting)
                wait([c.future for c in again], timeout=self.timeout_s)
                retried = self._settle(analyzer, posts, again, retry=False)
                for i in waiting:
                    results[i] = retried[i]
            else:
                error = f"timed out: a chunk before these posts overran worker.analyzer_timeout_s={self.timeout_s}, so they never ran"
                for i in waiting:
                    results[i] = self._failed(analyzer, error, 1, 0.0)[0]
        return results

    def _collect(
        self, analyzer: Analyzer, posts: Sequence[Post], predictions: Sequence[Prediction | None], seconds: float
    ) -> list[AnalyzerResult | None]:
        latency_ms = 1000.0 * seconds / len(posts)  # the chunk's time, shared out over its posts
        try:
            count = len(predictions)
        except TypeError:
            count = -1
        if count != len(posts):
            error = f"returned {count} predictions for {len(posts)} posts"
            return self._failed(analyzer, error, len(posts), seconds)
        results: list[AnalyzerResult | None] = []
        notice = NOTICES.get(analyzer.name)  # a promoted version that is not serving: every result says so
        for prediction in predictions:
            if prediction is None:
                results.append(None)
                continue
            problem = prediction.problem() if isinstance(prediction, Prediction) else f"not a Prediction: {prediction!r:.80}"
            if problem is not None:
                results.append(AnalyzerResult(analyzer.name, analyzer.version, latency_ms, error=problem))
                continue
            results.append(
                AnalyzerResult(
                    analyzer=analyzer.name,
                    model_version=analyzer.version,
                    latency_ms=latency_ms,
                    score=float(prediction.score),
                    label=prediction.label,
                    confidence=float(prediction.confidence),
                    probabilities={k: float(v) for k, v in prediction.probabilities.items()},
                    details={**(prediction.details or {}), "model_refused": notice} if notice else
                    (dict(prediction.details) if prediction.details else None),
                )
            )
        return results

    @staticmethod
    def _failed(analyzer: Analyzer, error: str, n: int, seconds: float) -> list[AnalyzerResult | None]:
        result = AnalyzerResult(analyzer.name, analyzer.version, 1000.0 * seconds / max(n, 1), error=error)
        return [result] * n

    # -- fusing ----------------------------------------------------------------------------------------------------

    def _learned(self, results: list[dict[str, AnalyzerResult | None]]) -> list[tuple[str, dict[str, float]] | None]:
        """Per post: (version, probabilities) of the learned fusion, where one serves and covers the post."""
        learned = self.fusion_source() if self.fusion_source is not None else None
        if learned is None:
            return [None] * len(results)
        rows = learned.predict_proba(learned.features(results))
        return [(learned.version, dict(zip(CLASS_NAMES, row.tolist(), strict=True))) if learned.covers(r) else None
                for r, row in zip(results, rows, strict=True)]  # fmt: skip

    def _fuse(
        self, post: Post, results: dict[str, AnalyzerResult | None], route: Route,
        learned: tuple[str, dict[str, float]] | None, tickers: list[str],
    ) -> Score | str:  # fmt: skip
        present = {name: r for name, r in results.items() if r is not None}
        by, probabilities = learned or (FIXED, weighted_probabilities(results, self.fusion))
        if probabilities is None and self.fusers:
            by, probabilities = UNWEIGHTED, weighted_probabilities(results, dataclasses.replace(self.fusion, weights={}, default_weight=1.0))
        if probabilities is None:
            errors = "; ".join(f"{name}: {r.error}" for name, r in present.items() if r.error)
            if errors:
                return f"no analyzer with a positive fusion weight produced a result ({errors})"
            what = "an image-only post, and none of them reads images" if not post.text.strip() else "each had nothing to say"
            return (f"no analyzer could read this post ({what}; loaded: {', '.join(a.name for a in self.analyzers)}); "
                    "`bizstream plugins` shows which analyzers are unavailable and why")  # fmt: skip
        fused = Prediction.from_probabilities(probabilities)
        return Score(
            post_id=post.id,
            thread_id=post.thread_id,
            score=fused.score,
            label=fused.label,
            confidence=fused.confidence,
            probabilities=dict(fused.probabilities),
            analyzers=present,
            route=route,
            fusion=by,
            tickers=tickers,
            posted_at=datetime.fromisoformat(post.created_at).timestamp() if post.created_at else None,
        )


def _with_failure(score: Score, fuser: Fuser, error: str) -> Score:
    """The Score unchanged but for a record of why the fuser left it so."""
    failed = AnalyzerResult(fuser.name, fuser.version, 0.0, error=error)
    return dataclasses.replace(score, analyzers={**score.analyzers, fuser.name: failed})


def weighted_probabilities(
    results: Mapping[str, AnalyzerResult | None], fusion: FusionSettings, skip: Collection[str] = ()
) -> dict[str, float] | None:
    """The fusion-weighted mean of the usable results' class probabilities (None when there are none)."""
    usable = [
        (r, fusion.weight_of(name))
        for name, r in results.items()
        if name not in skip and r is not None and r.error is None and r.probabilities and fusion.weight_of(name) > 0
    ]
    if not usable:
        return None
    total = sum(weight for _, weight in usable)
    return {s.value: sum((r.probabilities or {})[s.value] * w for r, w in usable) / total for s in SENTIMENTS}


CHUNKS = 8  # a batch reaches each analyzer in up to this many chunks: an overrun costs one chunk, not the batch
MIN_CHUNK = 8  # posts; smaller chunks would cost batching analyzers (SetFit, CryptoBERT) their speed
_Ran = tuple[Sequence[Prediction | None] | BaseException, float]  # what analyze() returned or raised, and its seconds


@dataclass(frozen=True)
class _Chunk:
    indices: Sequence[int]  # positions in the batch
    future: Future[_Ran]


_busy: set[str] = set()  # "name#id" of every analyzer thread inside analyze() now, in any pipeline of this process
_busy_lock = threading.Lock()


def busy_analyzers() -> list[str]:
    """Analyzers still inside analyze() (an overrun, or a batch cut short by exit), by name."""
    with _busy_lock:
        return sorted({entry.split("#")[0] for entry in _busy})


def wait_idle(timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` for every analyzer thread to leave analyze(); the names of those still inside.

    The interpreter must not finalize while one is inside native code (torch, onnxruntime): its C++ thread pool is
    torn down under the thread and the process aborts ("terminate called without an active exception", exit 134).
    Whoever exits with a busy analyzer ends the process with os._exit instead (bizstream.cli.app.main)."""
    deadline = time.monotonic() + timeout_s
    while (busy := busy_analyzers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return busy


class _AnalyzerThread:
    """One daemon thread per analyzer. Daemon, unlike ThreadPoolExecutor's: a hung analyzer must not block exit."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._inbox: queue.SimpleQueue[tuple[Future[_Ran], Sequence[Post]] | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=f"analyzer-{analyzer.name}", daemon=True).start()

    def submit(self, posts: Sequence[Post]) -> Future[_Ran]:
        """Queue posts; the future holds (predictions or the exception analyze() raised, seconds it took)."""
        future: Future[_Ran] = Future()
        self._inbox.put((future, posts))
        return future

    def close(self) -> None:
        """Stop after the chunk in hand (if any)."""
        self._inbox.put(None)

    def _serve(self) -> None:
        while (item := self._inbox.get()) is not None:
            future, posts = item
            if not future.set_running_or_notify_cancel():
                continue
            started = time.perf_counter()
            entry = f"{self.analyzer.name}#{id(self)}"
            with _busy_lock:
                _busy.add(entry)
            try:
                ran: Sequence[Prediction | None] | BaseException = self.analyzer.analyze(posts)
            except BaseException as exc:  # boundary: handed to the host, which records it with its own time
                ran = exc
            finally:
                with _busy_lock:
                    _busy.discard(entry)
            future.set_result((ran, time.perf_counter() - started))
