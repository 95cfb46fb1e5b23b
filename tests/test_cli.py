from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from bizstream.cli import app
from bizstream.store.labels import LabelStore
from tests.conftest import NO_BROKER, ROOT, child_env

runner = CliRunner()


def all_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "bizstream")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 4


def test_the_spec_commands_exist() -> None:
    names = {" ".join(p) for p in all_commands()}
    assert {"broker start", "broker stop", "broker status", "worker", "produce", "consume", "score", "plugins"} <= names


def test_score_offline_scores_good_lines_and_rejects_bad_ones(tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_SETFIT__STARTER="false")
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "a", "text": "this coin is going to moon"}\nnot json\n{"id": "b", "text": "rekt"}\n')
    result = subprocess.run([sys.executable, "-m", "bizstream", "score", str(posts)], capture_output=True, cwd=ROOT, env=env)
    assert result.returncode == 2, result.stderr  # something was rejected: a pipeline must notice
    assert b"scored 2 posts; rejected 1 lines" in result.stderr
    allowed = subprocess.run([sys.executable, "-m", "bizstream", "score", "--allow-rejects", str(posts)], capture_output=True, cwd=ROOT, env=env)
    assert allowed.returncode == 0 and len(allowed.stdout.splitlines()) == len(result.stdout.splitlines()) == 2
    scores = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(s["post_id"], s["label"]) for s in scores] == [("a", "bullish"), ("b", "bearish")]
    rejects = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith(b"{")]
    assert len(rejects) == 1 and rejects[0]["offset"] == 2 and "not valid JSON" in rejects[0]["message"]


