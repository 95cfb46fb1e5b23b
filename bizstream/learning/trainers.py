"""The one path every training takes: a plugin's Trainer trains a candidate version, the gate compares it with what
serves on held-back slices, and the candidate is promoted (or not) with the reason.

``bizstream train setfit|cryptobert``, ``bizstream train --now`` and the trainer agent's job (bizstream.learning.job)
all come through :func:`train_candidate`; what differs is the split they pass, the slices they gate on and the
promotion rule. Trainers come from plugins (the ``register_trainers`` hook), so the host never imports a model's code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from bizstream.errors import ConfigError
from bizstream.learning.dataset import Split, classification_metrics
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.tracking import log_training
from bizstream.records import SENTIMENTS, ModelEvent
from bizstream.settings import Settings

log = logging.getLogger(__name__)

Promotion = Literal["gate", "always", "never"]
SIGNIFICANCE = 0.05  # the gate calls a candidate worse only when chance alone would show such a gap less often
MIN_EXAMPLES = 30  # on fewer posts than this the sign test cannot see a drop, so the gate takes the point estimate
Slices = Mapping[str, tuple[Sequence[str], Sequence[str]]]  # slice name -> (texts, label names)


@runtime_checkable
class Trainer(Protocol):
    """Trains new versions of one analyzer's model into its registry. Plugins return these from ``register_trainers``."""

    name: str  # the analyzer whose versions it trains
    registry: ModelRegistry

    def load(self) -> None:
        """Prepare the registry before a training (e.g. install a starter version); called first, every time."""

    def train(self, split: Split, parent: str | None) -> ModelMetadata:
        """Train on ``split.train_*``, evaluate on ``split.test_*``, add the version to the registry (not promoted).
        ``parent`` is the version serving now (None when none does). Raise AnalyzerUnavailable when it cannot train
        here (missing weights)."""

    def predict_proba(self, version: str | None, texts: Sequence[str]) -> np.ndarray | None:
        """(n, 3) probabilities (SENTIMENTS order) of a version; for ``None``, of the model before any version (a
        base model), or None when there is no such model."""


@dataclass(frozen=True)
class Outcome:
    """What one training did: the candidate, what served before it, whether it serves now and why."""

    trainer: str
    candidate: ModelMetadata
    serving_before: str | None
    promoted: bool
    why: str
    gate: dict[str, float] = field(default_factory=dict)  # <slice>_accuracy and <slice>_accuracy_serving
    tracked_as: str | None = None  # the MLflow run, when tracking is on
    baseline: str = "the base model"  # what the candidate was compared with when nothing served before it

    def event(self, reason: Literal["labels", "drift", "manual"], extra: Mapping[str, float] = {}) -> ModelEvent:  # noqa: B006
        """The decision as the models topic carries it: the candidate's metrics, the gate's and ``extra``."""
        version = self.candidate.version
        metrics = {**self.candidate.metrics, **self.gate, **extra}
        return ModelEvent(self.trainer, version, metrics, reason, self.promoted, self.why)

    def summary(self) -> str:
        """One paragraph a person can read: the candidate's metrics, the comparison, the decision."""
        m = self.candidate.metrics
        lines = [f"{self.trainer}: trained {self.candidate.version} ({self.candidate.kind}): "
                 + ", ".join(f"{k}={v:.4g}" for k, v in m.items())]  # fmt: skip
        slices = sorted(k.removesuffix("_accuracy") for k in self.gate if k.endswith("_accuracy"))
        against = self.serving_before or self.baseline
        for name in slices:
            new, old = self.gate[f"{name}_accuracy"], self.gate[f"{name}_accuracy_serving"]
            p_worse = self.gate.get(f"{name}_p_worse")
            lower = ""
            if new < old and p_worse is not None and self.promoted:  # why a lower accuracy still passed the gate
                lower = " (lower, within the gate's margin)" if p_worse < SIGNIFICANCE else f" (lower, not significantly: sign test p={p_worse:.2f})"
            lines.append(f"  {name}: accuracy {new:.3f} against {against} {old:.3f}{lower}")
        verdict = f"promoted {self.candidate.version}: it serves now" if self.promoted else "not promoted"
        keeps = f"; {self.serving_before} keeps serving" if not self.promoted and self.serving_before else ""
        lines.append(f"{verdict} ({self.why}){keeps}")
        if self.tracked_as:
            lines.append(f"tracked as MLflow run {self.tracked_as}")
        return "\n".join(lines)


