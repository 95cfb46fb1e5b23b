from __future__ import annotations

from pathlib import Path

import pytest
from scipy.stats import chisquare

from bizstream.learning.replay import Example, ReplayBuffer


def examples(n: int, start: int = 0) -> list[Example]:
    return [Example(f"p{i}", f"text {i}", 1 + i % 3) for i in range(start, start + n)]


def test_reservoir_is_uniform_over_everything_seen(tmp_path: Path) -> None:
    # 1,500 independent buffers of 10 over streams of 100: each item should be kept 10% of the time.
    counts = [0] * 100
    for seed in range(1500):
        buffer = ReplayBuffer(tmp_path / f"{seed}.sqlite", capacity=10, seed=seed)
        buffer.add_many(examples(100))
        for e in buffer.items():
            counts[int(e.post_id[1:])] += 1
        buffer.close()
    assert sum(counts) == 1500 * 10
    assert chisquare(counts).pvalue > 0.001  # uniform; an early- or late-biased sampler fails this
    early, late = sum(counts[:10]), sum(counts[-10:])
    assert abs(early - late) < 0.2 * (early + late) / 2


def test_bounded_and_restored_after_restart(tmp_path: Path) -> None:
    uninterrupted = ReplayBuffer(tmp_path / "a.sqlite", capacity=50, seed=7)
    uninterrupted.add_many(examples(500))

    first = ReplayBuffer(tmp_path / "b.sqlite", capacity=50, seed=7)
    for e in examples(230):
        first.add(e)
    first.close()  # the trainer stops; a new one opens the same file
    second = ReplayBuffer(tmp_path / "b.sqlite", capacity=50, seed=7)
    assert second.seen == 230 and len(second) == 50
    second.add_many(examples(270, start=230))
    assert len(second) == 50
    assert second.items() == uninterrupted.items()  # exactly as if it had never stopped


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        ReplayBuffer(tmp_path / "x.sqlite", capacity=0)
    ReplayBuffer(tmp_path / "y.sqlite", capacity=5).add_many(examples(3))
    with pytest.raises(ValueError, match="holds a buffer of capacity 5, not 6"):
        ReplayBuffer(tmp_path / "y.sqlite", capacity=6)
