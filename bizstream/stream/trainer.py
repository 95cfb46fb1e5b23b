"""The trainer agent: stores every label, and starts a retraining job (a separate process) when enough new labels
have arrived, when a drift event arrives, or on start-up when a job was interrupted.

Consuming never waits for training: the job runs as ``python -m bizstream.learning.job`` and the agent only checks,
between messages, whether it has finished. One job at a time; a trigger that comes while one runs is kept and
served when it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import faust

from bizstream import metrics
from bizstream.errors import InvalidRecord
from bizstream.learning.job import HEAD_ACCURACIES, LAST_FULL, LAST_TRAINED, RUNNING
from bizstream.records import DriftEvent, Label, ModelEvent, Post
from bizstream.settings import Settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.trainer_state import RecentPosts, TrainerState
from bizstream.stream import topics
from bizstream.stream.apps import dead_letter_or_exit, decode_or_dead_letter, exit_uncommitted, new_app, status_line
from bizstream.stream.models import publish_decision
from bizstream.stream.signing import HEADER, trusted

log = logging.getLogger(__name__)
APP_ID = "bizstream-trainer"


@dataclass
class JobRunner:
    """Starts training jobs in their own process, one at a time."""

    settings: Settings
    process: asyncio.subprocess.Process | None = None
    queued: tuple[str, str | None] | None = None  # (reason, mode) of the job to start next
    finished: list[int] = field(default_factory=list)  # exit codes, for tests and logs

    @property
    def busy(self) -> bool:
        """True while a job process runs."""
        return self.process is not None and self.process.returncode is None

    async def request(self, reason: str, mode: str | None = None) -> None:
        """Start a job now, or as soon as the running one ends (``mode``: head or full, default trainer.mode); a full
        request replaces a queued head one."""
        if self.busy:
            if self.queued is None or mode == "full":
                self.queued = (reason, mode)
            return
        log.info("starting a training job (%s, %s)", reason, mode or self.settings.trainer.mode)
        metrics.JOBS.labels(reason).inc()
        env = os.environ.copy()
        if mode is not None:
            env["BIZSTREAM_TRAINER__MODE"] = mode
        events = self.settings.store_path.parent / f"job-events-{os.getpid()}.jsonl"
        events.unlink(missing_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bizstream.learning.job", "--reason", reason, "--events", str(events),
            "--log-level", logging.getLevelName(min(max(log.getEffectiveLevel(), logging.DEBUG), logging.CRITICAL)).lower(), env=env,
        )  # fmt: skip
        asyncio.get_running_loop().create_task(self._reap(self.process, events))

    async def _reap(self, process: asyncio.subprocess.Process, events: Path) -> None:
        code = await process.wait()
        self.finished.append(code)
        log.info("training job ended with exit code %s", code)
        # The job decided; the agent tells every machine (bizstream.stream.models), the serving files with it.
        for line in events.read_bytes().splitlines() if events.is_file() else []:
            try:
                await publish_decision(self.settings, ModelEvent.from_json(line))
            except Exception:  # boundary: the decision stands here; the next one carries what serves then
                log.exception("could not publish a training decision on %s", topics.MODELS)
        events.unlink(missing_ok=True)
        if self.queued is not None:
            (reason, mode), self.queued = self.queued, None
            await self.request(reason, mode)


def due(settings: Settings, store: LabelStore, state: TrainerState) -> str | None:
    """Which job the labels call for now: "full" when trainer.full_after labels have come since the last full
    fine-tune, or when head refits have plateaued (trainer.plateau_jobs in a row without gain, and retrain_after labels
    since the last full one); else trainer.mode when trainer.retrain_after have come since the last training; else
    None."""
    t = settings.trainer
    since_full = store.count_since(int(state.get(LAST_FULL, "0") or 0))
    if t.full_after and since_full >= t.full_after:
        return "full"
    if store.count_since(int(state.get(LAST_TRAINED, "0") or 0)) < t.retrain_after:
        return None
    recent = json.loads(state.get(HEAD_ACCURACIES, "[]") or "[]")[-t.plateau_jobs :] if t.plateau_jobs else []
    if recent and len(recent) == t.plateau_jobs and max(recent[1:], default=recent[0]) <= recent[0] + t.plateau_delta and since_full >= t.retrain_after:
        return "full"
    return t.mode


def label_row(label: Label) -> LabelRow | Label | None:
    """The training_labels row of a Label (the trainer needs the text: the labeler sends it); a retraction as it is;
    None for a label without text (an image-only post's): a valid Label that the monitor uses, but nothing a text
    model can learn from, so not bad input to dead-letter either."""
    if label.retracted:
        return label
    if not label.text or not label.text.strip():
        return None
    return LabelRow(label.post_id, label.text, label.rating, label.labeler, None, label.source, label.labeled_at)


def create_trainer_app(settings: Settings) -> faust.App:
    """The trainer's faust app: labels in, training jobs out."""
    app, declared = new_app(settings, APP_ID)
    store = LabelStore(settings.store_path)
    state = TrainerState(settings.store_path)
    recent = RecentPosts(settings.store_path)
    runner = JobRunner(settings)
    deadletter = declared[topics.DEADLETTER]
    seen = {"stored": 0, "textless": 0, "retracted": 0, "unsigned": 0}  # labels since this process started, for the status line

    def verified(raw: bytes, headers: Mapping[str, bytes]) -> Label:
        """The label, when it is signed with kafka.labels_key (or no key is set): a forged one teaches nothing."""
        if not trusted(settings.kafka.labels_key, raw, headers):
            seen["unsigned"] += 1
            if seen["unsigned"] == 1:  # a labeler without the key loses every label it sends: say so once, loudly
                log.warning("a label on %s is not signed with kafka.labels_key: dead-lettered, as every unsigned one will "
                            "be; set BIZSTREAM_KAFKA__LABELS_KEY where the labels are given", topics.LABELS)  # fmt: skip
            raise InvalidRecord(f"the label is not signed with kafka.labels_key (header {HEADER!r})")
        return Label.from_json(raw, settings.limits)

    @app.task  # type: ignore[untyped-decorator]
    async def resume() -> None:
        """A job that was running when the trainer stopped is started again."""
        interrupted = state.get(RUNNING)
        if interrupted is not None:
            log.warning("resuming the training job interrupted earlier (%s)", interrupted)
            await runner.request(interrupted)

    @app.agent(declared[topics.LABELS], name="bizstream.trainer.labels")
    async def collect(stream: faust.StreamT[bytes]) -> None:
        """Store labels (idempotent per post and labeler) and count the new ones."""
        async for event in stream.events():
            label = await decode_or_dead_letter(event, lambda raw: verified(raw, event.headers), deadletter)
            if label is None:
                continue
            row = label_row(label)
            if row is None:
                log.debug("label of post %s has no text (an image-only post?): the monitor uses it, but there is nothing "
                          "for a text model to learn from", label.post_id)  # fmt: skip
                seen["textless"] += 1
                continue
            if isinstance(row, Label):  # taken back by its labeler (undo after it was sent)
                seen["retracted"] += 1
                gone = store.retract(row.post_id, row.labeler, row.labeled_at)
                log.info("label of post %s by %s retracted (%s)", row.post_id, row.labeler,
                         f"{gone} forgotten" if gone else "not in this store: a labeler sharing it took it back already")  # fmt: skip
                continue
            try:
                store.add([row])
            except sqlite3.IntegrityError as exc:  # the store refuses this label: recorded, and the agent goes on
                await dead_letter_or_exit(deadletter, event, "store", exc)
                continue
            except Exception:  # the store itself fails (disk, lock): do not commit past this label
                exit_uncommitted(f"could not store the label at {event.message.topic}:{event.message.partition}@{event.message.offset}")
            seen["stored"] += 1
            mode = due(settings, store, state)
            if mode is not None and not runner.busy:
                await runner.request("labels", mode)

    def status() -> str | None:
        if not any(seen.values()):
            return None
        waiting = store.count_since(int(state.get(LAST_TRAINED, "0") or 0))
        return (f"{seen['stored']} labels received, {seen['textless']} without text passed over (image-only posts: "
                f"nothing for a text model), {seen['retracted']} retracted"
                + (f", {seen['unsigned']} dead-lettered as not signed with kafka.labels_key (is it set where they were labelled?)"
                   if seen["unsigned"] else "")
                + f"; {waiting} new since the last training job"
                + ("; a training job is running" if runner.busy else
                   f" (the next starts at trainer.retrain_after={settings.trainer.retrain_after}, or on drift)"))  # fmt: skip

    status_line(app, status)

    @app.agent(declared[topics.POSTS], name="bizstream.trainer.posts")
    async def pool(stream: faust.StreamT[bytes]) -> None:
        """Remember recent posts' texts: the unlabelled pool pseudo-labels come from. Bad posts are the worker's
        to dead-letter; here they are only skipped."""
        if not (settings.trainer.pseudo_labels and settings.trainer.recent_posts):
            async for _ in stream:  # drain: the agent must consume its topic
                pass
        batches = cast(faust.Stream[bytes], stream).take(500, within=1.0)
        async for values in batches:
            posts = []
            for raw in values:
                try:
                    post = Post.from_json(raw, settings.limits)
                except InvalidRecord:
                    continue
                if post.text.strip():
                    posts.append((post.id, post.text))
            recent.remember(posts, keep=settings.trainer.recent_posts)

    @app.agent(declared[topics.DRIFT], name="bizstream.trainer.drift")
    async def on_drift(stream: faust.StreamT[bytes]) -> None:
        """Retrain when the drift monitor says an analyzer's error changed."""
        async for event in stream.events():
            drift = await decode_or_dead_letter(event, DriftEvent.from_json, deadletter)
            if drift is not None and settings.trainer.retrain_on_drift:
                log.warning("drift on %s (%s): retraining", drift.analyzer, drift.model_version)
                await runner.request("drift")

    return app
