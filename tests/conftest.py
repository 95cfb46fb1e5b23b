"""Shared fixtures: settings that keep files in tmp folders, and a small SetFit model trained on a separable set; and
where Kafka is for every test that starts no broker of its own (NO_BROKER, child_env)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.embeddings import default_body
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.settings import Settings
from bizstream_plugins.setfit.training import TrainProfile, train_full

ROOT = Path(__file__).resolve().parent.parent

# Where no broker is: a port this session holds bound but never listens on, so a connection to it is refused at once.
# Every bizstream a test runs, in this process or in a child (child_env), talks to it unless the test starts a broker
# of its own; so no test reaches a broker a developer runs at the default 127.0.0.1:9092. Before, tests that train or
# label announced into it: a worker under `bizstream up` swapped to a head test_starter had trained on 73 templates.
_HELD = socket.socket()
_HELD.bind(("127.0.0.1", 0))
NO_BROKER = f"127.0.0.1:{_HELD.getsockname()[1]}"
os.environ["BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS"] = NO_BROKER


def child_env(*, bare: bool = False, **variables: str) -> dict[str, str]:
    """The environment of a bizstream child process: this one's without its BIZSTREAM_ settings (bare: PATH alone, so
    nothing of the developer's shell, COLUMNS say, reaches it), Kafka at NO_BROKER, then ``variables``, which may name
    a test's own broker."""
    env = {"PATH": "/usr/bin:/bin"} if bare else {k: v for k, v in os.environ.items() if not k.startswith("BIZSTREAM_")}
    env["BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS"] = NO_BROKER
    env.update(variables)
    return env


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings, with the cache in tmp_path and without the starter model (tests/plugins/setfit/test_starter.py
    tests it; elsewhere SetFit serves only what a test trains)."""
    return Settings().replace(broker={"cache_dir": str(tmp_path / "cache")}, kafka={"bootstrap_servers": NO_BROKER},
                              setfit={"starter": False, "export_onnx": False})  # fmt: skip

BULLISH = ["{c} to the moon, buying more", "{c} is pumping, huge gains", "{c} breakout, all time high soon",
           "loading up on {c}, so bullish", "{c} rocket, we are all rich"]  # fmt: skip
BEARISH = ["{c} crashed, I lost everything", "{c} is a scam, dump it", "{c} rug pull, devs ran away",
           "{c} bleeding red, sell now", "{c} going to zero, total loss"]  # fmt: skip
NEUTRAL = ["what exchange lists {c}?", "how do I stake {c}", "{c} wallet address question",
           "when is the {c} conference", "{c} whitepaper link please"]  # fmt: skip
COINS = ["$BTC", "$ETH", "$SOL", "$DOGE", "$LINK", "$ADA"]


def separable(coins: list[str] = COINS) -> tuple[list[str], list[str]]:
    """Texts and labels: every template with every coin."""
    texts, labels = [], []
    for label, templates in (("bullish", BULLISH), ("bearish", BEARISH), ("neutral", NEUTRAL)):
        for coin in coins:
            for template in templates:
                texts.append(template.format(c=coin))
                labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRegistry, ModelMetadata, Split]:
    """A registry holding one full model trained (tiny profile) on the separable set, promoted."""
    train_texts, train_labels = separable(COINS[:4])
    test_texts, test_labels = separable(COINS[4:])  # unseen coins
    split = Split(train_texts, train_labels, test_texts, test_labels)
    registry = ModelRegistry(Path(tmp_path_factory.mktemp("registry")))
    metadata = train_full(registry, split, default_body(), TrainProfile(batch_size=16, num_epochs=1, num_iterations=1),
                          show_progress=False)  # fmt: skip
    registry.promote(metadata.version)
    return registry, metadata, split
