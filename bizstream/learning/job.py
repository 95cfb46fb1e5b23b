"""One retraining job: mix new labels with replay, train a candidate, gate it against the serving model, promote.

Run by the trainer agent in a separate process (``python -m bizstream.learning.job --reason labels``), or in the
foreground by ``bizstream train --now``. A marker in the trainer state says a job is running; a job killed half-way
leaves the marker and the serving model untouched (promotion is the job's last, atomic step), and the trainer
starts the job again when it restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from bizstream.learning.dataset import Split
from bizstream.learning.embeddings import EmbeddingCache, TorchEncoder, default_body
from bizstream.learning.pseudo import PseudoLabel, pseudo_label
from bizstream.learning.registry import ModelRegistry
from bizstream.learning.replay import Example, ReplayBuffer
from bizstream.learning.tracking import log_training
from bizstream.records import SENTIMENTS, ModelEvent, Sentiment
from bizstream.settings import Settings, load_settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream_plugins.setfit.model import Head
from bizstream_plugins.setfit.training import PROFILES, refit_head, train_full

log = logging.getLogger(__name__)
RUNNING = "job_running"  # marker key: the reason of the job in progress
LAST_TRAINED_AT = "last_trained_at"  # labels up to this time have been trained on


@dataclass(frozen=True)
class JobResult:
    """What one job did."""

    candidate: str | None
    promoted: bool
    serving: str | None
    metrics: dict[str, float]
    why: str
    split: Split | None = field(default=None, repr=False)  # what the candidate learned from and was gated on


def run_training_job(settings: Settings, reason: str, publish: bool = True) -> JobResult:
    """Train, gate and (maybe) promote; always clears the running marker when it finishes."""
    store = LabelStore(settings.store_path)
    store.set_state(**{RUNNING: reason})
    result = _train_and_gate(settings, store, reason)  # if this dies, the marker stays and the trainer resumes it
    if settings.trainer.cryptobert and result.split is not None:
        _retrain_cryptobert(settings, result.split, reason, publish)
    store.set_state(**{RUNNING: None})
    if result.promoted and publish and result.candidate:
        event = ModelEvent("setfit", result.candidate, str(settings.setfit_registry / "versions" / result.candidate),
                           result.metrics, reason if reason in ("labels", "drift", "manual") else "manual")  # type: ignore[arg-type]  # fmt: skip
        asyncio.run(_publish_model_event(settings, event))
    return result


def _train_and_gate(settings: Settings, store: LabelStore, reason: str) -> JobResult:
    t = settings.trainer
    since = float(store.get_state(LAST_TRAINED_AT, "0") or 0)
    started_at = time.time()
    new = store.rows_since(since)
    rnd = random.Random(settings.setfit.seed)
    rnd.shuffle(new)
    if len(new) < 5:
        return JobResult(None, False, None, {}, f"only {len(new)} new labels since the last training")
    held = max(1, int(len(new) * t.eval_share))
    recent_eval, new_train = new[:held], new[held:]
    replay = ReplayBuffer(settings.store_path.with_name("replay.sqlite"), t.replay_capacity, settings.setfit.seed)
    new_ids = {r.post_id for r in new}
    old = [e for e in replay.items() if e.post_id not in new_ids]
    rnd.shuffle(old)
    replay_eval = old[: max(1, int(len(old) * t.eval_share))] if old else []
    replay_pool = old[len(replay_eval) :]
    # The head is refit from scratch, so it can learn from every remembered example: new labels and replayed ones
    # share the training weight new_share : 1 - new_share (the contrastive body fine-tune, in "full" mode, sees the
    # same examples unweighted).
    n_replay = len(replay_pool) if t.new_share < 1 else 0
    mix_texts = [r.text for r in new_train] + [e.text for e in replay_pool[:n_replay]]
    mix_labels = [r.sentiment for r in new_train] + [Sentiment.from_rating(e.rating).value for e in replay_pool[:n_replay]]
    mix_weights = [t.new_share / len(new_train)] * len(new_train) + [(1 - t.new_share) / max(1, n_replay)] * n_replay
    eval_texts = [r.text for r in recent_eval]
    eval_labels = [r.sentiment for r in recent_eval]
    registry = ModelRegistry(settings.setfit_registry)
    serving = registry.serving()
    pseudo = _pseudo_labels(settings, store, registry, serving, len(mix_texts)) if t.pseudo_labels else []
    mix_texts += [p.text for p in pseudo]
    mix_labels += [p.label for p in pseudo]
    mix_weights += [t.new_share / len(new_train)] * len(pseudo)  # weighed like new labels, capped in number
    total = sum(mix_weights)
    split = Split(mix_texts, mix_labels, eval_texts, eval_labels, [len(mix_weights) * w / total for w in mix_weights])

    if t.mode == "head" and serving is not None:
        candidate = refit_head(registry, split, parent=serving, seed=settings.setfit.seed)
    else:
        body = settings.setfit.body or str(default_body())
        candidate = train_full(registry, split, body, PROFILES[settings.setfit.profile], seed=settings.setfit.seed,
                               max_seq_length=settings.setfit.max_seq_length, parent=serving, show_progress=False,
                               device=settings.setfit.device)  # fmt: skip

    log_training(settings, registry, candidate)  # every training run is tracked (tracking.enabled)
    metrics: dict[str, float] = {
        "new_labels": float(len(new_train)), "replay_labels": float(n_replay), "pseudo_labels": float(len(pseudo))
    }
    slices = {"recent": (eval_texts, eval_labels)}
    if replay_eval:
        slices["replay"] = ([e.text for e in replay_eval], [Sentiment.from_rating(e.rating).value for e in replay_eval])
    worse = []
    for name, (texts, labels) in slices.items():
        new_acc = accuracy(registry, candidate.version, texts, labels)
        old_acc = accuracy(registry, serving, texts, labels) if serving else 0.0
        metrics[f"{name}_accuracy"], metrics[f"{name}_accuracy_serving"] = new_acc, old_acc
        # After drift, part of what the replay buffer remembers is what changed, so it may drop further there.
        margin = t.drift_replay_margin if (name == "replay" and reason == "drift") else t.gate_margin
        if new_acc < old_acc - margin:
            worse.append(f"{name} {new_acc:.3f} < serving {old_acc:.3f} - margin {margin}")
    # Everything trained on (or held back) now counts as seen: into the replay buffer, and the clock moves on.
    replay.add_many([Example(r.post_id, r.text, r.rating) for r in sorted(new, key=lambda r: r.labeled_at)])
    replay.close()
    store.set_state(**{LAST_TRAINED_AT: str(max(r.labeled_at for r in new))})
    if worse:
        log.warning("candidate %s not promoted: %s", candidate.version, "; ".join(worse))
        return JobResult(candidate.version, False, serving, metrics, "worse on " + "; ".join(worse), split)
    registry.promote(candidate.version)
    log.info("promoted %s (%s, %.1f s): %s", candidate.version, reason, time.time() - started_at, metrics)
    return JobResult(candidate.version, True, candidate.version, metrics, "not worse than the serving model", split)


def _retrain_cryptobert(settings: Settings, split: Split, reason: str, publish: bool) -> None:
    """LoRA-retrain CryptoBERT on the same mix (unweighted) and gate it on the recent slice; skipped, with the
    reason, where its weights are not on this machine."""
    from bizstream.errors import AnalyzerUnavailable
    from bizstream_plugins.cryptobert.model import DEFAULT_MODEL, registry_at
    from bizstream_plugins.cryptobert.training import train_version

    options = settings.plugins.options_for("cryptobert")
    registry = registry_at(settings.cryptobert_registry)
    try:
        outcome = train_version(registry, str(options.get("model", DEFAULT_MODEL)),
                                Split(split.train_texts, split.train_labels, split.test_texts, split.test_labels),
                                seed=settings.setfit.seed, max_length=int(options.get("max_length", 128)),
                                gate_margin=settings.trainer.gate_margin)  # fmt: skip
    except AnalyzerUnavailable as exc:
        log.warning("CryptoBERT not retrained: %s", exc)
        return
    log_training(settings, registry, outcome.metadata)
    m = outcome.metadata
    if outcome.promoted and publish:
        event = ModelEvent("cryptobert", m.version, str(registry.version_dir(m.version)), m.metrics,
                           reason if reason in ("labels", "drift", "manual") else "manual")  # type: ignore[arg-type]  # fmt: skip
        asyncio.run(_publish_model_event(settings, event))


def predict_proba(registry: ModelRegistry, version: str, texts: list[str]) -> np.ndarray:
    """Class probabilities of one registry version (embeddings through the body's cache)."""
    body = registry.body_dir(registry.metadata(version).body_id)
    cache = EmbeddingCache(body)
    try:
        embeddings = cache.encode(TorchEncoder(body), texts)
    finally:
        cache.close()
    return Head.load(registry.version_dir(version) / "head.safetensors").predict_proba(embeddings)


def accuracy(registry: ModelRegistry, version: str | None, texts: list[str], labels: list[str]) -> float:
    """Accuracy of one registry version on labelled texts."""
    if version is None or not texts:
        return 0.0
    predicted = [SENTIMENTS[i].value for i in predict_proba(registry, version, texts).argmax(axis=1)]
    return float(sum(p == y for p, y in zip(predicted, labels, strict=True))) / len(labels)


def _pseudo_labels(
    settings: Settings, store: LabelStore, registry: ModelRegistry, serving: str | None, mix_size: int
) -> list[PseudoLabel]:
    """Pseudo-labels from the serving model on unlabelled recent posts, stored as source = pseudo."""
    t = settings.trainer
    limit = int(mix_size * t.pseudo_max_share / (1 - t.pseudo_max_share))  # their share of the final mix
    posts = store.unlabelled_posts(limit * 5) if serving and limit > 0 else []
    if not posts:
        return []
    chosen = pseudo_label(posts, predict_proba(registry, serving or "", [text for _, text in posts]),
                          t.pseudo_threshold, limit, settings.setfit.seed)  # fmt: skip
    now = time.time()
    store.add([LabelRow(p.post_id, p.text, Sentiment(p.label).rating, f"pseudo:{serving}", None, "pseudo", now)
               for p in chosen])  # fmt: skip
    return chosen


async def _publish_model_event(settings: Settings, event: ModelEvent) -> None:
    from bizstream.stream import topics
    from bizstream.stream.client import publish

    try:
        await publish(settings.kafka, topics.MODELS, [(event.analyzer.encode(), event.to_json())])
    except Exception:  # boundary: the model is promoted either way; workers see it through the registry
        log.exception("promoted %s but could not announce it on %s", event.version, topics.MODELS)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the job process the trainer starts."""
    parser = argparse.ArgumentParser(prog="python -m bizstream.learning.job")
    parser.add_argument("--reason", default="labels", choices=["labels", "drift", "manual"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run_training_job(load_settings(), args.reason)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
