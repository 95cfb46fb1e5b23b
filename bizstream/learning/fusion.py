"""Learned fusion: each analyzer's weight and the classes' base rates, fitted on held-back labels, then calibrated.

The fixed weights (``[fusion] weights``) fuse until enough held-back labels exist. Then the trainer's job fits a
log-linear pool: fused logits = sum over analyzers of weight x log-probabilities, plus a bias per class (a missing or
failed analyzer counts as uniform, which adds nothing). That is a multinomial logistic regression with one weight per
analyzer instead of one per analyzer, class and feature: five numbers for two analyzers, so a few dozen labels fit it
(a full stacker over every probability needed hundreds, and at 8 labels per class lost 20 points to the fixed weights
on the finance-tweet benchmark). A temperature picked on out-of-fold logits calibrates it. The candidate is gated like
any model: its out-of-fold predictions against what fuses now, on the same posts, with a sign test. A version is one
small JSON file in its own registry, its sha256 recorded in the metadata and checked before it serves.

Held-back labels: the evaluation holdout (bizstream.learning.dataset.in_holdout), the one set of labels no analyzer
trained on, so the probabilities the fusion learns from are the ones a new post gets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bizstream.learning.registry import ModelMetadata, ModelRegistry, RegistryError
from bizstream.records import SENTIMENTS, AnalyzerResult, Post

if TYPE_CHECKING:
    from bizstream.learning.trainers import Outcome
    from bizstream.pipeline import Pipeline
    from bizstream.settings import Settings

log = logging.getLogger(__name__)
PAYLOAD = "fusion.json"
MAX_PAYLOAD_BYTES = 1 << 20
FLOOR = 1e-4  # probabilities are clipped here before the log: one overconfident analyzer cannot dominate unboundedly
FIXED = "weights"  # what Score.fusion says when the fixed weights fused a post
# ... and when only analyzers of fusion weight 0 had something to say (OCR's reading of an image-only post): their
# plain mean, which a fuser (the sarcasm fuser, from the text OCR read) then refines.
UNWEIGHTED = "unweighted"
EVIDENCE = 0.1  # fit_fusion leaves the incumbent for a candidate whose lower log-loss is this unlikely by chance
MIN_FOR_TEMPERATURE = 30  # fewer held-back posts than this: no temperature (a few out-of-fold logits mislead it)


@dataclass(frozen=True)
class LearnedFusion:
    """A fitted pool: softmax((sum_a weights[a] * log p_a + bias) / temperature)."""

    version: str
    analyzers: tuple[str, ...]
    weights: np.ndarray  # (len(analyzers),), each >= 0
    bias: np.ndarray  # (classes,)
    temperature: float = 1.0

    def features(self, results: Sequence[Mapping[str, AnalyzerResult | None]]) -> np.ndarray:
        """(posts, analyzers, classes): each analyzer's log-probabilities (uniform when it has none)."""
        return stack_features(results, self.analyzers)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated class scores."""
        return _logits(features, self.weights, self.bias)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated (n, 3) probabilities."""
        return softmax(self.logits(features) / self.temperature)

    def covers(self, results: Mapping[str, AnalyzerResult | None]) -> bool:
        """Whether at least one of its analyzers has usable probabilities for this post."""
        return any(_usable(results.get(name)) for name in self.analyzers)

    def to_json(self) -> bytes:
        """The payload written to a registry version."""
        return json.dumps({"analyzers": list(self.analyzers), "classes": [s.value for s in SENTIMENTS],
                           "weights": self.weights.tolist(), "bias": self.bias.tolist(),
                           "temperature": self.temperature}, indent=1).encode()  # fmt: skip

    @classmethod
    def from_json(cls, version: str, raw: bytes) -> LearnedFusion:
        """Parse and check a payload (ValueError saying what is wrong)."""
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"{PAYLOAD} is {len(raw)} bytes, more than {MAX_PAYLOAD_BYTES}")
        obj = json.loads(raw)
        if obj.get("classes") != [s.value for s in SENTIMENTS]:
            raise ValueError(f"classes must be {[s.value for s in SENTIMENTS]}, got {obj.get('classes')!r}")
        analyzers = tuple(str(a) for a in obj["analyzers"])
        weights = np.asarray(obj["weights"], dtype=np.float64)
        bias = np.asarray(obj["bias"], dtype=np.float64)
        temperature = float(obj["temperature"])
        if not analyzers or weights.shape != (len(analyzers),) or bias.shape != (len(SENTIMENTS),):
            raise ValueError(f"weights of shape {weights.shape} and bias of shape {bias.shape} do not fit analyzers {analyzers}")
        if not (np.isfinite(weights).all() and np.isfinite(bias).all() and 0 < temperature < 1e3):
            raise ValueError("weights and bias must be finite and the temperature in (0, 1000)")
        return cls(version, analyzers, weights, bias, temperature)


