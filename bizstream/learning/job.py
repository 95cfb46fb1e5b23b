"""One retraining job: mix new labels with replay, train a candidate, gate it against the serving model, promote.

Training, gating and promotion go through bizstream.learning.trainers, as ``bizstream train NAME`` does; this module
decides what to train on and what to gate on: a persistent evaluation holdout (bizstream.learning.dataset.in_holdout)
that no job trains on, split into the labels new since the last training and the earlier ones. Run by the trainer agent in a separate process (``python -m bizstream.learning.job --reason labels``), or in the
foreground by ``bizstream train --now``. A marker in the trainer state says a job is running; a job killed half-way
leaves the marker and the serving model untouched (promotion is the job's last, atomic step), and the trainer
starts the job again when it restarts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bizstream.errors import AnalyzerUnavailable
from bizstream.learning.dataset import Split, in_holdout
from bizstream.learning.fusion import train_fusion
from bizstream.learning.pseudo import PseudoLabel, pseudo_label
from bizstream.learning.replay import Example, ReplayBuffer
from bizstream.learning.trainers import Earned, Outcome, Trainer, load_trainers, train_candidate
from bizstream.records import ModelEvent, Sentiment
from bizstream.settings import Settings, load_settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.trainer_state import RecentPosts, TrainerState

log = logging.getLogger(__name__)
RUNNING = "job_running"  # marker key: the reason of the job in progress
# Where the trainer is in the order labels reached its store (bizstream.store.labels: arrival numbers, not times).
LAST_TRAINED = "last_trained_arrival"  # labels up to this arrival number have been trained on
LAST_FULL = "last_full_arrival"  # labels up to this arrival number have been in a full fine-tune of the body
HEAD_ACCURACIES = "head_accuracies"  # JSON list: each head refit's accuracy on the holdout's new labels, since the last full
PRIMARY = "setfit"  # the model every job retrains; trainer.cryptobert adds CryptoBERT


@dataclass(frozen=True)
class JobResult:
    """What one job did."""

    candidate: str | None
    promoted: bool
    serving: str | None
    metrics: dict[str, float]
    why: str
    split: Split | None = field(default=None, repr=False)  # what the candidate learned from and was gated on
    outcomes: list[Outcome] = field(default_factory=list, repr=False)  # per trained model: candidate, decision, why
    events: list[ModelEvent] = field(default_factory=list, repr=False)  # the decisions, for whoever publishes them

    def report(self, reason: str, seconds: float) -> list[str]:
        """What a person reads: what the job learned from (or why it trained nothing), then each model's decision."""
        m = self.metrics
        mix = (f": {m['new_labels']:.0f} new labels, {m['replay_labels']:.0f} replayed, {m['pseudo_labels']:.0f} pseudo-labels"
               if "new_labels" in m else f": {self.why}")  # fmt: skip
        return [f"training job ({reason}) done in {seconds:.1f} s{mix}", *(outcome.summary() for outcome in self.outcomes)]


def run_training_job(settings: Settings, reason: str) -> JobResult:
    """Train, gate and (maybe) promote; always clears the running marker when it finishes. Every decision, promoted
    or not, comes back as a ModelEvent in the result: the trainer agent (or the CLI) publishes them."""
    store = LabelStore(settings.store_path)
    state = TrainerState(settings.store_path)
    state.set(**{RUNNING: reason})
    if reason == "drift":  # what the serving head knew is what changed: refit it from scratch, not held near it
        settings = settings.replace(setfit={"head_prior": 0.0})
    trainers = load_trainers(settings)
    # If this dies, the marker stays and the trainer resumes the job.
    result, outcomes = _train_and_gate(settings, store, state, reason, trainers)
    if settings.fusion.learned:  # refit on the held-back labels, with the analyzers that serve now
        fused = train_fusion(settings)
        if isinstance(fused, Outcome):
            outcomes.append(fused)
        else:
            log.info("fusion: %s", fused)
    state.set(**{RUNNING: None})
    trained_for: Literal["labels", "drift", "manual"] = reason if reason in ("labels", "drift") else "manual"  # type: ignore[assignment]
    events = [o.event(trained_for, result.metrics if o.trainer == PRIMARY else {}) for o in outcomes]
    return dataclasses.replace(result, outcomes=outcomes, events=events)