def load_trainers(settings: Settings, third_party: bool = True) -> dict[str, Trainer]:
    """Every trainer the plugins contribute, by analyzer name (ConfigError on a duplicate name)."""
    from bizstream.plugins import get_plugin_manager

    trainers: dict[str, Trainer] = {}
    for contributed in get_plugin_manager(settings, third_party).hook.register_trainers(settings=settings):
        for trainer in contributed or []:
            if not isinstance(trainer, Trainer):
                raise ConfigError(f"{trainer!r} does not implement the Trainer protocol (name, registry, load, train, predict_proba)")
            if trainer.name in trainers:
                raise ConfigError(f"two plugins contribute a trainer for {trainer.name!r}")
            trainers[trainer.name] = trainer
    return trainers


def accuracy(trainer: Trainer, version: str | None, texts: Sequence[str], labels: Sequence[str]) -> float:
    """Accuracy of a version (None: the model before any version; 0 when there is none) on labelled texts."""
    if not texts:
        return 0.0
    probabilities = trainer.predict_proba(version, texts)
    return 0.0 if probabilities is None else classification_metrics(probabilities, labels)["accuracy"]


@dataclass(frozen=True)
class Earned:
    """A slice's margin that the candidate earns by being more accurate than the serving model on another slice, and
    the margin it gets otherwise. After drift a job may lose ground on the earlier labels (part of what they say is
    what changed) — but only when it has gained on the recent ones: a drift job that learned nothing new there lost
    14 points on the earlier labels and was promoted, fusion and all."""

    evidence: str
    margin: float
    otherwise: float


def gate(
    trainer: Trainer, candidate: str, serving: str | None, slices: Slices, margins: Mapping[str, float | Earned],
    significance: float = SIGNIFICANCE, decisive: str | None = None,
) -> tuple[dict[str, float], list[str]]:  # fmt: skip
    """Candidate and serving model on the same posts of every slice, and where the candidate is worse (see
    :func:`compare`). An empty list: not worse anywhere. Where a slice is too small for a test, any drop counts — on
    the ``decisive`` slice (on every slice when None); the others, parts of it, count only a significant drop, so
    that a few posts' noise does not block on its own."""
    metrics: dict[str, float] = {}
    worse: list[str] = []
    for name in sorted(slices, key=lambda n: isinstance(margins.get(n), Earned)):  # the evidence an Earned needs first
        texts, labels = slices[name]
        if not texts:
            continue
        margin, withheld = margins.get(name, 0.0), ""
        if isinstance(margin, Earned):
            gained = metrics.get(f"{margin.evidence}_accuracy", 0.0) > metrics.get(f"{margin.evidence}_accuracy_serving", 1.0)
            withheld = "" if gained else f"; it may lose up to {margin.margin} here only when more accurate on the {margin.evidence} labels"
            margin = margin.margin if gained else margin.otherwise
        found, why = compare(name, _right(trainer, candidate, texts, labels), _right(trainer, serving, texts, labels),
                             margin, significance, MIN_EXAMPLES if decisive in (None, name) else 0)  # fmt: skip
        metrics.update(found)
        worse += [why + withheld] if why else []
    return metrics, worse


