"""Models travel over Kafka (issue 15, item 3): a trainer and workers with disjoint cache folders — three machines
as far as files go — and the promotions, a rollback and a corrupted chunk reach the workers through the broker only."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.records import ModelEvent
from bizstream.settings import Settings
from bizstream.stream import models, topics
from bizstream.stream.models import publish_decision
from bizstream.stream.signing import sign
from bizstream_plugins.setfit.training import refit_head
from tests.conftest import ROOT
from tests.integration.conftest import Cluster, post_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "a-shared-secret-of-the-cluster"


def announce(settings: Settings, version: str, why: str) -> ModelEvent:
    return asyncio.run(publish_decision(settings, ModelEvent("setfit", version, {}, "manual", True, why)))


def interleave(monkeypatch: pytest.MonkeyPatch, meanwhile: Coroutine[Any, Any, ModelEvent]) -> Callable[[], int]:
    """Make a race happen: the next publish_decision runs ``meanwhile`` (another writer's whole decision) right after
    its first read of the latest decisions. Returns how many reads it made so far."""
    real = models.latest_events
    calls = []

    async def interleaved(settings: Settings) -> dict[str, ModelEvent]:
        found = await real(settings)
        calls.append(settings)
        if len(calls) == 1:
            monkeypatch.setattr(models, "latest_events", real)
            await meanwhile
            monkeypatch.setattr(models, "latest_events", interleaved)
        return found

    monkeypatch.setattr(models, "latest_events", interleaved)
    return lambda: len(calls)


def setfit_versions(cluster: Cluster, ids: set[str]) -> dict[str, tuple[str, dict[str, object] | None]]:
    """post id -> (the SetFit version that scored it, its details), for the given posts."""
    found = {}
    for m in cluster.read(topics.SCORES, timeout_s=2):
        score = orjson.loads(m.value)
        if score["post_id"] in ids:
            setfit = score["analyzers"]["setfit"]
            found[score["post_id"]] = (setfit["model_version"], setfit["details"])
    return found


def scored_by(cluster: Cluster, first: int, n: int, version: str, timeout_s: float = 120) -> dict[str, tuple[str, dict[str, object] | None]]:
    """Produce n posts from p<first> on, again and again (the swap happens between batches), until every one is
    scored and the latest by ``version``."""
    ids: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        ids |= {f"p{i}" for i in range(first, first + n)}
        cluster.produce(topics.POSTS, (post_bytes(i) for i in range(first, first + n)))
        time.sleep(1)
        found = setfit_versions(cluster, ids)
        last = f"p{first + n - 1}"
        if ids <= set(found) and found[last][0] == version:
            return {**found, "last": found[last]}
        assert time.monotonic() < deadline, f"posts not all scored by {version}: {set(v for v, _ in found.values())}"
        first += n


def test_promotions_and_a_rollback_reach_workers_that_share_no_disk(
    cluster: Cluster, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path
) -> None:
    shared, first, split = trained
    trainer = ModelRegistry(tmp_path / "trainer-machine" / "setfit")
    trainer.import_from(shared)
    trainer.promote(first.version)
    # Every machine shares the signing key: every decision below is signed, and only signed ones are installed.
    on_trainer = cluster.settings.replace(setfit={"registry": str(trainer.root)}, kafka={"models_key": KEY})
    announced_first = announce(on_trainer, first.version, "the first model")
    machine = {"BIZSTREAM_SETFIT__RUNTIME": "torch", "BIZSTREAM_WORKER__BATCH_SIZE": "20", "BIZSTREAM_KAFKA__MODELS_KEY": KEY}

    a = cluster.start_worker(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "machine-a"), **machine)
    scored_by(cluster, 0, 20, first.version)  # a worker with an empty cache serves what serves now

    second = refit_head(trainer, split, parent=first.version)
    trainer.promote(second.version)
    published = announce(on_trainer, second.version, "a head refit")
    assert {f["path"].split("/")[0] for f in published.artifacts["files"]} == {"versions", "bodies"}
    # The first version's own files (its head, its metadata) are carried by no latest decision now: their chunks get
    # tombstones, so compaction can drop them; the body both share keeps its chunks.
    files = {f["sha256"]: f for f in announced_first.artifacts["files"]}
    gone = set(files) - {f["sha256"] for f in published.artifacts["files"]}
    assert gone and all(files[sha]["path"].startswith("versions/") for sha in gone)
    tombstones = {m.key for m in cluster.read(topics.ARTIFACTS, timeout_s=3) if m.value is None}
    assert tombstones == {f"{sha}:{i}".encode() for sha in gone for i in range(len(files[sha]["chunks"]))}
    scored_by(cluster, 1000, 20, second.version)  # the running worker swapped, with nothing but Kafka between them

    a.terminate()
    a.wait(timeout=60)
    cluster.start_worker(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "machine-b"), **machine)
    scored_by(cluster, 2000, 20, second.version)  # started afterwards: it serves the version serving now
    assert ModelRegistry(tmp_path / "machine-b" / "models" / "setfit").serving() == second.version

    trainer.rollback()
    announce(on_trainer, first.version, "rolled back")
    scored_by(cluster, 3000, 20, first.version)

    # A labeler on a machine of its own asks what serves now, not the starter, which posts to show.
    labeler = subprocess.run([sys.executable, "-m", "bizstream", "label"], input=b"q", capture_output=True, cwd=ROOT, timeout=120,
                             env=cluster.env(BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "machine-c"), BIZSTREAM_KAFKA__MODELS_KEY=KEY))  # fmt: skip
    assert f"setfit: {first.version} serves here now".encode() in labeler.stderr, labeler.stderr
    assert ModelRegistry(tmp_path / "machine-c" / "models" / "setfit").serving() == first.version

    # A corrupted chunk: the worker refuses the version, keeps serving the old one, and says so in every Score.
    third = refit_head(trainer, split, parent=first.version)
    trainer.promote(third.version)
    manifest = trainer.manifest(third.version)
    asyncio.run(upload(cluster.settings, trainer, manifest, corrupt=f"versions/{third.version}/head.safetensors"))
    bad = ModelEvent("setfit", third.version, {}, "manual", True, "corrupted on the way", serving=third.version, artifacts=manifest)
    asyncio.run(send_decision(cluster.settings, bad, KEY))
    deadline = time.monotonic() + 60
    while "refused" not in (cluster.workdir / "worker-1.log").read_text():
        assert time.monotonic() < deadline, "the corrupted version was not refused"
        time.sleep(0.5)
    found = scored_by(cluster, 4000, 20, first.version)
    version, details = found["last"]
    assert version == first.version and details is not None and third.version in str(details["model_refused"])
    assert ModelRegistry(tmp_path / "machine-b" / "models" / "setfit").serving() == first.version
    assert "does not match its checksum" in (cluster.workdir / "worker-1.log").read_text()

    # A forged decision: whole, every checksum right (the second version's files are on the artifacts topic), but not
    # signed with the key. Refused, whoever could write to the topic.
    forged = ModelEvent("setfit", second.version, {}, "manual", True, "forged", serving=second.version, artifacts=published.artifacts)
    asyncio.run(send_decision(cluster.settings, forged, None))
    deadline = time.monotonic() + 60
    while "the decision is not signed with kafka.models_key" not in (cluster.workdir / "worker-1.log").read_text():
        assert time.monotonic() < deadline, "the unsigned decision was not refused"
        time.sleep(0.5)
    version, details = scored_by(cluster, 5000, 20, first.version)["last"]
    assert details is not None and "not signed with kafka.models_key" in str(details["model_refused"])
    assert ModelRegistry(tmp_path / "machine-b" / "models" / "setfit").serving() == first.version


async def send_decision(settings: Settings, event: ModelEvent, key: str | None) -> None:
    """Put a decision on the models topic as it is, signed with ``key`` (None: unsigned, as a forger would)."""
    value = event.to_json()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await (await producer.send(topics.MODELS, value, key=event.analyzer.encode(), headers=sign(key or "", value)))
    finally:
        await producer.stop()


async def upload(settings: Settings, registry: ModelRegistry, manifest: dict[str, object], corrupt: str) -> None:
    """Put a manifest's files on the artifacts topic as the publisher does, with one byte of one file flipped."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for entry in manifest["files"]:  # type: ignore[attr-defined]
            data = bytearray((registry.root / entry["path"]).read_bytes())
            if entry["path"] == corrupt:
                data[len(data) // 2] ^= 0xFF
            chunks = []
            for i, at in enumerate(range(0, max(len(data), 1), 512 * 1024)):
                sent = await (await producer.send(topics.ARTIFACTS, bytes(data[at : at + 512 * 1024]), key=f"{entry['sha256']}:{i}".encode()))
                chunks.append([sent.partition, sent.offset])
            entry["chunks"] = chunks
    finally:
        await producer.stop()


def test_a_file_another_writer_deletes_meanwhile_is_sent_again(
    cluster: Cluster, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    shared, first, split = trained
    here, there = ModelRegistry(tmp_path / "here" / "setfit"), ModelRegistry(tmp_path / "there" / "setfit")
    here.import_from(shared)
    here.promote(first.version)
    second = refit_head(here, split, parent=first.version)
    there.import_from(here)
    there.promote(second.version)
    on_here = cluster.settings.replace(setfit={"registry": str(here.root)})
    on_there = cluster.settings.replace(setfit={"registry": str(there.root)})
    announce(on_here, first.version, "the first model")

    # The race, made to happen: someone here re-announces the first version and reads what the latest decisions
    # carry (the first version's head among them, so it will refer to it rather than send it); before it sends its
    # decision, a trainer there promotes the second, and tombstones the first version's head, which no latest
    # decision carries any more. Then the decision from here lands last.
    interleave(monkeypatch, publish_decision(on_there, ModelEvent("setfit", second.version, {}, "labels", True, "a head refit")))
    published = asyncio.run(publish_decision(on_here, ModelEvent("setfit", first.version, {}, "manual", True, "rolled back")))
    assert published.serving == first.version

    # What compaction keeps of each chunk is the key's last record: every chunk the decision names must be it.
    last = {m.key: (m.partition, m.offset, m.value is None) for m in cluster.read(topics.ARTIFACTS, timeout_s=3)}
    for entry in published.artifacts["files"]:
        for i, (partition, offset) in enumerate(entry["chunks"]):
            assert last[f"{entry['sha256']}:{i}".encode()] == (partition, offset, False), entry["path"]
    assert models.catch_up(cluster.settings.replace(broker={"cache_dir": str(tmp_path / "elsewhere")})) == {"setfit": first.version}


def test_a_decision_superseded_before_its_writer_looked_again_leaves_no_files_behind(
    cluster: Cluster, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    shared, first, split = trained
    here, there = ModelRegistry(tmp_path / "here" / "setfit"), ModelRegistry(tmp_path / "there" / "setfit")
    for registry in (here, there):
        registry.import_from(shared)
        registry.promote(first.version)
    on_here = cluster.settings.replace(setfit={"registry": str(here.root)})
    on_there = cluster.settings.replace(setfit={"registry": str(there.root)})
    announce(on_there, first.version, "the first model")
    second = refit_head(there, split, parent=first.version)
    there.promote(second.version)
    fewer = Split(split.train_texts[:-6], split.train_labels[:-6], split.test_texts, split.test_labels)
    third = refit_head(here, fewer, parent=first.version)
    here.promote(third.version)

    # The race, made to happen: a trainer there reads what the latest decisions carry; meanwhile a writer here
    # announces a third version with a head of its own, and finds it still the latest when it looks again; then the
    # decision from there lands and supersedes it. No latest decision carries the third version's head any more:
    # its chunks must get tombstones, or the compacted topic keeps them for ever.
    calls = interleave(monkeypatch, publish_decision(on_here, ModelEvent("setfit", third.version, {}, "labels", True, "a head refit here")))
    published = asyncio.run(publish_decision(on_there, ModelEvent("setfit", second.version, {}, "labels", True, "a head refit there")))
    assert published.serving == second.version and calls() >= 1  # the race happened

    only_third = {f["sha256"] for f in here.manifest(third.version)["files"]} - {f["sha256"] for f in published.artifacts["files"]}
    assert only_third  # its head, at least
    last = {m.key: m.value is None for m in cluster.read(topics.ARTIFACTS, timeout_s=3)}
    chunks = {key: gone for key, gone in last.items() if (key or b"").decode().split(":")[0] in only_third}
    assert chunks and all(chunks.values()), chunks
    assert models.catch_up(cluster.settings.replace(broker={"cache_dir": str(tmp_path / "elsewhere")})) == {"setfit": second.version}
