"""The sarcasm fuser in the pipeline: image incongruity inverts the text, OCR and thread context count, text-only
posts keep their Score, and a failing fuser costs only its own refinement."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bizstream.analyzer import Context, Prediction
from bizstream.errors import AnalyzerUnavailable
from bizstream.pipeline import Pipeline
from bizstream.plugins import get_plugin_manager, load_fusers
from bizstream.records import Image, Post, Score, Sentiment
from bizstream.settings import FusionSettings, Settings
from bizstream_plugins.llava.analyzer import prediction_for
from bizstream_plugins.llava.model import Reading
from bizstream_plugins.sarcasm.fuser import SarcasmFuser
from bizstream_plugins.vader.analyzer import VaderAnalyzer
from tests.fixtures.analyzers import ConstantAnalyzer


class FakeLlava:
    """Reads a fixed answer off every post with an image."""

    name = "llava"
    version = "fake-1"

    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """The reading for posts with an image."""
        return [prediction_for(self.reading) if p.image else None for p in posts]


IMAGE = Image(path="meme.png")
CRASH = Reading(Sentiment.BEARISH, "", False, "strict", 0.8)  # a chart going to zero, no text in it


def vader() -> VaderAnalyzer:
    analyzer = VaderAnalyzer()
    analyzer.load()
    return analyzer


def pipeline(reading: Reading, text_score: float = 0.8, fusers: Sequence[object] | None = None) -> Pipeline:
    fuser = SarcasmFuser(FusionSettings(), ocr_scorer=vader())  # the host hands over VADER for the OCR text
    fuser.load()
    return Pipeline([ConstantAnalyzer("vader", text_score), FakeLlava(reading)], FusionSettings(), 5,
                    fusers=list(fusers) if fusers is not None else [fuser])  # type: ignore[arg-type]  # fmt: skip


def test_bullish_text_on_a_crashing_chart_is_sarcasm_and_comes_out_bearish() -> None:
    (score,) = pipeline(CRASH).process([Post(id="p", text="great investment, very smart", thread_id="t", image=IMAGE)]).scores
    assert score.label is Sentiment.BEARISH and score.score < -0.5
    assert score.sarcasm_probability == pytest.approx(0.8)
    part = score.analyzers["sarcasm"]
    assert part.details == {"sarcasm_probability": pytest.approx(0.8), "inverted": True, "used": "image,text"}


def test_congruent_text_and_image_are_not_inverted() -> None:
    moon = Reading(Sentiment.BULLISH, "", False, "strict", 0.8)
    (score,) = pipeline(moon).process([Post(id="p", text="wagmi", thread_id="t", image=IMAGE)]).scores
    assert score.label is Sentiment.BULLISH and score.sarcasm_probability == 0.0
    assert score.analyzers["sarcasm"].details["inverted"] is False  # type: ignore[index]


def test_llava_saying_sarcastic_is_evidence_on_its_own() -> None:
    # Text and meme both say "moon" (no incongruity), but LLaVA reads the post as sarcastic.
    sarcastic = Reading(Sentiment.BULLISH, "", True, "strict", 0.8)
    (score,) = pipeline(sarcastic).process([Post(id="p", text="so bullish", thread_id="t", image=IMAGE)]).scores
    assert score.sarcasm_probability == pytest.approx(0.8) and score.label is Sentiment.BEARISH


def test_ocr_and_the_parent_post_count_with_their_weights() -> None:
    said = Reading(Sentiment.BULLISH, "wagmi to the moon", False, "strict", 0.8)
    posts = [Post(id="parent", text="buy now", thread_id="t"),
             Post(id="reply", text="agreed", thread_id="t", reply_to="parent", image=IMAGE)]  # fmt: skip
    parent, reply = pipeline(said).process(posts).scores
    assert "sarcasm" not in parent.analyzers and parent.sarcasm_probability is None  # text only: left as it was
    assert reply.analyzers["sarcasm"].details["used"] == "context,image,ocr,text"  # type: ignore[index]
    # A later batch still finds the parent (the pipeline remembers recent Scores).
    p = pipeline(said)
    p.process(posts[:1])
    (later,) = p.process(posts[1:]).scores
    assert later.analyzers["sarcasm"].details["used"] == "context,image,ocr,text"  # type: ignore[index]


def test_text_only_posts_keep_their_score() -> None:
    (score,) = pipeline(CRASH).process([Post(id="p", text="gm", thread_id="t")]).scores
    assert "sarcasm" not in score.analyzers and score.label is Sentiment.BULLISH


class Broken:
    name = "broken"
    version = "0"

    def __init__(self, how: str) -> None:
        self.how = how

    def load(self) -> None:
        """Nothing."""

    def refine(self, items: Sequence[tuple[Post, Score, Context]]) -> list[Score | None]:
        if self.how == "raise":
            raise RuntimeError("fuser bug")
        return [dataclasses.replace(s, label=Sentiment.BEARISH, score=0.9) for _, s, _ in items]  # inconsistent


@pytest.mark.parametrize(("how", "error"), [("raise", "RuntimeError: fuser bug"), ("inconsistent", "disagrees with the probabilities")])
def test_a_failing_fuser_costs_only_its_refinement(how: str, error: str) -> None:
    post = Post(id="p", text="x", thread_id="t", image=IMAGE)
    (score,) = pipeline(CRASH, fusers=[Broken(how)]).process([post]).scores
    (unrefined,) = pipeline(CRASH, fusers=[]).process([post]).scores
    assert error in (score.analyzers["broken"].error or "")
    # Everything else is the first-stage Score, as a pipeline without fusers gives it.
    assert (score.score, score.label, score.probabilities) == (unrefined.score, unrefined.label, unrefined.probabilities)


def test_the_plugin_host_loads_the_sarcasm_fuser_and_hands_it_the_ocr_analyzer() -> None:
    scorer = vader()
    pm = get_plugin_manager(Settings(), third_party=False)
    statuses = {s.name: s for s in load_fusers(pm, Settings(), {"vader": scorer})}
    assert statuses["sarcasm"].available and statuses["sarcasm"].analyzer.ocr_scorer is scorer
    # Another analyzer can read the OCR text; without one the fuser still runs, and OCR text does not count.
    other = Settings().replace(plugins={"options": {"sarcasm": {"ocr_analyzer": "shouty"}}})
    (status,) = load_fusers(pm, other, {"vader": scorer})
    assert status.available and status.analyzer.ocr_scorer is None


def test_ocr_text_does_not_count_without_an_ocr_analyzer() -> None:
    said = Reading(Sentiment.BULLISH, "wagmi to the moon", False, "strict", 0.8)
    fuser = SarcasmFuser(FusionSettings())
    fuser.load()
    (score,) = pipeline(said, fusers=[fuser]).process([Post(id="p", text="agreed", thread_id="t", image=IMAGE)]).scores
    assert score.analyzers["sarcasm"].details["used"] == "image,text"  # type: ignore[index]


SARCASTIC = ["oh great, another rug pull, just what I needed", "wow, losing 90% overnight, best investment ever",
             "love how my bags only go down, so fun", "yeah sure, this coin will totally moon, like the last ten",
             "oh wonderful, fees ate my whole trade, thanks so much", "genius move, buying the top again, well done me"]
PLAIN = ["bitcoin closed at 60k today", "the exchange lists a new token on monday", "eth gas fees were lower this week",
         "i bought some sol and will hold it", "the halving is expected in april", "my wallet shows two pending transactions"]  # fmt: skip


def sarcasm_csv(folder: Path) -> Path:
    data = folder / "sarcasm.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",sarcastic\n' for t in SARCASTIC) + "".join(f'"{t}",not_sarcastic\n' for t in PLAIN))
    return data


def test_train_sarcasm_writes_the_head_the_fuser_uses_on_text_only_posts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bizstream.cli import app

    sarcastic, plain = SARCASTIC, PLAIN
    data = sarcasm_csv(tmp_path)
    head = tmp_path / "model" / "head.safetensors"
    result = CliRunner().invoke(app, ["train", "sarcasm", str(data), "--out", str(head), "--fine-tune", "--iterations", "1"])
    assert result.exit_code == 0, result.output
    assert "trained on 12 posts (6 sarcastic)" in result.output and head.is_file()
    info = json.loads((head.parent / "sarcasm.json").read_text())
    assert info["fine_tuned"] and (head.parent / "body" / "model.safetensors").is_file() and 0 < info["threshold"] < 1

    fuser = SarcasmFuser(FusionSettings(), text_model=head)
    fuser.load()
    p = Pipeline([ConstantAnalyzer("vader", 0.8)], FusionSettings(), 5, fusers=[fuser])
    scores = p.process([Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(sarcastic + plain)]).scores
    probabilities = [s.sarcasm_probability or 0.0 for s in scores]
    assert all(s.analyzers["sarcasm"].details["used"] == "text" for s in scores)  # type: ignore[index]
    assert np.mean(probabilities[:6]) > np.mean(probabilities[6:])  # it learned something of what it was trained on
    assert [s.label for s in scores[:6]] == [Sentiment.BEARISH if q >= 0.7 else Sentiment.BULLISH for q in probabilities[:6]]
    # An altered head is refused, not served.
    head.write_bytes(head.read_bytes()[:-1] + b"\x00")
    with pytest.raises(AnalyzerUnavailable, match="sha256"):
        SarcasmFuser(FusionSettings(), text_model=head).load()

    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,maybe\n")
    result = CliRunner().invoke(app, ["train", "sarcasm", str(bad), "--out", str(head), "--frozen"])
    assert result.exit_code != 0 and "bad.csv:2" in str(result.exception or result.output)


def test_a_sarcasm_head_serves_only_over_the_body_it_was_trained_on(tmp_path: Path) -> None:
    """--body builds on another local body; sarcasm.json records it with the sha256 of its weights, and a head whose
    body is gone or altered is refused, never served over the packaged one."""
    import shutil

    from typer.testing import CliRunner

    from bizstream.cli import app
    from bizstream.learning.embeddings import default_body, weights_sha256

    other = tmp_path / "other-body"
    shutil.copytree(default_body(), other)
    head = tmp_path / "model" / "head.safetensors"
    result = CliRunner().invoke(app, ["train", "sarcasm", str(sarcasm_csv(tmp_path)), "--out", str(head), "--body", str(other)])
    assert result.exit_code == 0, result.output
    info = json.loads((head.parent / "sarcasm.json").read_text())
    assert info["body"] == str(other.resolve()) and info["body_sha256"] == weights_sha256(other) and not info["fine_tuned"]
    fuser = SarcasmFuser(FusionSettings(), text_model=head)
    fuser.load()
    assert fuser._encoder.body == str(other.resolve())

    weights = other / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    with pytest.raises(AnalyzerUnavailable, match="do not match the sha256"):
        SarcasmFuser(FusionSettings(), text_model=head).load()
    shutil.rmtree(other)
    with pytest.raises(AnalyzerUnavailable, match="which is not there"):
        SarcasmFuser(FusionSettings(), text_model=head).load()
    # A fine-tuned head whose body/ is gone is refused too (it once fell back to the packaged body).
    (head.parent / "sarcasm.json").write_text(json.dumps(info | {"fine_tuned": True, "body": "body/"}))
    with pytest.raises(AnalyzerUnavailable, match="which is not there"):
        SarcasmFuser(FusionSettings(), text_model=head).load()

    missing = CliRunner().invoke(app, ["train", "sarcasm", str(sarcasm_csv(tmp_path)), "--out", str(head), "--body", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "must be a local folder" in str(missing.exception or missing.output)
