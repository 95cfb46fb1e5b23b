"""Images on a CPU, end to end through a real broker (issue 16): a `bizstream worker` with OCR (Tesseract) and a
tiny CLIP (built from a config, taught to read a crash as bearish) scores memes; a caption that says the opposite of
its chart gets a sarcasm probability and the inversion."""

from __future__ import annotations

import base64
import io
import zlib
from pathlib import Path

import orjson
import pytest
from PIL import Image

from bizstream.memes import Meme
from bizstream.stream import topics
from bizstream_plugins.clip import tiny as tiny_clip
from tests.integration.conftest import Cluster, scores_by_id

pytestmark = [pytest.mark.integration]


def meme_post(post_id: str, text: str, meme: Meme) -> tuple[bytes, bytes]:
    data, mime = meme.encoded()
    body = {"id": post_id, "thread_id": post_id, "text": text, "image": {"data": base64.b64encode(data).decode(), "mime": mime}}
    return post_id.encode(), orjson.dumps(body)


def test_a_bullish_caption_on_a_crash_is_sarcasm_on_a_cpu(cluster: Cluster, tmp_path: Path) -> None:
    clip = tiny_clip.build(tmp_path / "clip", teach=True)
    cluster.start_worker("worker", BIZSTREAM_PLUGINS__OPTIONS__CLIP__MODEL=str(clip), BIZSTREAM_IMAGES__ANALYZER="auto")
    crash = Meme("to the moon, we are all gonna make it", "red_chart", "impact", seed=7)
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, format="PNG")
    raw = bytearray(out.getvalue())
    raw[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")  # the header now claims 3.6 billion pixels
    raw[29:33] = zlib.crc32(bytes(raw[12:29])).to_bytes(4, "big")  # with a valid checksum: a decompression bomb's header
    hostile = orjson.dumps({"id": "hostile", "thread_id": "hostile", "text": "wagmi frens",
                            "image": {"data": base64.b64encode(bytes(raw)).decode(), "mime": "image/png"}})  # fmt: skip
    cluster.produce(topics.POSTS, [
        meme_post("caption-only", "", crash),
        meme_post("with-text", "so bullish, best day ever", crash),
        meme_post("meant", "", Meme("it's over, we got rugged", "red_chart", "inverted", seed=8)),
        (b"hostile", hostile),
    ])  # fmt: skip
    want = {"caption-only", "with-text", "meant"}
    scores = scores_by_id(cluster.wait_for(topics.SCORES, lambda m: want <= set(scores_by_id(m)), timeout_s=180))

    for post_id in ("caption-only", "with-text"):
        score = scores[post_id]
        parts = score["analyzers"]
        assert "TO THE MOON" in str(parts["ocr"]["details"]["ocr"]).upper()  # type: ignore[index]
        assert parts["clip"]["label"] == "bearish"  # type: ignore[index]
        assert parts["sarcasm"]["details"]["inverted"] is True, score  # type: ignore[index]
        assert float(score["sarcasm_probability"]) >= 0.7  # type: ignore[arg-type]
        assert score["label"] == "bearish", score
    meant = scores["meant"]
    assert meant["analyzers"]["sarcasm"]["details"]["inverted"] is False  # type: ignore[index]
    assert meant["label"] == "bearish"
    # The hostile image is refused by the pixel limit before anything decodes it: a dead letter with its exact bytes.
    letters = cluster.wait_for(topics.DEADLETTER, lambda m: any(x.key == b"hostile" for x in m), timeout_s=30)
    letter = orjson.loads(next(x.value for x in letters if x.key == b"hostile"))
    assert "pixels" in letter["message"] and base64.b64decode(letter["raw"]) == hostile
    assert "hostile" not in scores
