"""The exception tree.

    BizstreamError
    ├── ConfigError            bad settings; raised at start-up, never per message
    ├── InvalidRecord          a message that fails validation (goes to the dead-letter topic)
    │   └── ImageRefused         an image that breaks a limit or a rule (size, pixels, path, URL)
    ├── AnalyzerUnavailable    an analyzer (fuser, trainer) that cannot run here: missing weights, no GPU
    └── BrokerError            the local Kafka broker could not be fetched, started or reached
"""

from __future__ import annotations


class BizstreamError(Exception):
    """Base class of every error bizstream raises on purpose."""


class ConfigError(BizstreamError):
    """A setting is missing, unknown or out of range."""


class InvalidRecord(BizstreamError):
    """A wire message failed validation; the message says what, where and the value."""


class ImageRefused(InvalidRecord):
    """An image was not loaded: too big, too many pixels, outside the image folder, or a URL not allowed."""


class AnalyzerUnavailable(BizstreamError):
    """An analyzer cannot run on this machine; the message says why."""


class BrokerError(BizstreamError):
    """The local Kafka broker could not be fetched, started, stopped or reached."""
