"""Reading label files (CSV or JSON lines) for ``bizstream labels import``: each good row becomes a LabelRow, each bad
one is reported by its line number with why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bizstream.files import BOM, csv_records, text_id
from bizstream.records import Sentiment
from bizstream.store.labels import LabelRow


class NoText(ValueError):
    """A good label of a post that has no text (an image-only post): nothing a text model can learn from."""


@dataclass(frozen=True)
class LabelFile:
    """The rows of a label file that can be imported, for each bad row its line number and why, and the line numbers
    of labels of posts without text (valid, but not training material: skipped, not errors)."""

    rows: list[LabelRow]
    errors: list[tuple[int, str]]
    without_text: list[int]

    def skipped(self) -> str | None:
        """One line on the labels passed over, or None when there were none."""
        if not self.without_text:
            return None
        lines = ", ".join(str(n) for n in self.without_text[:5]) + (", ..." if len(self.without_text) > 5 else "")
        return (f"skipped {len(self.without_text)} labels of posts with no text (image-only posts; line {lines}): a text "
                "model has nothing to learn from them")  # fmt: skip


def read_label_file(path: Path, labeler: str = "import") -> LabelFile:
    """CSV (by extension) or JSON lines: `text` plus `label` (bearish/neutral/bullish) or `rating` (1..3). A row with a
    `post_id` and an empty `text` is an image-only post's label: counted in ``without_text``, not imported."""
    rows: list[LabelRow] = []
    errors: list[tuple[int, str]] = []
    without_text: list[int] = []
    for line, record in _records(path):
        try:
            rows.append(_row(record, labeler))
        except NoText:
            without_text.append(line)
        except ValueError as exc:
            errors.append((line, str(exc)))
    return LabelFile(rows, errors, without_text)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        yield from csv_records(path, "text", ("label", "rating"), what="label CSV")
        return
    for number, line in enumerate(path.read_bytes().removeprefix(BOM).splitlines(), start=1):  # orjson checks UTF-8
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, {"__error__": f"not valid JSON: {exc}"}
            continue
        yield number, record if isinstance(record, dict) else {"__error__": "not a JSON object"}


def _row(record: dict[str, Any], labeler: str) -> LabelRow:
    if "__error__" in record:
        raise ValueError(record["__error__"])
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        if text in (None, "") and (record.get("post_id") or record.get("id")):
            _rating(record)  # a bad rating is still an error
            raise NoText()
        raise ValueError("'text' must be a non-empty string")
    rating = _rating(record)
    post_id = record.get("post_id") or record.get("id") or text_id(text)
    source = record.get("source") or "human"
    if source not in ("human", "pseudo"):
        raise ValueError(f"'source' must be human or pseudo, got {source!r}")
    return LabelRow(
        post_id=str(post_id),
        text=text,
        rating=rating,
        labeler=str(record.get("labeler") or labeler),
        thread_id=str(record["thread_id"]) if record.get("thread_id") else None,
        source=source,
    )


def _rating(record: dict[str, Any]) -> int:
    label, rating = record.get("label"), record.get("rating")
    if label not in (None, ""):
        try:
            return Sentiment(str(label).strip().lower()).rating
        except ValueError:
            raise ValueError(f"'label' must be bearish, neutral or bullish, got {label!r}") from None
    if rating not in (None, ""):
        try:
            value = int(rating)
        except (TypeError, ValueError):
            raise ValueError(f"'rating' must be 1, 2 or 3, got {rating!r}") from None
        if value not in (1, 2, 3):
            raise ValueError(f"'rating' must be 1, 2 or 3, got {rating!r}")
        return value
    raise ValueError("needs a 'label' (bearish/neutral/bullish) or a 'rating' (1..3)")
