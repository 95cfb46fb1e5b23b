"""Checks every analyzer should pass, for plugin authors' own tests (in the spirit of river's estimator checks).

    from bizstream.testing import check_analyzer

    def test_my_analyzer_keeps_the_contract():
        check_analyzer(MyAnalyzer())

``check_analyzer`` loads the analyzer and runs each check in :data:`CHECKS` on a set of probe posts (plain, empty of
text with an image, emoji and other scripts, very long, repeated); the first that fails raises an AssertionError that
names the check and what went wrong. Pass your own ``posts`` to probe with posts your analyzer is meant for (an image
analyzer needs posts with images it can read).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bizstream.analyzer import Analyzer, Prediction
from bizstream.records import Image, Post

# A 1x1 transparent PNG: an image post with no text, which text analyzers must answer with None.
_PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

PROBE_POSTS: tuple[Post, ...] = (
    Post(id="plain-bull", text="$BTC to the moon, buying more", thread_id="t1"),
    Post(id="plain-bear", text="rug pull, devs ran away, I lost everything", thread_id="t1", reply_to="plain-bull"),
    Post(id="plain-neutral", text="what exchange lists $SOL?", thread_id="t2"),
    Post(id="image-only", text="", thread_id="t3", image=Image(data=_PIXEL, mime="image/png")),
    Post(id="unicode", text="🚀🚀🚀 ビットコイン ракета 💎🙌 ngmi", thread_id="t4"),
    Post(id="long", text="not bad at all, wagmi. " * 150, thread_id="t5"),
    Post(id="whitespace", text="   \n\t ", thread_id="t6", image=Image(data=_PIXEL, mime="image/png")),
    Post(id="plain-bull-again", text="$BTC to the moon, buying more", thread_id="t7"),
)


def _check_identity(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    assert isinstance(analyzer, Analyzer), "does not implement bizstream.Analyzer (name, version, load, analyze)"
    assert isinstance(analyzer.name, str) and analyzer.name.strip(), f"name must be a non-empty string, got {analyzer.name!r}"
    assert isinstance(analyzer.version, str) and analyzer.version, f"version must be a non-empty string, got {analyzer.version!r}"


def _check_empty_batch(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    assert len(list(analyzer.analyze([]))) == 0, "an empty batch must give an empty list"


def _check_one_per_post(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    predictions = list(analyzer.analyze(posts))
    assert len(predictions) == len(posts), f"returned {len(predictions)} predictions for {len(posts)} posts"
    for post, prediction in zip(posts, predictions, strict=True):
        if prediction is None:
            continue
        assert isinstance(prediction, Prediction), f"post {post.id!r}: not a Prediction: {prediction!r:.80}"
        problem = prediction.problem()
        assert problem is None, f"post {post.id!r}: {problem}"


def _check_deterministic(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    _assert_close(analyzer.analyze(posts), analyzer.analyze(posts), posts, atol, "the same batch twice")


def _check_batch_independent(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    # The host may split a batch, reorder it, or score a post alone: each post's prediction must not depend on which
    # other posts share its batch (up to ``atol``; an INT8 model whose activations are quantized per batch fails this
    # unless it runs each post alone, as bizstream.learning.serving.OnnxSession does).
    whole = list(analyzer.analyze(posts))
    reversed_ = list(analyzer.analyze(list(reversed(posts))))[::-1]
    _assert_close(whole, reversed_, posts, atol, "the batch in reverse order")
    alone = [analyzer.analyze([post])[0] for post in posts]
    _assert_close(whole, alone, posts, atol, "each post alone")


def _check_same_text_same_answer(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    by_text: dict[tuple[str, bool], Prediction | None] = {}
    for post, prediction in zip(posts, analyzer.analyze(posts), strict=True):
        key = (post.text, post.image is not None)
        if key in by_text:
            _assert_close([by_text[key]], [prediction], [post], atol, "another post with the same content")
        by_text[key] = prediction


def _check_text_posts_answered(analyzer: Analyzer, posts: Sequence[Post], atol: float) -> None:
    # Not every analyzer reads text (an image analyzer may answer None to all of them), but one that answers some text
    # post must answer every one: a None there is a post silently left out.
    answers = {p.id: a for p, a in zip(posts, analyzer.analyze(posts), strict=True) if p.text.strip() and p.image is None}
    if any(a is not None for a in answers.values()):
        missing = sorted(post_id for post_id, a in answers.items() if a is None)
        assert not missing, f"answered some text posts but None for {missing}"


CHECKS: tuple[tuple[str, Callable[[Analyzer, Sequence[Post], float], None]], ...] = (
    ("identity", _check_identity),
    ("empty batch", _check_empty_batch),
    ("one well-formed prediction per post", _check_one_per_post),
    ("deterministic", _check_deterministic),
    ("independent of the batch", _check_batch_independent),
    ("same content, same answer", _check_same_text_same_answer),
    ("text posts all answered or none", _check_text_posts_answered),
)


def check_analyzer(analyzer: Analyzer, posts: Sequence[Post] = PROBE_POSTS, atol: float = 1e-4, load: bool = True) -> None:
    """Load ``analyzer`` (unless ``load`` is False) and run every check on ``posts``; AssertionError names the first
    that fails. ``atol`` bounds how far two predictions of the same post may differ."""
    if load:
        analyzer.load()
    for name, check in CHECKS:
        try:
            check(analyzer, posts, atol)
        except AssertionError as exc:
            raise AssertionError(f"{getattr(analyzer, 'name', analyzer)!r} fails check {name!r}: {exc}") from None


def _assert_close(
    first: Sequence[Prediction | None], second: Sequence[Prediction | None], posts: Sequence[Post], atol: float, what: str
) -> None:
    for post, a, b in zip(posts, first, second, strict=True):
        if (a is None) != (b is None):
            raise AssertionError(f"post {post.id!r}: {a!r:.60} vs {b!r:.60} ({what})")
        if a is None or b is None:
            continue
        gaps = [abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities]
        gap = max([*gaps, abs(a.score - b.score)])
        assert math.isfinite(gap) and gap <= atol, f"post {post.id!r}: predictions differ by {gap:.2g} (> {atol}) ({what})"
