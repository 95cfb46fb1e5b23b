"""Reading posts and labels from files: JSON lines, or CSV (by extension) with a header row.

A CSV is read strictly: a header without the columns it needs, or a quote left open, is one error for the file, not
a reason per row or rows silently merged into one text. A post or label without an id gets one from its text
(:func:`text_id`), the same for both, so labels imported from a CSV join the posts scored from it.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from bizstream.errors import BizstreamError

BOM = "\ufeff".encode()  # what Excel and Notepad may put before UTF-8 text


def text_id(text: str) -> str:
    """The id of a post known only by its text."""
    return "sha1-" + hashlib.sha1(text.encode()).hexdigest()[:16]


def csv_records(path: Path, need: str, one_of: tuple[str, ...] = (), what: str = "CSV") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each row of a CSV that has a ``need`` column and, when given, one of ``one_of``. The
    header is checked at once, before the first row is asked for."""
    stream = path.open(encoding="utf-8-sig", newline="")  # read as it goes; -sig: Excel writes a BOM
    reader = csv.DictReader(stream, strict=True)
    try:
        columns = reader.fieldnames or []
    except (csv.Error, UnicodeDecodeError) as exc:
        stream.close()
        raise _unreadable(path, reader.line_num, exc) from None
    if need not in columns or (one_of and not set(one_of) & set(columns)):
        stream.close()
        wanted = f"a `{need}` column" + (f" and a {' or '.join(f'`{c}`' for c in one_of)} column" if one_of else "")
        raise BizstreamError(f"{path}: a {what} needs {wanted}; its header has {', '.join(repr(c) for c in columns) or 'nothing'}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with stream:
            try:
                for record in reader:
                    yield reader.line_num, record
            except (csv.Error, UnicodeDecodeError) as exc:
                raise _unreadable(path, reader.line_num, exc) from None

    return rows()


def _unreadable(path: Path, line: int, exc: Exception) -> BizstreamError:
    if isinstance(exc, UnicodeDecodeError):
        return BizstreamError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8")
    return BizstreamError(f"{path}:{line}: not valid CSV ({exc}; an unclosed quote?)")


def post_lines(path: Path) -> Iterator[bytes]:
    """One post per item, as the JSON bytes the posts topic carries: the non-empty lines of a JSON-lines file ('-':
    stdin) as they are, or each row of a CSV as an object of its text and its other non-empty cells (a `text` column
    is needed, checked at once; `id` defaults to :func:`text_id`; an `image` cell is a URL or a path; columns a post
    does not have go to its meta)."""
    if str(path) != "-" and path.suffix.lower() == ".csv":
        return (_csv_post(row) for _, row in csv_records(path, "text", what="posts CSV"))
    return _json_lines(path)


def _csv_post(row: dict[str, str]) -> bytes:
    post: dict[str, object] = {k: v for k, v in row.items() if k and (v not in (None, "") or k == "text")}
    if "id" not in post and isinstance(post.get("text"), str):
        post["id"] = text_id(str(post["text"]))
    image = post.get("image")
    if isinstance(image, str):
        post["image"] = {"url": image} if image.startswith(("http://", "https://")) else {"path": image}
    return orjson.dumps(post)


def _json_lines(path: Path) -> Iterator[bytes]:
    stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    with stream:
        for number, line in enumerate(stream):
            line = line.rstrip(b"\r\n")
            if number == 0:
                line = line.removeprefix(BOM)
            if line.strip():
                yield line
