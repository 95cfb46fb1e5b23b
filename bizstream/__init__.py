"""bizstream: live, self-improving sentiment for crypto/finance social posts, on Apache Kafka.

The public surface for plugin authors is re-exported here; everything else is reached through its module.
"""

import logging as _logging

# bitsandbytes (imported by sentence-transformers, setfit and peft) warns on every import, on CPUs with AVX-512 BF16,
# that an optional kernel for 4-bit matmuls on the CPU is missing. 4-bit runs on CUDA here (LLaVA), so the line is
# noise in every command's output; only that message is dropped, the logger's others still show.
_logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward")
)


class _RetriedToDebug(_logging.Filter):
    """aiokafka logs what it retries by itself after a leadership change: NotLeaderForPartition in a new topic's first
    milliseconds (the metadata names the leader before the leader has loaded the partition, so the demo showed six
    such lines at start) or while a broker restarts. The producer warns for every batch it sends again (a send that
    finally fails raises to its caller); a consumer's offset lookup says ERROR and tries again. There is nothing to act
    on: those lines are logged at DEBUG instead. Any other error of the consumer's still shows."""

    def filter(self, record: _logging.LogRecord) -> bool:
        message = str(record.msg)
        retried = (record.levelno == _logging.WARNING and message.startswith("Got error produce response")) or (
            message.startswith("Failed fetch offsets from")
            and any(getattr(arg, "invalid_metadata", False) for arg in (record.args if isinstance(record.args, tuple) else ()))
        )
        if retried:
            record.levelno, record.levelname = _logging.DEBUG, "DEBUG"
            return _logging.getLogger(record.name).isEnabledFor(_logging.DEBUG)
        return True


for _name in ("aiokafka.producer.sender", "aiokafka.consumer.fetcher"):
    _logging.getLogger(_name).addFilter(_RetriedToDebug())

from bizstream.analyzer import Analyzer, Prediction  # noqa: E402
from bizstream.errors import (
    AnalyzerUnavailable,
    BizstreamError,
    BrokerError,
    ConfigError,
    InvalidRecord,
)
from bizstream.hookspecs import hookimpl
from bizstream.records import DeadLetter, DriftEvent, Label, ModelEvent, Post, Score, Sentiment
from bizstream.settings import Settings, load_settings

__all__ = [
    "Analyzer",
    "AnalyzerUnavailable",
    "BizstreamError",
    "BrokerError",
    "ConfigError",
    "DeadLetter",
    "DriftEvent",
    "InvalidRecord",
    "Label",
    "ModelEvent",
    "Post",
    "Prediction",
    "Score",
    "Sentiment",
    "Settings",
    "hookimpl",
    "load_settings",
]
