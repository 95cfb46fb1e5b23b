"""LLaVA's code path on a tiny random LLaVA built from a config (with its processor): loading, generation, parsing of
well-formed and malformed answers, image safety per post, and QLoRA's training loop (over a full-precision base on
the CPU; the 4-bit paths run only where CUDA is)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import orjson
import pytest
from PIL import Image as PILImage

from bizstream.errors import AnalyzerUnavailable, InvalidRecord
from bizstream.records import Image, Post, Sentiment
from bizstream.settings import LimitSettings
from bizstream.testing import check_analyzer
from bizstream_plugins.llava.analyzer import LlavaAnalyzer, prediction_for
from bizstream_plugins.llava.model import CONFIDENCE, parse_answer, prompt_for
from bizstream_plugins.llava.training import Meme, read_memes, train

ANSWER = '{"sentiment": "bullish", "ocr": "to the moon", "sarcastic": false}'


def cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LLaVA with random weights: CLIP-like vision tower (28x28, 14-pixel patches), Llama-like text model, a
    byte-level BPE tokenizer with <image>, and LlavaProcessor — saved as the real one is."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,  # fmt: skip
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = tmp_path_factory.mktemp("tiny-llava")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [prompt_for("wen lambo") + " " + ANSWER, '{"sentiment": "bearish", "ocr": "", "sarcastic": true}'] * 5
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<image>"],
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   extra_special_tokens={"image_token": "<image>"})  # fmt: skip
    processor = LlavaProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}),
                               tokenizer=fast, patch_size=14, vision_feature_select_strategy="default",
                               image_token="<image>", num_additional_image_tokens=1)  # fmt: skip
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=28, patch_size=14, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                                pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                initializer_range=0.5),  # big enough for a frozen lm_head to be steered by LoRA
        image_token_index=fast.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )  # fmt: skip
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def png(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_post(post_id: str, text: str = "wen lambo", data: bytes | None = None) -> Post:
    encoded = base64.b64encode(data or png()).decode()
    return Post(id=post_id, text=text, thread_id="t", image=Image(data=encoded, mime="image/png"))


# -- parsing -----------------------------------------------------------------------------------------------------


def test_a_well_formed_answer_is_read_strictly() -> None:
    reading = parse_answer(f"  {ANSWER}\n")
    assert (reading.sentiment, reading.ocr, reading.sarcastic, reading.parsed) == (Sentiment.BULLISH, "to the moon", False, "strict")
    assert reading.confidence == CONFIDENCE["strict"]


@pytest.mark.parametrize(
    ("answer", "sentiment", "sarcastic", "parsed"),
    [
        ('Sure! ```json\n{"sentiment": "Bearish", "ocr": "rekt", "sarcastic": "yes"}\n```', Sentiment.BEARISH, True, "lenient"),
        ('{"sentiment": "neutral", "sarcastic": false}', Sentiment.NEUTRAL, False, "lenient"),  # no ocr key
        ("The meme looks bullish to me.", Sentiment.BULLISH, None, "words"),
        ("bullish or bearish, hard to say", None, None, "none"),  # the words disagree: no guess
        ('{"sentiment": "to the moon!!", "ocr": 3}', Sentiment.BULLISH, None, "words"),  # not a label, but a word
        ('{"sentiment": 5, "ocr": 3}', None, None, "none"),
        ("", None, None, "none"),
        ("{{{{ not json", None, None, "none"),
    ],
)  # fmt: skip
def test_malformed_answers_lower_the_confidence_and_never_raise(
    answer: str, sentiment: Sentiment | None, sarcastic: bool | None, parsed: str
) -> None:
    reading = parse_answer(answer)
    assert (reading.sentiment, reading.sarcastic, reading.parsed) == (sentiment, sarcastic, parsed)
    assert reading.confidence < CONFIDENCE["strict"]
    prediction = prediction_for(reading)
    assert prediction.problem() is None
    if sentiment is None:
        assert prediction.score == 0 and prediction.confidence == pytest.approx(1 / 3)


def test_ocr_is_bounded_and_the_prompt_carries_the_post_text() -> None:
    assert len(parse_answer(orjson.dumps({"sentiment": "bullish", "ocr": "x" * 5000, "sarcastic": False}).decode()).ocr) == 500
    prompt = prompt_for("gm\n\nbtc   100k " + "y" * 2000)
    assert prompt.startswith("USER: <image>\n") and prompt.endswith("ASSISTANT:") and "gm btc 100k" in prompt
    assert len(prompt) < 1500


# -- loading and generation ----------------------------------------------------------------------------------------


@pytest.mark.skipif(cuda(), reason="this machine has CUDA; the CPU refusal does not apply")
def test_without_cuda_it_is_unavailable_unless_forced(tiny: Path) -> None:
    with pytest.raises(AnalyzerUnavailable, match="no CUDA device.*force = true"):
        LlavaAnalyzer(LimitSettings(), model=str(tiny)).load()
    with pytest.raises(AnalyzerUnavailable, match="4-bit loading .* needs CUDA"):
        LlavaAnalyzer(LimitSettings(), model=str(tiny), force=True, quantize_4bit=True).load()


def test_missing_weights_make_it_unavailable_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(AnalyzerUnavailable, match="nothing is downloaded at run time"):
        LlavaAnalyzer(LimitSettings(), model=str(tmp_path / "nothing"), force=True, device="cpu").load()


def test_generates_on_posts_with_images_and_survives_what_it_says(tiny: Path) -> None:
    limits = LimitSettings(max_image_pixels=10_000)
    analyzer = LlavaAnalyzer(limits, model=str(tiny), force=True, device="cpu", max_new_tokens=12, batch_size=2)
    analyzer.load()
    posts = [
        image_post("a"),
        Post(id="text-only", text="no image here", thread_id="t"),
        image_post("b", text=""),
        image_post("too-many-pixels", data=png((200, 200))),  # 40,000 pixels > 10,000: refused, the rest go on
        image_post("c", text="third"),
    ]
    out = analyzer.analyze(posts)
    assert out[1] is None and out[3] is None
    for prediction in (out[0], out[2], out[4]):
        assert prediction is not None and prediction.problem() is None  # random weights: whatever it said was read
        assert prediction.details is not None and prediction.details["parsed"] in {"strict", "lenient", "words", "none"}
    check_analyzer(analyzer, load=False)


def test_qlora_loop_teaches_the_json_answer_which_the_analyzer_then_reads(tiny: Path, tmp_path: Path) -> None:
    for i, color in enumerate([(250, 250, 0), (0, 250, 0)]):
        (tmp_path / f"m{i}.png").write_bytes(png(color=color))
    data = tmp_path / "memes.jsonl"
    rows = [{"image": f"m{i % 2}.png", "text": "wen lambo", "label": "bullish", "ocr": "to the moon", "sarcastic": False} for i in range(4)]
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    memes = read_memes(data)
    assert memes[0] == Meme(tmp_path / "m0.png", "wen lambo", Sentiment.BULLISH, "to the moon", False)
    assert memes[0].answer() == ANSWER.replace(": ", ":").replace(", ", ",")

    losses = train(str(tiny), memes, tmp_path / "adapter", quantize_4bit=False, epochs=30, lr=1e-2, batch_size=2, grad_accum=1)
    assert losses[-1] < losses[0] / 5
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    analyzer = LlavaAnalyzer(LimitSettings(), model=str(tiny), adapter=str(tmp_path / "adapter"), force=True, device="cpu",
                             max_new_tokens=40)  # fmt: skip
    analyzer.load()
    (prediction,) = analyzer.analyze([image_post("x", text="wen lambo", data=(tmp_path / "m0.png").read_bytes())])
    assert prediction is not None and prediction.details is not None
    assert prediction.details == {"parsed": "strict", "ocr": "to the moon", "sarcastic": False}
    assert prediction.label is Sentiment.BULLISH and prediction.confidence == CONFIDENCE["strict"]


def test_dataset_errors_name_the_line(tmp_path: Path) -> None:
    data = tmp_path / "memes.jsonl"
    data.write_text('{"image": "a.png", "text": "", "label": "bullish"}\n{"image": "../../etc/passwd", "text": "", "label": "bullish"}\n')
    with pytest.raises(InvalidRecord, match=r"memes.jsonl:2: image .* outside the dataset's folder"):
        read_memes(data)
    data.write_text('{"image": "a.png", "text": "", "label": "moon"}\n')
    with pytest.raises(InvalidRecord, match=r"memes.jsonl:1: 'label' must be"):
        read_memes(data)


# -- GPU only ------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not cuda(), reason="needs CUDA (bitsandbytes 4-bit)")
def test_4bit_nf4_loading_and_qlora_on_cuda(tiny: Path, tmp_path: Path) -> None:
    analyzer = LlavaAnalyzer(LimitSettings(), model=str(tiny), max_new_tokens=8)
    analyzer.load()
    assert analyzer.version.endswith("@nf4")
    assert "Linear4bit" in {type(m).__name__ for m in analyzer._model.modules()}
    (prediction,) = analyzer.analyze([image_post("a")])
    assert prediction is not None and prediction.problem() is None
    (tmp_path / "m.png").write_bytes(png())
    memes = [Meme(tmp_path / "m.png", "wen lambo", Sentiment.BULLISH, "to the moon")] * 4
    losses = train(str(tiny), memes, tmp_path / "adapter", quantize_4bit=True, epochs=20, lr=1e-2, batch_size=2, grad_accum=1)
    assert losses[-1] < losses[0] and (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
