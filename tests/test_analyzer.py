"""The analyzer contract: predictions derived from probabilities in one place, checked by the host, and the generic
check_analyzer() that every analyzer (and the README's example plugin) passes."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from types import ModuleType

import pytest

from bizstream.analyzer import Prediction
from bizstream.records import Post, Sentiment
from bizstream.testing import PROBE_POSTS, check_analyzer
from tests.conftest import ROOT
from tests.fixtures.analyzers import ConstantAnalyzer

EXAMPLE = ROOT / "docs" / "examples" / "shouty.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shouty_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_from_probabilities_derives_label_score_and_confidence() -> None:
    p = Prediction.from_probabilities({"bearish": 0.1, "neutral": 0.3, "bullish": 0.6})
    assert (p.label, p.score, p.confidence) == (Sentiment.BULLISH, pytest.approx(0.5), 0.6)
    assert Prediction.from_probabilities([0.7, 0.2, 0.1]).label is Sentiment.BEARISH
    # A tie with neutral goes to neutral: no side wins a coin toss.
    assert Prediction.from_probabilities([0.4, 0.4, 0.2]).label is Sentiment.NEUTRAL
    assert Prediction.from_probabilities([0.45, 0.1, 0.45]).problem() is None


@pytest.mark.parametrize(
    ("prediction", "complaint"),
    [
        # The README's old example: a score of 0.0 where its probabilities say -0.5.
        (Prediction(0.0, Sentiment.NEUTRAL, 0.5, {"bearish": 0.5, "neutral": 0.5, "bullish": 0.0}), "score 0.0000 disagrees"),
        (Prediction(0.8, Sentiment.BULLISH, 0.8, {"bearish": 0.1, "neutral": 0.8, "bullish": 0.1}), "not the most probable"),
        (Prediction(0.0, Sentiment.BULLISH, 0.1, {"bearish": 0.1, "neutral": 0.8, "bullish": 0.1}), "not the most probable"),
        (Prediction(0.5, Sentiment.BULLISH, 1.0, {"bearish": 0.1, "neutral": 0.3, "bullish": 0.6}), "confidence 1.0000"),
        (Prediction(0.5, Sentiment.BULLISH, 0.6, {"bearish": 0.1, "neutral": 0.5, "bullish": 0.6}), "sum to 1"),
        (Prediction(0.5, Sentiment.BULLISH, 0.6, {"bear": 0.1, "neutral": 0.3, "bullish": 0.6}), "exactly the keys"),
    ],
)
def test_problem_rejects_parts_that_disagree(prediction: Prediction, complaint: str) -> None:
    assert complaint in (prediction.problem() or "")


def test_readme_example_is_this_file_and_passes_the_checks() -> None:
    readme = (ROOT / "README.md").read_text()
    assert EXAMPLE.read_text().strip() in readme  # the README shows exactly the file under test
    module = load_example()
    (shouty,) = module.register_analyzers(settings=None)
    check_analyzer(shouty)
    loud, quiet = shouty.analyze([Post(id="a", text="WAGMI", thread_id="a"), Post(id="b", text="wagmi", thread_id="b")])
    assert loud.label is Sentiment.BULLISH and quiet.label is Sentiment.NEUTRAL


class _Moody(ConstantAnalyzer):
    """Breaks one rule of the contract, chosen by ``flaw``."""

    def __init__(self, flaw: str) -> None:
        super().__init__("moody", 0.5)
        self.flaw = flaw
        self.calls = 0

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        self.calls += 1
        out: list[Prediction | None] = [Prediction.from_probabilities([0.1, 0.3, 0.6]) for _ in posts]
        if self.flaw == "short" and posts:
            out = out[:-1]
        elif self.flaw == "inconsistent" and posts:
            out[0] = Prediction(0.0, Sentiment.BULLISH, 0.6, {"bearish": 0.1, "neutral": 0.3, "bullish": 0.6})
        elif self.flaw == "batch-dependent":
            out = [Prediction.from_probabilities([0.1, 0.3, 0.6] if len(posts) > 1 else [0.6, 0.3, 0.1]) for _ in posts]
        elif self.flaw == "random":
            out = [Prediction.from_probabilities([0.1, 0.3, 0.6] if self.calls % 2 else [0.2, 0.3, 0.5]) for _ in posts]
        elif self.flaw == "skips-text":
            out = [None if p.id == "plain-neutral" else o for p, o in zip(posts, out, strict=True)]
        return out


@pytest.mark.parametrize(
    ("flaw", "check"),
    [("short", "one well-formed prediction per post"), ("inconsistent", "one well-formed prediction per post"),
     ("batch-dependent", "independent of the batch"), ("random", "deterministic"),
     ("skips-text", "text posts all answered or none")],
)  # fmt: skip
def test_check_analyzer_catches_each_broken_rule(flaw: str, check: str) -> None:
    with pytest.raises(AssertionError, match=f"fails check '{check}'"):
        check_analyzer(_Moody(flaw))


def test_probe_posts_are_valid_posts() -> None:
    from bizstream.settings import LimitSettings

    for post in PROBE_POSTS:
        assert Post.from_json(post.to_json(), LimitSettings()) == post
