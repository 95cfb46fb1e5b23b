"""The plugin contract. Every hook is documented here and in docs/hooks.md (a test keeps the two in step).

Hooks are called with keyword arguments only, so a hook can gain arguments without breaking implementations, and an
implementation may accept fewer arguments than the specification lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bizstream.analyzer import Analyzer, Fuser
    from bizstream.learning.trainers import Trainer
    from bizstream.settings import Settings

hookspec = pluggy.HookspecMarker("bizstream")
hookimpl = pluggy.HookimplMarker("bizstream")


@hookspec
def register_analyzers(settings: Settings) -> list[Analyzer]:
    """Analyzers this plugin contributes. Called once at start-up; return an empty list to contribute none."""


@hookspec
def register_fusers(settings: Settings, analyzers: Mapping[str, Analyzer]) -> list[Fuser]:
    """Fusers this plugin contributes: they refine fused Scores after every analyzer has run (e.g. sarcasm).

    Called once at start-up, after the analyzers have loaded; ``analyzers`` are the available ones by name, for a fuser
    that needs to score text itself (e.g. the text read from an image) without importing another plugin.
    """


@hookspec
def register_trainers(settings: Settings) -> list[Trainer]:
    """Trainers this plugin contributes: each trains new versions of one analyzer's model (``bizstream train NAME``,
    the trainer agent's retraining job). Called when a training starts, in the process that trains."""