def compare(
    name: str, new_right: np.ndarray, old_right: np.ndarray, margin: float, significance: float = SIGNIFICANCE,
    min_examples: int = MIN_EXAMPLES,
) -> tuple[dict[str, float], str | None]:  # fmt: skip
    """Candidate against serving on the same posts (per post: right or not): the metrics, and why the candidate is
    worse (None when it is not): accuracy lower by more than ``margin`` and a one-sided sign test on the posts where
    exactly one of the two is right below ``significance`` — or, on fewer than ``min_examples`` posts, where no test
    could tell, lower by more than ``margin`` at all (so a handful of posts cannot wave a worse model through)."""
    new, old = float(new_right.mean()), float(old_right.mean())
    only_old = int((old_right & ~new_right).sum())  # posts the serving model gets right and the candidate not
    only_new = int((new_right & ~old_right).sum())
    p_worse = _sign_test(only_old, only_old + only_new)
    metrics = {f"{name}_accuracy": new, f"{name}_accuracy_serving": old, f"{name}_examples": float(len(new_right)),
               f"{name}_p_worse": p_worse}  # fmt: skip
    few = len(new_right) < min_examples
    if new < old - margin and (few or p_worse < significance):
        why = f"fewer than {min_examples} posts, so any drop counts" if few else f"p={p_worse:.3g}"
        return metrics, f"{name} {new:.3f} < serving {old:.3f} - margin {margin} on {len(new_right)} posts ({why})"
    return metrics, None


def _same_model(registry: ModelRegistry, candidate: ModelMetadata, serving: str) -> bool:
    """Whether the candidate serves exactly what ``serving`` does: the same body and the same payload, byte for byte."""
    if registry.metadata(serving).body_id != candidate.body_id:
        return False
    ours, theirs = (registry.version_dir(v) / registry.payload for v in (candidate.version, serving))
    return ours.is_file() and theirs.is_file() and ours.read_bytes() == theirs.read_bytes()


def _right(trainer: Trainer, version: str | None, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Per post: whether this version's most probable class is the label (all False when there is no model)."""
    probabilities = trainer.predict_proba(version, texts)
    if probabilities is None:
        return np.zeros(len(texts), dtype=bool)
    truth = np.array([SENTIMENTS.index(label) for label in labels])
    right: np.ndarray = np.asarray(probabilities).argmax(axis=1) == truth
    return right


def _sign_test(k: int, n: int) -> float:
    """P(at least k of n fair coin flips land one way): how likely the serving model's edge is mere noise."""
    return 1.0 if n == 0 else sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


def train_candidate(
    settings: Settings, trainer: Trainer, split: Split, slices: Slices, margins: Mapping[str, float | Earned],
    promotion: Promotion = "gate", decisive: str | None = None,
) -> Outcome:  # fmt: skip
    """Train a candidate, track it (MLflow, when on), gate it (``decisive``: see :func:`gate`), and promote it as
    ``promotion`` says."""
    trainer.load()
    serving = trainer.registry.serving()
    candidate = trainer.train(split, serving)
    run_id = log_training(settings, trainer.registry, candidate)
    if promotion == "gate" and serving is not None and _same_model(trainer.registry, candidate, serving):
        # `train setfit --fast` twice on the same labels: the same head again, not a new version to announce.
        why = f"identical to {serving}, which serves: the same labels gave the same model, nothing to promote"
        trainer.registry.record_decision(candidate.version, False, why, {})
        return Outcome(trainer.name, candidate, serving, False, why, {}, run_id)
    metrics, worse = gate(trainer, candidate.version, serving, slices, margins, decisive=decisive) if promotion == "gate" else ({}, [])
    promoted, why = {
        "gate": (not worse, "worse on " + "; ".join(worse) if worse else "not worse than the serving model"),
        "always": (True, "promoted on request"),
        "never": (False, f"kept aside on request; `bizstream models promote {candidate.version}` serves it"),
    }[promotion]  # fmt: skip
    trainer.registry.record_decision(candidate.version, promoted, why, metrics)
    if promoted:
        trainer.registry.promote(candidate.version)
    trainer.registry.prune(settings.trainer.keep_versions)
    log.debug("%s: %s %s (%s): %s", trainer.name, "promoted" if promoted else "kept aside", candidate.version, why, metrics)  # Outcome.summary says it
    return Outcome(trainer.name, candidate, serving, promoted, why, metrics, run_id)
