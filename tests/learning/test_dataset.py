"""The evaluation holdout: decided by post id alone, about the configured share, never on the training side."""

from __future__ import annotations

import pytest

from bizstream.learning.dataset import Split, in_holdout
from bizstream.store.labels import LabelRow


def test_membership_is_stable_and_about_the_share() -> None:
    ids = [f"post-{i}" for i in range(5000)]
    chosen = {i for i in ids if in_holdout(i, 0.2)}
    assert 0.18 < len(chosen) / len(ids) < 0.22
    assert chosen == {i for i in ids if in_holdout(i, 0.2)}  # the same posts every time, in every process
    assert chosen <= {i for i in ids if in_holdout(i, 0.3)}  # a larger share only adds posts


def test_a_split_on_the_holdout_never_trains_on_it() -> None:
    rows = [LabelRow(f"p{i}", f"text {i}", 1 + i % 3, "me") for i in range(200)]
    split = Split.on_holdout(rows, 0.2)
    held = {r.text for r in rows if in_holdout(r.post_id, 0.2)}
    assert set(split.test_texts) == held and not held & set(split.train_texts)
    assert len(split.train_texts) + len(split.test_texts) == len(rows)
    with pytest.raises(ValueError, match="label more posts"):
        Split.on_holdout([r for r in rows if not in_holdout(r.post_id, 0.2)], 0.2)  # nothing left to evaluate on
