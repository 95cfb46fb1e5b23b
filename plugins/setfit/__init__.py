"""SetFit: a sentence-embedding body with a logistic-regression head (model.py), trained in full or head-only
(training.py, standalone.py on a GPU box), exported to INT8 ONNX (export.py), served from its registry with hot
swaps between batches (analyzer.py).

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``setfit = "bizstream_plugins.setfit"``), as it finds any third-party plugin.
"""

from __future__ import annotations

import sys

from bizstream.hookspecs import hookimpl
from bizstream.learning.registry import ModelRegistry
from bizstream.settings import Settings
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer
from bizstream_plugins.setfit.training import PROFILES, SetfitTrainer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[SetfitAnalyzer]:
    """The SetFit analyzer over the configured registry."""
    s = settings.setfit
    return [SetfitAnalyzer(settings.setfit_registry, s.runtime, s.batch_size, s.max_seq_length, s.starter)]


@hookimpl(trylast=True)
def register_trainers(settings: Settings) -> list[SetfitTrainer]:
    """SetFit's trainer: ``trainer.mode`` (head or full) and the ``[setfit]`` body, profile, device and starter."""
    s = settings.setfit
    return [SetfitTrainer(ModelRegistry(settings.setfit_registry), settings.trainer.mode, s.body, PROFILES[s.profile],
                          s.seed, s.max_seq_length, s.device, show_progress=sys.stderr.isatty(), starter=s.starter,
                          prior_strength=s.head_prior, export_onnx=s.export_onnx, runtime=s.runtime)]  # fmt: skip