def _train_and_gate(
    settings: Settings, store: LabelStore, state: TrainerState, reason: str, trainers: dict[str, Trainer]
) -> tuple[JobResult, list[Outcome]]:
    t = settings.trainer
    # A full fine-tune learns from every label since the last full one; a head refit from those since the last job.
    since = int(state.get(LAST_FULL if t.mode == "full" else LAST_TRAINED, "0") or 0)
    started_at = time.time()
    new = store.rows_since(since)
    if len(new) < 5 and reason == "drift":
        # Labels are not used up: a drift event right after a label-count job still learns from the latest labels.
        new = store.rows(source="human")[-t.retrain_after :]
    if len(new) < 5:
        return JobResult(None, False, None, {}, f"only {len(new)} new labels since the last training"), []
    rnd = random.Random(settings.setfit.seed)
    rnd.shuffle(new)
    # The evaluation holdout (a stable share of posts, by id) is never trained on: the gate compares candidate and
    # serving model on labels neither has seen — the recent ones, and the earlier ones (for forgetting).
    recent_eval = [r for r in new if in_holdout(r.post_id, t.eval_share)]
    new_train = [r for r in new if not in_holdout(r.post_id, t.eval_share)]
    if not new_train:
        return JobResult(None, False, None, {}, f"all {len(new)} new labels are in the evaluation holdout"), []
    new_ids = {r.post_id for r in new}
    earlier_eval = [r for r in store.rows(source="human") if r.post_id not in new_ids and in_holdout(r.post_id, t.eval_share)]
    replay = ReplayBuffer(settings.store_path.with_name("replay.sqlite"), t.replay_capacity, settings.setfit.seed)
    replay_pool = [e for e in replay.items() if e.post_id not in new_ids and not in_holdout(e.post_id, t.eval_share)]
    # The head learns from every remembered example: the new labels and the replay buffer's (a uniform sample of every
    # earlier label). A job for new labels weighs them all alike, the stream being what it was (giving the latest
    # batch 70% of the weight made every head refit chase its 40-odd posts: on finance tweets, bench/loop.py, it cost
    # 1.2 points of accuracy and 1.2 of macro-F1 after 500 labels); after a drift event the new labels carry
    # new_share of the weight, since what changed is in them. The contrastive body fine-tune, in "full" mode, sees the
    # same examples unweighted.
    share = t.new_share if reason == "drift" else None
    n_replay = len(replay_pool) if share is None or share < 1 else 0
    mix_texts = [r.text for r in new_train] + [e.text for e in replay_pool[:n_replay]]
    mix_labels = [r.sentiment for r in new_train] + [Sentiment.from_rating(e.rating).value for e in replay_pool[:n_replay]]
    per_new = 1.0 if share is None else share / len(new_train)
    mix_weights = [per_new] * len(new_train) + [1.0 if share is None else (1 - share) / max(1, n_replay)] * n_replay
    eval_texts = [r.text for r in recent_eval]
    eval_labels = [r.sentiment for r in recent_eval]
    setfit = trainers[PRIMARY]
    setfit.load()
    serving = setfit.registry.serving()
    pseudo = _pseudo_labels(settings, store, setfit, serving, len(mix_texts)) if t.pseudo_labels else []
    mix_texts += [p.text for p in pseudo]
    mix_labels += [p.label for p in pseudo]
    mix_weights += [per_new] * len(pseudo)  # weighed like new labels, capped in number
    total = sum(mix_weights)
    split = Split(mix_texts, mix_labels, eval_texts, eval_labels, [len(mix_weights) * w / total for w in mix_weights])

    slices = {"recent": (eval_texts, eval_labels),
              "earlier": ([r.text for r in earlier_eval], [r.sentiment for r in earlier_eval])}  # fmt: skip
    margins: dict[str, float | Earned] = {"recent": t.gate_margin, "earlier": t.gate_margin}
    decisive: str | None = "holdout"
    if reason == "drift":
        # After drift, part of what earlier labels say is exactly what changed, so the candidate may drop further
        # there — when it has gained on the recent labels, evidence that it learned what changed.
        margins["earlier"], decisive = Earned("recent", t.drift_replay_margin, t.gate_margin), None
    elif earlier_eval:
        # The stream being what it was, the whole holdout decides; on its parts only a significant drop blocks. With
        # any drop on the 10-odd recent holdout posts counting, 10 of 30 head refits were rejected on noise
        # (bench/loop.py, finance tweets, 3 seeds), and what served lagged behind the labels.
        slices["holdout"] = (eval_texts + slices["earlier"][0], eval_labels + slices["earlier"][1])
        margins["holdout"] = t.gate_margin
    else:  # the first labels: the recent ones are the whole holdout (not reported twice)
        decisive = "recent"
    outcome = train_candidate(settings, setfit, split, slices, margins, decisive=decisive)
    outcomes = [outcome]
    if t.cryptobert and "cryptobert" in trainers:  # the same mix, unweighted, gated on the same slices
        unweighted = Split(split.train_texts, split.train_labels, split.test_texts, split.test_labels)
        try:
            outcomes.append(train_candidate(settings, trainers["cryptobert"], unweighted, slices, margins, decisive=decisive))
        except AnalyzerUnavailable as exc:
            log.warning("cryptobert not retrained: %s", exc)
    # What was trained on is remembered in the replay buffer (never the holdout), and the clock moves on.
    replay.add_many([Example(r.post_id, r.text, r.rating) for r in sorted(new_train, key=lambda r: r.arrival)])
    replay.close()
    trained_up_to = str(max(r.arrival for r in new))
    if outcome.candidate.kind == "full":
        state.set(**{LAST_TRAINED: trained_up_to, LAST_FULL: trained_up_to, HEAD_ACCURACIES: "[]"})
    else:  # for the plateau rule (bizstream.stream.trainer.due): does refitting the head still help?
        history = json.loads(state.get(HEAD_ACCURACIES, "[]") or "[]") + [outcome.gate.get("recent_accuracy", 0.0)]
        state.set(**{LAST_TRAINED: trained_up_to, HEAD_ACCURACIES: json.dumps(history[-20:])})
    metrics: dict[str, float] = {
        "new_labels": float(len(new_train)), "replay_labels": float(n_replay), "pseudo_labels": float(len(pseudo)),
        **outcome.gate,
    }  # fmt: skip
    log.debug("%s %s (%s, %.1f s): %s", "promoted" if outcome.promoted else "kept aside", outcome.candidate.version,
              reason, time.time() - started_at, metrics)  # fmt: skip
    serving_now = outcome.candidate.version if outcome.promoted else serving
    return JobResult(outcome.candidate.version, outcome.promoted, serving_now, metrics, outcome.why, split), outcomes


