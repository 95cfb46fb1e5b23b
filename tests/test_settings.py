from __future__ import annotations

from pathlib import Path

import pytest

from bizstream.errors import ConfigError
from bizstream.settings import DEFAULT_CONFIG_FILE, Settings, load_settings


def test_config_file_documents_exactly_the_defaults() -> None:
    assert load_settings(DEFAULT_CONFIG_FILE, environ={}) == Settings()


def test_environment_overrides_file_with_typed_values() -> None:
    env = {
        "BIZSTREAM_WORKER__BATCH_SIZE": "64",
        "BIZSTREAM_WORKER__BATCH_TIMEOUT_S": "0.5",
        "BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
        "BIZSTREAM_FUSION__WEIGHTS__VADER": "0.5",
        "BIZSTREAM_PLUGINS__DISABLED": '["vader"]',
    }
    s = load_settings(DEFAULT_CONFIG_FILE, environ=env)
    assert s.worker.batch_size == 64
    assert s.worker.batch_timeout_s == 0.5
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.fusion.weights == {"vader": 0.5, "setfit": 0.7, "ocr": 0.0}
    assert s.plugins.disabled == ["vader"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BIZSTREAM_WORKER__BATCH_SIZE": "0"}, "worker.batch_size must be >= 1, got 0"),
        ({"BIZSTREAM_WORKER__BATCH_SIZE": "lots"}, "worker.batch_size must be int, got 'lots'"),
        ({"BIZSTREAM_WORKER__BATCHSIZE": "3"}, "unknown setting worker.batchsize"),
        ({"BIZSTREAM_NOPE__X": "3"}, "unknown settings section [nope]"),
        ({"BIZSTREAM_WORKER": "3"}, "must look like BIZSTREAM_<SECTION>__<KEY>"),
        ({"BIZSTREAM_BROKER__PORT": "70000"}, "broker.port must be a TCP port"),
        ({"BIZSTREAM_FUSION__WEIGHTS__VADER": "-1"}, "fusion.weights.vader must be >= 0"),
        # An infinite weight made every fused probability NaN (label "bullish", score -1) instead of an error.
        ({"BIZSTREAM_FUSION__WEIGHTS__VADER": "inf"}, "fusion.weights.vader must be a finite number, got inf"),
        ({"BIZSTREAM_WORKER__BATCH_TARGET_S": "nan"}, "worker.batch_target_s must be a finite number, got nan"),
        ({"BIZSTREAM_KAFKA__MODELS_KEY": "short"}, "kafka.models_key must be empty or at least 16 characters"),
        ({"BIZSTREAM_KAFKA__LABELS_KEY": "short"}, "kafka.labels_key must be empty or at least 16 characters"),
    ],
)
def test_bad_settings_fail_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(DEFAULT_CONFIG_FILE, environ=env)
    assert message in str(info.value)


def test_bad_file_is_reported_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text("[worker\nbatch_size = 3")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_replace_validates() -> None:
    assert Settings().replace(worker={"batch_size": 8}).worker.batch_size == 8
    with pytest.raises(ConfigError):
        Settings().replace(worker={"batch_size": -1})


def test_environment_variables_that_are_no_settings_path() -> None:
    assert load_settings(environ={"BIZSTREAM_FOO": "1", "BIZSTREAM_TESTS_KNOB": "x"}).worker.batch_size > 0  # not ours
    with pytest.raises(ConfigError, match="did you mean BIZSTREAM_WORKER__BATCH_SIZE"):
        load_settings(environ={"BIZSTREAM_WORKER_BATCH_SIZE": "3"})  # a typo of one
