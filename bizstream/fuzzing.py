"""Hostile input for the worker: seeded streams of valid posts mixed with every malformed kind a scraper (or an
attacker) can send. Used by the CI fuzz test (tests/integration/test_fuzz.py) and its longer benchmark twin
(bench/fuzz.py); both assert that every message is scored or dead-lettered with its exact bytes, once per offset.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from bizstream.errors import InvalidRecord
from bizstream.records import Post
from bizstream.settings import LimitSettings

Record = tuple[bytes | None, bytes]  # (key, value) as produced
OVERSIZE_BYTES = 300_000  # run the worker with limits.max_message_bytes below this (the broker takes up to ~1 MB)

WORDS = ["moon", "rekt", "wagmi", "ngmi", "pump", "dump", "bags", "hodl", "scam", "lambo", "fud", "$BTC", "$ETH", "not"]


def _text(rnd: random.Random, words: int = 8) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(words))


def valid(rnd: random.Random, i: int) -> bytes:
    """A valid text post."""
    return orjson.dumps({"id": f"ok-{i}", "thread_id": f"t{i % 17}", "text": _text(rnd)})


def _nested(depth: int) -> bytes:
    return b'{"id": "deep", "text": "x", "meta": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds none (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


MALFORMED: dict[str, Callable[[random.Random, int], bytes]] = {
    "invalid json": lambda r, i: b"{not json " + str(i).encode(),
    "truncated": lambda r, i: valid(r, i)[: r.randint(1, 20)],
    "array": lambda r, i: b"[1, 2, 3]",
    "null": lambda r, i: b"null",
    "number": lambda r, i: str(r.random()).encode(),
    "string": lambda r, i: b'"just a string"',
    "empty": lambda r, i: b"",
    "text not a string": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": r.choice([123, ["moon"], {"a": 1}, True])}),
    "id not a string": lambda r, i: orjson.dumps({"id": r.choice([{"a": 1}, [1], True, 1.5]), "text": "moon"}),
    "missing id": lambda r, i: orjson.dumps({"text": _text(r)}),
    "missing text": lambda r, i: orjson.dumps({"id": f"bad-{i}"}),
    "empty text, no image": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "   "}),
    "many extra fields (kept in meta)": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "x", **{f"f{k}": k for k in range(r.randint(1, 600))}}),
    "oversize text": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "moon " * 2_500}),
    "oversize message": lambda r, i: b'{"id": "big", "text": "' + b"a" * OVERSIZE_BYTES + b'"}',
    "invalid utf-8": lambda r, i: b'{"id": "u' + str(i).encode() + b'", "text": "\xff\xfe moon"}',
    "deep nesting": lambda r, i: _nested(10_000),
    "nan": lambda r, i: b'{"id": "n' + str(i).encode() + b'", "text": "x", "created_at": NaN}',
    "infinity": lambda r, i: b'{"id": "n' + str(i).encode() + b'", "text": "x", "created_at": Infinity}',
    "huge number id": lambda r, i: b'{"id": 123456789012345678901234567890' + str(i).encode() + b', "text": "moon"}',
    "huge created_at": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "x", "created_at": 1e300}),
    "bad base64": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "", "image": {"data": "!!!not base64!!!", "mime": "image/png"}}),
    "absurd image size": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "",
                                                    "image": {"data": base64.b64encode(_png_header(100_000, 100_000)).decode(), "mime": "image/png"}}),  # fmt: skip
    "not an image": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "", "image": {"data": base64.b64encode(b"GIF89a junk").decode(), "mime": "image/gif"}}),
    "path traversal": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "", "image": {"path": "../../../../etc/passwd"}}),
    "image url not http": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "", "image": {"url": "file:///etc/passwd"}}),
    "image-only, no image analyzer": lambda r, i: orjson.dumps({"id": f"img-{i}", "text": "", "image": {"url": "https://example.com/a.png"}}),
    "two image sources": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "x", "image": {"url": "https://e.com/a.png", "path": "a.png"}}),
    "meta not an object": lambda r, i: orjson.dumps({"id": f"bad-{i}", "text": "x", "meta": [1, 2]}),
}


@dataclass(frozen=True)
class Stream:
    """What was produced: records in order, and which kind each is (``valid``, ``duplicate id`` or a MALFORMED kind)."""

    records: list[Record]
    kinds: list[str]


def hostile_stream(valid_posts: int, malformed: int, seed: int = 0) -> Stream:
    """``valid_posts`` valid posts, ``malformed`` malformed messages of every kind in turn, and pairs of messages that
    share a post id (the first scorable, the second not), shuffled with ``seed``; keys are thread ids, random bytes,
    or absent."""
    rnd = random.Random(seed)
    items: list[tuple[str, bytes]] = [("valid", valid(rnd, i)) for i in range(valid_posts)]
    kinds = sorted(MALFORMED)
    items += [(kinds[i % len(kinds)], MALFORMED[kinds[i % len(kinds)]](rnd, i)) for i in range(malformed)]
    for i in range(max(1, valid_posts // 50)):
        items.append(("duplicate id", orjson.dumps({"id": f"dup-{i}", "text": _text(rnd)})))
        items.append(("duplicate id", orjson.dumps({"id": f"dup-{i}", "text": "", "image": {"url": "https://e.com/x.png"}})))
    rnd.shuffle(items)
    keys: list[bytes | None] = [rnd.choice([b"thread", bytes(rnd.randrange(256) for _ in range(8)), None]) for _ in items]
    return Stream([(key, value) for key, (_, value) in zip(keys, items, strict=True)], [kind for kind, _ in items])


def chunks(records: list[Record], size: int) -> Iterator[list[Record]]:
    """The records in slices of ``size`` (to produce a long stream in parts)."""
    for start in range(0, len(records), size):
        yield records[start : start + size]


@dataclass(frozen=True)
class Accounting:
    """What became of every produced message: counts, and anything that is not exactly right."""

    messages: int
    scored: int
    dead_lettered: int
    problems: list[str]  # empty when every message is scored or dead-lettered with its own bytes, once

    def as_dict(self) -> dict[str, object]:
        """For JSON reports."""
        return {"messages": self.messages, "scored": self.scored, "dead_lettered": self.dead_lettered,
                "lost_or_duplicated": self.messages - self.scored - self.dead_lettered, "problems": self.problems[:20],
                "problem_count": len(self.problems)}  # fmt: skip


def account(produced: dict[tuple[int, int], bytes], scores: list[bytes], letters: list[bytes], scorable: Callable[[bytes], str | None]) -> Accounting:
    """Check the worker's output against what was produced (``(partition, offset) -> bytes``): a Score for every
    message ``scorable`` gives a post id (as many per id as there were such messages), and for every other message
    exactly one dead letter from its own offset carrying its exact bytes."""
    from collections import Counter

    problems: list[str] = []
    should_score = Counter(i for i in map(scorable, produced.values()) if i is not None)
    got = Counter(orjson.loads(s)["post_id"] for s in scores)
    if got != should_score:
        problems.append(f"scores differ from the scorable messages: missing {dict(should_score - got)}, extra {dict(got - should_score)}")
    seen: set[tuple[int, int]] = set()
    for letter in letters:
        body = orjson.loads(letter)
        where = (body["partition"], body["offset"])
        if where in seen:
            problems.append(f"two dead letters for offset {where}")
        seen.add(where)
        if base64.b64decode(body["raw"]) != produced.get(where):
            problems.append(f"the dead letter for {where} does not carry that message's bytes")
        elif scorable(produced[where]) is not None:
            problems.append(f"a scorable message at {where} was dead-lettered: {body['message'][:100]}")
    unaccounted = [w for w, raw in produced.items() if scorable(raw) is None and w not in seen]
    problems += [f"no dead letter for the unscorable message at {w}" for w in unaccounted]
    return Accounting(len(produced), len(scores), len(letters), problems)


def text_scorable(limits: LimitSettings) -> Callable[[bytes], str | None]:
    """For a worker whose analyzers read text only (VADER): the post id of a message it must score, else None."""

    def post_id(raw: bytes) -> str | None:
        try:
            post = Post.from_json(raw, limits)
        except InvalidRecord:
            return None
        return post.id if post.text.strip() else None

    return post_id