def test_bad_settings_give_one_clear_line(tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_WORKER__BATCH_SIZE="-3")
    result = subprocess.run([sys.executable, "-m", "bizstream", "plugins"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 1
    assert "error: worker.batch_size must be >= 1, got -3" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_status_says_stopped(tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "bizstream", "broker", "status"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 1
    assert result.stdout.startswith("stopped")


def test_produce_without_a_broker_says_what_to_do(tmp_path: Path) -> None:
    posts = tmp_path / "p.jsonl"
    posts.write_text('{"id": "a", "text": "x"}\n')
    env = child_env(bare=True)
    for command in (["produce", str(posts)], ["consume", "scores"]):
        result = subprocess.run([sys.executable, "-m", "bizstream", *command], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()  # one line: no aiokafka ERROR line before it
        assert f"cannot reach Kafka at {NO_BROKER}" in line and "bizstream broker start" in line


def test_no_test_reaches_a_broker_a_developer_runs() -> None:
    # Tests that train, promote or label announce on Kafka. With a developer's `bizstream up` at the default
    # 127.0.0.1:9092 they announced into it, and its worker served a test's model; every test's bizstream, in this
    # process and in a child, is now pointed where nothing listens.
    from bizstream.settings import KafkaSettings, load_settings

    assert load_settings().kafka.bootstrap_servers == NO_BROKER != KafkaSettings().bootstrap_servers
    code = "from bizstream.settings import load_settings; print(load_settings().kafka.bootstrap_servers)"
    for env in (child_env(), child_env(bare=True)):
        seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
        assert seen.stdout.strip() == NO_BROKER, seen.stderr


def test_a_mistyped_topic_alias_is_refused_and_labels_are_keyed_by_post() -> None:
    # `--topic lables` published to a new topic named "lables"; and labels went unkeyed (round-robin), where the labels
    # topic is keyed by post id so that a label and its retraction stay in order.
    from bizstream.cli.stream import _key
    from bizstream.stream import topics

    said = runner.invoke(app, ["produce", "--topic", "lables", str(ROOT / "data" / "sample_labels.jsonl")])
    assert said.exit_code == 1 and "no topic alias 'lables': use one of posts, scores" in str(said.exception)  # one line (main)
    assert topics.resolve("labels") == topics.LABELS and topics.resolve("someone.elses.topic") == "someone.elses.topic"
    label = b'{"post_id": "p1", "rating": 3, "labeler": "ann", "text": "moon"}'
    assert _key(label, topics.LABELS) == b"p1" and _key(b'{"id": "p2", "thread_id": "t1"}', topics.POSTS) == b"t1"


@pytest.mark.parametrize("columns", ["80", "400"])
def test_unavailable_reasons_are_whole_sentences_with_their_setting_names(tmp_path: Path, columns: str) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path), BIZSTREAM_SETFIT__STARTER="false", COLUMNS=columns)
    result = subprocess.run([sys.executable, "-m", "bizstream", "plugins"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())  # however the width wrapped it
    assert "cryptobert is unavailable: no weights for" in said and "point [plugins.options.cryptobert] model at it" in said
    assert "sarcasm (fuser)" in said and "<bool>" not in runner.invoke(app, ["label", "--help"]).output


def test_an_error_message_keeps_its_brackets() -> None:
    env = child_env(bare=True, BIZSTREAM_NOPE__X="3")
    result = subprocess.run([sys.executable, "-m", "bizstream", "plugins"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 1 and "unknown settings section [nope] in the environment" in result.stderr


@pytest.mark.parametrize("command", [["score"], ["produce"], ["labels", "import"]])
def test_a_missing_input_file_is_one_line_at_once(command: list[str], tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "bizstream", *command, str(tmp_path / "nope.jsonl")], capture_output=True,
                            text=True, cwd=ROOT, env=env)  # fmt: skip
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [f"error: no such file: {tmp_path / 'nope.jsonl'}"]


def test_version_and_a_fusion_weight_for_no_analyzer(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("bizstream 0.")
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_SETFIT__STARTER="false",
                    BIZSTREAM_FUSION__WEIGHTS__VADR="0.5")  # fmt: skip
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "a", "text": "moon"}\n')
    scored = subprocess.run([sys.executable, "-m", "bizstream", "score", str(posts)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert scored.returncode == 0 and "fusion.weights.vadr names no analyzer any plugin provides" in scored.stderr


def test_labels_import_says_how_many_are_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "moon soon", "label": "bullish"}\n{"text": "rekt", "label": "bearish"}\n')
    monkeypatch.setenv("BIZSTREAM_STORE__PATH", str(tmp_path / "db.sqlite"))
    first = runner.invoke(app, ["labels", "import", str(labels)])
    again = runner.invoke(app, ["labels", "import", str(labels)])
    assert "2 new, 0 already there" in first.output and "0 new, 2 already there" in again.output
    assert "the store holds 2 labels" in again.output
    assert LabelStore(tmp_path / "db.sqlite").count_since(0) == 2  # and new to the trainer once
    exported = runner.invoke(app, ["labels", "export", "-"])  # to stdout, for a pipe
    assert sorted(orjson.loads(line)["text"] for line in exported.stdout.splitlines()) == ["moon soon", "rekt"]
    assert not [line for line in exported.stdout.splitlines() if "arrival" in orjson.loads(line)]  # this store's own


def test_the_sample_labels_import_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's own step: labels of image-only memes are passed over in one line, not rejected row by row."""
    monkeypatch.setenv("BIZSTREAM_STORE__PATH", str(tmp_path / "db.sqlite"))
    result = runner.invoke(app, ["labels", "import", str(ROOT / "data" / "sample_labels.jsonl")])
    assert result.exit_code == 0, result.output
    assert "rejected" not in result.output.replace("0 rows rejected", "")
    assert "labels of posts with no text (image-only posts" in result.output


def test_no_bitsandbytes_kernel_noise(tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_SETFIT__STARTER="false")
    code = "import bizstream, setfit, peft"  # what loading SetFit or CryptoBERT imports
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0 and "pip install kernels" not in result.stderr


def test_an_empty_labeler_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bizstream.records import Post
    from bizstream.store.labels import LabelRow, LabelStore
    from bizstream.store.scored import ScoredPostStore

    monkeypatch.setenv("BIZSTREAM_STORE__PATH", str(tmp_path / "db.sqlite"))
    empty = runner.invoke(app, ["label", "--labeler", "ann"], input="q")
    assert "no scored posts with text are stored yet; run `bizstream sink`" in empty.output
    labels = LabelStore(tmp_path / "db.sqlite")
    store = ScoredPostStore(labels)
    store.add_posts([Post(id=f"p{i}", text=f"post {i}", thread_id="t") for i in range(3)])
    store.add_scores([{"post_id": f"p{i}", "thread_id": "t", "label": "neutral", "score": 0.0, "confidence": 0.5,
                       "probabilities": {"bearish": 0.2, "neutral": 0.6, "bullish": 0.2}, "scored_at": 1.0} for i in range(3)])  # fmt: skip
    labels.add([LabelRow("p0", "post 0", 2, "import"), LabelRow("p1", "post 1", 2, "import")])
    store.skip("p2", "ann")
    done = runner.invoke(app, ["label", "--labeler", "ann"], input="q")
    assert "all 3 scored posts with text are labelled (2) or skipped by ann (1)" in done.output


def test_score_shows_a_table_for_people(tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_SETFIT__STARTER="false")
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "a", "text": "this coin is going to moon"}\n{"id": "b", "text": "rekt"}\n')
    result = subprocess.run([sys.executable, "-m", "bizstream", "score", "--table", str(posts)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and "this coin is going to moon" in rows[0] and "bullish" in rows[0] and "vader bullish" in rows[0]
    assert "bearish" in rows[1] and "weights" in rows[1]


def test_an_analyzer_busy_in_torch_at_exit_does_not_abort_the_process(tmp_path: Path) -> None:
    # Finalizing the interpreter under a thread inside torch aborts it: "terminate called without an active
    # exception", exit 134, and whatever was still buffered is lost.
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_SETFIT__STARTER="false",
                    BIZSTREAM_PLUGINS__LOAD='["tests.fixtures.native"]', BIZSTREAM_WORKER__ANALYZER_TIMEOUT_S="0.5")  # fmt: skip
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "a", "text": "this coin is going to moon"}\n')
    result = subprocess.run([sys.executable, "-m", "bizstream", "score", str(posts)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert "terminate called" not in result.stderr and "torchbusy still busy with a batch" in result.stderr
    (score,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert "timed out" in score["analyzers"]["torchbusy"]["error"] and score["analyzers"]["vader"]["label"] == "bullish"


def test_models_list_says_what_each_accuracy_was_measured_on() -> None:
    from bizstream.cli.models import _headline

    assert _headline({"accuracy": 0.9, "macro_f1": 0.8, "eval_examples": 56}) == (0.9, 0.8, "56 holdout")
    starter = {"twitter_financial_news_accuracy": 0.73, "twitter_financial_news_macro_f1": 0.68, "twitter_financial_news_eval_examples": 2388,
               "surge_crypto_reddit_accuracy": 0.77, "surge_crypto_reddit_eval_examples": 111}  # fmt: skip
    assert _headline(starter) == (0.73, 0.68, "2388 twitter_financial_news")  # not passed off as your holdout


def test_models_list_on_a_fresh_install_says_what_serves_until_a_version_comes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty table said nothing, while the starter serves
    setfit = runner.invoke(app, ["models", "list"])
    fusion = runner.invoke(app, ["models", "list", "-a", "fusion"])
    assert setfit.exit_code == 0 and "no setfit versions" in setfit.output and "starter model (v0-starter)" in setfit.output
    assert fusion.exit_code == 0 and "the fixed weights" in fusion.output
    refused = runner.invoke(app, ["models", "list", "-a", "nope"])
    assert "must be one of cryptobert, fusion, setfit, got 'nope'" in str(refused.exception)


def test_a_port_already_taken_is_one_line_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every agent, the dashboard and `up` bind their port first: a second dashboard was a traceback, and a faust agent
    # crashed with one ("We experienced a crash!") after it had started.
    from bizstream.errors import ConfigError
    from bizstream.metrics import bind

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with bind("127.0.0.1", 0, "a test") as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port} for the sink's metrics: Address already in use"):
            bind("127.0.0.1", port, "the sink's metrics")
        result = runner.invoke(app, ["up", "--dashboard-port", str(port)])
    assert "(dashboard.port, --dashboard-port): Address already in use" in str(result.exception)
    assert not (tmp_path / "bizstream" / "logs").exists()  # nothing was started


def test_model_commands_refuse_bad_arguments_before_doing_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    # A bad --keep-fp32 was a traceback after the whole ONNX export had run.
    exported = runner.invoke(app, ["export", "onnx", "--keep-fp32", "bogus"])
    assert "keep_fp32 must be 'none' or 'ffn-out', got 'bogus'" in str(exported.exception)
    # A folder that is no registry "imported 0 versions" and exited 0.
    imported = runner.invoke(app, ["models", "import", str(tmp_path / "nowhere")])
    assert "is not a model registry: it has no versions/ folder" in str(imported.exception)


def test_the_score_table_says_what_each_analyzer_judged() -> None:
    from bizstream.cli.stream import _verdict
    from bizstream.records import AnalyzerResult, Sentiment

    third = 1 / 3
    ocr = AnalyzerResult("ocr", "t", 1.0, 0.0, Sentiment.BEARISH, third, {"bearish": third, "neutral": third, "bullish": third})
    vader = AnalyzerResult("vader", "v", 1.0, 0.5, Sentiment.BULLISH, 0.6, {"bearish": 0.1, "neutral": 0.3, "bullish": 0.6})
    failed = AnalyzerResult("setfit", "s", 1.0, error="timed out")
    assert [_verdict(r) for r in (ocr, vader, failed)] == ["no opinion", "bullish", "error"]
