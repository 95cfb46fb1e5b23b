"""bizstream: live, self-improving sentiment for crypto/finance social posts, on Apache Kafka.

The public surface for plugin authors is re-exported here; everything else is reached through its module.
"""

from bizstream.analyzer import Analyzer, Prediction
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