def _pseudo_labels(
    settings: Settings, store: LabelStore, trainer: Trainer, serving: str | None, mix_size: int
) -> list[PseudoLabel]:
    """Pseudo-labels from the serving model on unlabelled recent posts, stored as source = pseudo."""
    t = settings.trainer
    limit = int(mix_size * t.pseudo_max_share / (1 - t.pseudo_max_share))  # their share of the final mix
    posts = RecentPosts(settings.store_path).unlabelled(limit * 5) if serving and limit > 0 else []
    probabilities = trainer.predict_proba(serving, [text for _, text in posts]) if posts else None
    if probabilities is None:
        return []
    chosen = pseudo_label(posts, probabilities, t.pseudo_threshold, limit, settings.setfit.seed)
    now = time.time()
    store.add([LabelRow(p.post_id, p.text, Sentiment(p.label).rating, f"pseudo:{serving}", None, "pseudo", now)
               for p in chosen])  # fmt: skip
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Entry point of the job process the trainer starts."""
    parser = argparse.ArgumentParser(prog="python -m bizstream.learning.job")
    parser.add_argument("--reason", default="labels", choices=["labels", "drift", "manual"])
    parser.add_argument("--events", type=Path, help="write the decisions here, one ModelEvent (JSON) per line")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"])
    args = parser.parse_args(argv)
    # Its lines go to the trainer agent's log: the same format, bizstream's own at the agent's level, the libraries'
    # (sentence-transformers, MLflow, ...) only from warnings on unless debug.
    debug = args.log_level == "debug"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    for name in ("bizstream", "bizstream_plugins", __name__):
        logging.getLogger(name).setLevel(args.log_level.upper())
    if not debug:  # "setfit serves ...": the pipeline the fusion is fitted with loading, not a worker swapping
        for name in ("bizstream.learning.serving", "bizstream.learning.fusion", "bizstream_plugins.setfit.starter"):
            logging.getLogger(name).setLevel(logging.WARNING)
    started = time.monotonic()
    result = run_training_job(load_settings(), args.reason)
    for line in result.report(args.reason, time.monotonic() - started):
        log.info("%s", line)
    if args.events is not None:
        args.events.write_bytes(b"".join(event.to_json() + b"\n" for event in result.events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