def _usable(result: AnalyzerResult | None) -> bool:
    return result is not None and result.error is None and bool(result.probabilities)


def stack_features(results: Sequence[Mapping[str, AnalyzerResult | None]], analyzers: Sequence[str]) -> np.ndarray:
    """(posts, analyzers, classes): log-probabilities, uniform for an analyzer with no usable result."""
    uniform = [math.log(1 / len(SENTIMENTS))] * len(SENTIMENTS)
    rows = [[[math.log(max(FLOOR, (r.probabilities or {})[s.value])) for s in SENTIMENTS] if r is not None and _usable(r) else uniform
             for r in (per_post.get(name) for name in analyzers)] for per_post in results]  # fmt: skip
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(analyzers), len(SENTIMENTS))


def _logits(features: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.einsum("nac,a->nc", features, weights) + bias
    return result


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def expected_calibration_error(probabilities: np.ndarray, labels: Sequence[str], bins: int = 10) -> float:
    """ECE: the gap between confidence (top probability) and accuracy, averaged over equal-width confidence bins,
    weighted by how many posts fall in each."""
    if not len(labels):
        return 0.0
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == np.array([SENTIMENTS.index(label) for label in labels])
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += int(members.sum()) * abs(float(confidence[members].mean()) - float(right[members].mean()))
    return total / len(labels)


def fit_temperature(logits: np.ndarray, labels: Sequence[str]) -> float:
    """The temperature that minimises the negative log-likelihood of softmax(logits / T) (bounded search)."""
    from scipy.optimize import minimize_scalar

    truth = np.array([SENTIMENTS.index(label) for label in labels])

    def nll(t: float) -> float:
        p = softmax(logits / t)[np.arange(len(truth)), truth]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    return float(minimize_scalar(nll, bounds=(0.2, 5.0), method="bounded").x)


@dataclass(frozen=True)
class Fitted:
    """A fitted fusion and its out-of-fold predictions on the posts it was fitted on (for the gate and ECE)."""

    fusion: LearnedFusion
    out_of_fold: np.ndarray  # calibrated, (n, 3)
    out_of_fold_uncalibrated: np.ndarray
    what: str = "pool"  # "pool" (every analyzer), or "alone:<name>" (one analyzer, calibrated)


def fit_pool(
    features: np.ndarray, truth: np.ndarray, l2: float = 0.01, bias_l2: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (>= 0, one per analyzer) and class biases minimising the negative log-likelihood plus ``l2`` and
    ``bias_l2`` times their squares. The biases are held closer to 0: they learn the classes' shares among the
    held-back labels, which follow what people chose to label (active learning picks the uncertain posts), not
    necessarily the stream — on the finance-tweet benchmark a weaker hold cost 10 points when the held-back labels
    were balanced and the stream was not."""
    from scipy.optimize import minimize

    n_analyzers = features.shape[1]

    def loss(theta: np.ndarray) -> float:
        weights, bias = theta[:n_analyzers], theta[n_analyzers:]
        p = softmax(_logits(features, weights, bias))[np.arange(len(truth)), truth]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean() + l2 * (weights**2).sum() + bias_l2 * (bias**2).sum())

    start = np.r_[np.full(n_analyzers, 1.0 / n_analyzers), np.zeros(len(SENTIMENTS))]
    bounds = [(0.0, 20.0)] * n_analyzers + [(-10.0, 10.0)] * len(SENTIMENTS)
    theta = minimize(loss, start, method="L-BFGS-B", bounds=bounds).x
    return theta[:n_analyzers], theta[n_analyzers:]


def fit_fusion(
    results: Sequence[Mapping[str, AnalyzerResult | None]], labels: Sequence[str], analyzers: Sequence[str],
    version: str = "unsaved", seed: int = 0, incumbent: str | None = None, evidence: float = EVIDENCE,
) -> Fitted:  # fmt: skip
    """The pool over every analyzer, or one analyzer alone (weight 1, no biases), each with a temperature fitted on
    its out-of-fold logits (from MIN_FOR_TEMPERATURE posts on); up to 5 stratified folds.

    The choice starts from ``incumbent`` ("pool", or an analyzer alone: what serves now, else the analyzer the
    configured weights trust most; without one, the analyzer with the lowest out-of-fold log-loss) and moves to
    another candidate only on evidence: its per-post
    out-of-fold log-loss lower in a one-sided paired t-test at ``evidence``. Picking the best out-of-fold accuracy
    instead chased noise: on a few dozen held-back posts it chose VADER or the pool over a better SetFit in 6 of 10
    draws at 32 labels per class, 2.7 points below SetFit on average (bench/accuracy.py's data). Being able to choose
    one analyzer alone is what keeps a learned fusion from doing worse than the best single analyzer, which the fixed
    weights can (on finance tweets they pulled SetFit from 0.634 to 0.518). ValueError when the labels cannot support
    a fit (fewer than 2 classes, or a class with fewer than 2 posts)."""
    from scipy.stats import ttest_rel
    from sklearn.model_selection import StratifiedKFold

    x = stack_features(results, analyzers)
    y = np.array([SENTIMENTS.index(label) for label in labels])
    counts = np.bincount(y, minlength=len(SENTIMENTS))
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        raise ValueError(f"held-back labels per class {dict(zip([s.value for s in SENTIMENTS], counts.tolist(), strict=True))}: "
                         "need at least 2 classes with 2 posts each")  # fmt: skip
    folds = list(StratifiedKFold(n_splits=int(min(5, present.min())), shuffle=True, random_state=seed).split(x, y))
    alone = {name: _fitted(x[:, [k]], y, folds, version, (name,), f"alone:{name}") for k, name in enumerate(analyzers)}
    pool = _fitted(x, y, folds, version, tuple(analyzers), "pool")
    candidates = [pool, *alone.values()]

    def losses(f: Fitted) -> np.ndarray:
        result: np.ndarray = -np.log(np.clip(f.out_of_fold[np.arange(len(y)), y], 1e-12, 1.0))
        return result

    chosen = {"pool": pool, **alone}.get(incumbent or "") or min(alone.values(), key=lambda f: float(losses(f).mean()))
    for other in sorted((f for f in candidates if f is not chosen), key=lambda f: float(losses(f).mean())):
        difference = losses(other) - losses(chosen)
        if difference.mean() >= 0:
            continue
        p = float(ttest_rel(losses(other), losses(chosen), alternative="less").pvalue)
        if (p < evidence) if math.isfinite(p) else difference.max() < 0:  # no spread at all: better on every post
            return other
    return chosen


def _fitted(x: np.ndarray, y: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]], version: str,
            analyzers: tuple[str, ...], what: str) -> Fitted:  # fmt: skip
    def fit(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return fit_pool(x[rows], y[rows]) if what == "pool" else (np.ones(1), np.zeros(len(SENTIMENTS)))

    logits = np.zeros((len(y), len(SENTIMENTS)))
    for train_rows, test_rows in folds:
        weights, bias = fit(train_rows)
        logits[test_rows] = _logits(x[test_rows], weights, bias)
    labels = [SENTIMENTS[i].value for i in y]
    temperature = fit_temperature(logits, labels) if len(y) >= MIN_FOR_TEMPERATURE else 1.0
    weights, bias = fit(np.arange(len(y)))
    fusion = LearnedFusion(version, analyzers, weights, bias, temperature)
    return Fitted(fusion, softmax(logits / temperature), softmax(logits), what)


# -- the registry ---------------------------------------------------------------------------------------------------


def fusion_registry(root: Path) -> ModelRegistry:
    """Learned-fusion versions: ``<root>/versions/<v>/fusion.json``, promoted like any model."""
    return ModelRegistry(root, payload=PAYLOAD)


def save_fusion(registry: ModelRegistry, fusion: LearnedFusion, parent: str | None, metrics: dict[str, float],
                fingerprint: str, kind: str = "pool", fitted_through: int | None = None) -> ModelMetadata:  # fmt: skip
    """Add a version (not promoted) holding the fusion (``kind``: pool, or alone:<analyzer>), its checksum in the
    metadata, and the arrival number of the newest label it was fitted on (``fitted_through``, for the next gate)."""
    payload = fusion.to_json()
    staged = registry.staging()
    (staged / PAYLOAD).write_bytes(payload)
    metadata = ModelMetadata(
        version=fusion.version, analyzer="fusion", body_id="", body_source="", parent=parent,
        data_fingerprint=fingerprint, metrics=metrics, kind=kind,
        params={"weights": dict(zip(fusion.analyzers, fusion.weights.round(4).tolist(), strict=True)),
                "temperature": fusion.temperature,
                "sha256": hashlib.sha256(payload).hexdigest(),
                **({} if fitted_through is None else {"fitted_through": fitted_through})},
    )  # fmt: skip
    registry.add_version(staged, metadata)
    return metadata


def load_fusion(registry: ModelRegistry, version: str) -> LearnedFusion:
    """A version's stacker, its checksum verified (RegistryError when it is missing, altered or malformed)."""
    expected = registry.metadata(version).params.get("sha256")
    path = registry.version_dir(version) / PAYLOAD
    raw = path.read_bytes()[: MAX_PAYLOAD_BYTES + 1]
    if hashlib.sha256(raw).hexdigest() != expected:
        raise RegistryError(f"{path} does not match the sha256 recorded in its metadata; refusing to serve it")
    try:
        return LearnedFusion.from_json(version, raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"{path} is malformed: {exc}") from None


class ServedFusion:
    """The stacker the fusion registry serves, re-read when another version is promoted (a tiny file: the batch that
    notices the promotion already uses it). None while nothing serves: the fixed weights fuse."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.current: LearnedFusion | None = None
        self._failed: str | None = None

    def __call__(self) -> LearnedFusion | None:
        version = self.registry.serving()
        if version is None:
            self.current = None
        elif (self.current is None or version != self.current.version) and version != self._failed:
            try:
                self.current = load_fusion(self.registry, version)
                log.info("fusion: serving learned fusion %s", version)
            except (RegistryError, OSError) as exc:
                self._failed = version  # said once, not on every batch
                log.error("fusion: cannot serve %s (%s); keeping %s", version, exc,
                          self.current.version if self.current else "the fixed weights")  # fmt: skip
        return self.current


def describe(fitted: Fitted, labels: Sequence[str], baseline: np.ndarray) -> dict[str, Any]:
    """Out-of-fold metrics of a fitted stacker beside the baseline's, on the same labelled posts."""
    from bizstream.learning.dataset import classification_metrics

    ours = classification_metrics(fitted.out_of_fold, labels)
    theirs = classification_metrics(baseline, labels)
    return {
        "accuracy": ours["accuracy"], "macro_f1": ours["macro_f1"], "eval_examples": ours["eval_examples"],
        "accuracy_baseline": theirs["accuracy"], "macro_f1_baseline": theirs["macro_f1"],
        "ece": expected_calibration_error(fitted.out_of_fold, labels),
        "ece_uncalibrated": expected_calibration_error(fitted.out_of_fold_uncalibrated, labels),
        "ece_baseline": expected_calibration_error(baseline, labels),
        "temperature": fitted.fusion.temperature,
    }  # fmt: skip


# -- training (the trainer's job and `bizstream train fusion`) -------------------------------------------------------


CALIBRATION_MARGIN = 0.02  # a candidate whose expected calibration error is worse by more than this is worse


def fusion_gate(
    candidate: np.ndarray, baseline: np.ndarray, labels: Sequence[str], margin: float, min_examples: int | None = None
) -> tuple[dict[str, float], str | None]:
    """The fusion's gate on the held-back posts: accuracy as every candidate's (trainers.compare, ``min_examples``
    its own), and calibration — the cascade, pseudo-labels, active learning and dashboards read its confidence, so a
    fusion that is as accurate but worse calibrated (ECE higher by more than CALIBRATION_MARGIN, on at least
    MIN_EXAMPLES posts) is worse too."""
    from bizstream.learning.trainers import MIN_EXAMPLES, compare

    truth = np.array([SENTIMENTS.index(label) for label in labels])
    right = candidate.argmax(axis=1) == truth, baseline.argmax(axis=1) == truth
    gate, worse = compare("holdout", *right, margin, min_examples=MIN_EXAMPLES if min_examples is None else min_examples)
    ece, ece_before = expected_calibration_error(candidate, labels), expected_calibration_error(baseline, labels)
    gate.update(holdout_ece=ece, holdout_ece_serving=ece_before)
    if worse is None and len(labels) >= MIN_EXAMPLES and ece > ece_before + CALIBRATION_MARGIN:
        worse = f"holdout calibration: expected calibration error {ece:.3f} against {ece_before:.3f}"
    return gate, worse


class UpToDate(str):
    """Why no fusion was fitted, when that is because the serving one was fitted on the same labels and models."""


def train_fusion(settings: Settings, pipeline: Pipeline | None = None) -> Outcome | str:
    """Fit a learned fusion on the held-back labels, gate it against what fuses now (the serving learned fusion, or
    the fixed weights) on the same posts, keep it in the fusion registry and promote it when it is not worse. The
    analyzers' probabilities come from ``pipeline`` (default: the one the worker would load, serving models
    included). Returns why nothing was fitted, as a string, when the labels cannot support a fit."""
    from bizstream.learning.dataset import Split, in_holdout
    from bizstream.learning.trainers import Outcome
    from bizstream.pipeline import weighted_probabilities
    from bizstream.plugins import load_pipeline
    from bizstream.store.labels import LabelStore

    held_back = [r for r in LabelStore(settings.store_path).rows(source="human") if in_holdout(r.post_id, settings.trainer.eval_share)]
    if len(held_back) < settings.fusion.min_labels:
        return (f"the fixed weights keep fusing: {len(held_back)} held-back labels, fusion.min_labels="
                f"{settings.fusion.min_labels} needed")  # fmt: skip
    own = pipeline is None
    pipeline = pipeline or load_pipeline(settings, report=lambda status: None)
    registry = fusion_registry(settings.fusion_registry)
    serving = registry.serving()
    labels_hash = Split([r.text for r in held_back], [r.sentiment for r in held_back], [], []).fingerprint()
    models = ",".join(sorted(f"{a.name}={a.version}" for a in pipeline.analyzers))
    fingerprint = "sha256:" + hashlib.sha256(f"{labels_hash};{models}".encode()).hexdigest()[:16]  # what it is fitted from
    if serving is not None and registry.metadata(serving).data_fingerprint == fingerprint:
        if own:
            pipeline.close()
        # A job with no new labels (`train --now`, a drift event) would fit the same fusion again and promote a copy.
        return UpToDate(f"{serving} keeps fusing: it was fitted on these {len(held_back)} held-back labels with these models")
    try:
        results, labels, arrivals = [], [], []
        for i in range(0, len(held_back), 64):
            rows = held_back[i : i + 64]
            scored = pipeline.process([Post(id=r.post_id, text=r.text, thread_id=r.thread_id or r.post_id) for r in rows])
            by_id = {s.post_id: s for s in scored.scores}
            for r in rows:
                if r.post_id in by_id:
                    results.append(dict(by_id[r.post_id].analyzers))
                    labels.append(r.sentiment)
                    arrivals.append(r.arrival)
        analyzers = [a.name for a in pipeline.analyzers]
    finally:
        if own:
            pipeline.close()
    meta = registry.metadata(serving) if serving is not None else None
    try:
        # What serves stays unless another choice is better on evidence: starting each job from the analyzer the
        # configured weights trust most, the choice flipped between it and the pool from job to job, and accuracy with
        # it by up to 3 points (bench/loop.py, finance tweets).
        serves = meta.kind.removeprefix("alone:") if meta is not None else ""
        trusted = max(analyzers, key=settings.fusion.weight_of)  # what the configured weights trust most
        incumbent = serves if serves == "pool" or serves in analyzers else trusted
        fitted = fit_fusion(results, labels, analyzers, registry.new_version_id(), settings.setfit.seed, incumbent=incumbent)
    except ValueError as exc:
        return f"the fixed weights keep fusing: {exc}"
    # Compared where neither was fitted: the candidate out-of-fold, the serving fusion on the labels that came after
    # it (on the ones it was fitted on it looks better than it is — its temperature was chosen on them — and it kept
    # 7 of 21 fresher fits from serving: bench/loop.py, finance tweets, starter, 3 seeds). Those are few, so only a
    # significant drop counts; the fixed weights were fitted on nothing and are compared on every post.
    unseen = np.ones(len(labels), dtype=bool)
    if serving is not None and meta is not None:
        current = load_fusion(registry, serving)
        baseline = current.predict_proba(current.features(results))
        # A fusion saved before arrival numbers has none (0): it is compared on every held-back label, once.
        unseen = np.array(arrivals) > int(meta.params.get("fitted_through", 0))
        if not unseen.any():  # new models, no new labels: the serving one on its own labels, a bar set high
            unseen[:] = True
    else:
        fixed = [weighted_probabilities(r, settings.fusion) for r in results]
        baseline = np.array([[p[c.value] for c in SENTIMENTS] if p else [1 / 3] * 3 for p in fixed])
    gate, worse = fusion_gate(fitted.out_of_fold[unseen], baseline[unseen], [y for y, u in zip(labels, unseen, strict=True) if u],
                              settings.trainer.gate_margin, min_examples=None if serving is None else 0)  # fmt: skip
    metrics = {**describe(fitted, labels, baseline), "train_examples": float(len(labels))}
    candidate = save_fusion(registry, fitted.fusion, serving, metrics, fingerprint, fitted.what, max(arrivals))
    against = serving or "the fixed weights"
    chose = "every analyzer pooled" if fitted.what == "pool" else f"{fitted.what.removeprefix('alone:')} alone, calibrated"
    on = f"{int(unseen.sum())} held-back posts" + ("" if serving is None or unseen.all() else f" labelled since {serving}")
    why = f"{chose}: worse than {against}: {worse}" if worse else f"{chose}: not worse than {against} on {on} (out-of-fold)"
    registry.record_decision(candidate.version, not worse, why, gate)
    if not worse:
        registry.promote(candidate.version)
    registry.prune(settings.trainer.keep_versions)
    log.debug("fusion: %s %s (%s)", "promoted" if not worse else "kept aside", candidate.version, why)
    return Outcome("fusion", candidate, serving, not worse, why, gate, baseline="the fixed weights")
