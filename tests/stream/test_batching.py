"""The worker's batch sizes (issue 15): up to worker.batch_size, and no more than the pipeline scores in about
worker.batch_target_s; and its producer batches, partitioned as Kafka's default partitioner does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from bizstream.scoring import BatchSizer
from bizstream.stream.worker import _Packer


def test_fast_pipelines_get_the_ceiling_and_slow_ones_what_fits_the_target() -> None:
    fast = BatchSizer(ceiling=2048, target_s=1.0)
    assert fast.size == BatchSizer.FIRST  # nothing measured yet: a small first batch
    fast.observe(32, 32 * 0.0001)  # 0.1 ms a post (VADER): 10,000 would fit, the ceiling holds
    assert fast.size == 2048
    slow = BatchSizer(ceiling=2048, target_s=1.0)
    slow.observe(32, 32 * 0.05)  # 50 ms a post (a transformer on the CPU): 20 posts a second
    assert slow.size == 20
    for _ in range(20):  # it got faster (exported to ONNX): the size follows the moving average
        slow.observe(20, 20 * 0.005)
    assert 190 <= slow.size <= 200
    slow.observe(0, 5.0)  # an empty batch says nothing
    assert 190 <= slow.size <= 200
    stuck = BatchSizer(ceiling=2048, target_s=1.0)
    stuck.observe(1, 30.0)  # slower than the target even for one post: still one at a time
    assert stuck.size == 1


class _Builder:
    """Stands in for aiokafka's BatchBuilder: holds up to ``room`` records."""

    def __init__(self, room: int) -> None:
        self.room, self.records = room, []  # type: ignore[var-annotated]
        self.is_closed = False

    def close(self) -> None:
        self.is_closed = True

    def append(self, *, timestamp: float | None, key: bytes | None, value: bytes) -> object | None:
        if len(self.records) >= self.room or len(value) > 100:
            return None
        self.records.append((key, value))
        return object()


class _Producer:
    def create_batch(self) -> _Builder:
        return _Builder(room=3)


def test_records_go_to_the_default_partitioners_partition_in_batches_that_fit() -> None:
    partitions = [0, 1, 2, 3]
    packer = _Packer(_Producer(), {"scores": partitions})  # type: ignore[arg-type]
    keys = [f"thread-{i}".encode() for i in range(40)]
    for key in keys:
        packer.add("scores", key, b"v")
    packer.add("scores", b"big", b"x" * 200)  # too big for a batch of its own: sent on its own
    placed = {key: partition for (topic, partition), builder in packer.batches() for key, _ in builder.records}
    assert placed == {key: DefaultPartitioner()(key, partitions, partitions) for key in keys}
    assert all(len(builder.records) <= 3 for _, builder in packer.batches())
    assert sum(len(builder.records) for _, builder in packer.batches()) == 40
    assert packer.oversize == [("scores", b"big", b"x" * 200)]
    # Handed over closed: an open batch would wait producer_linger_ms in the producer for records that never come.
    assert all(builder.is_closed for _, builder in packer.batches())
