"""Which coins and stocks a post is about: cashtags, names and aliases from an editable lexicon (config/tickers.toml),
ambiguous words only in crypto context, and a reply that names none inherits what it replies to.

Pure Python and cheap (two compiled regular expressions per post); the worker runs it on every post it scores, and a
Score carries the result (``Score.tickers``). The lexicon's format is documented in config/tickers.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bizstream.errors import ConfigError

CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,5})(?![\w])")
MAX_TICKERS = 10  # per post: a spam post listing 200 cashtags counts for its first ten
MAX_TEXT_CHARS = 20_000  # read at most this much of a post (the limits bound posts anyway)


@dataclass(frozen=True)
class Lexicon:
    """Names (always a mention), ambiguous words (a mention in crypto context) and the context words."""

    names: Mapping[str, str]  # lower-case word or phrase -> ticker
    ambiguous: Mapping[str, str]
    context: frozenset[str]

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        """Read a lexicon file (ConfigError naming the file and the problem)."""
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the ticker lexicon {path}: {exc}") from None
        unknown = set(raw) - {"names", "ambiguous", "context"}
        if unknown:
            raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; expected [names], [ambiguous], [context]")
        return cls(_aliases(path, raw.get("names", {}), "names"), _aliases(path, raw.get("ambiguous", {}), "ambiguous"),
                   frozenset(str(w).lower() for w in raw.get("context", {}).get("words", [])))  # fmt: skip


def _aliases(path: Path, section: Mapping[str, object], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for ticker, words in section.items():
        if not re.fullmatch(r"[A-Z][A-Z0-9]{0,9}", ticker) or not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ConfigError(f"{path} [{name}]: expected TICKER = [\"alias\", ...] with an upper-case ticker, got {ticker} = {words!r}")
        for word in words:
            out[word.strip().lower()] = ticker
    return out


def _words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(words), key=len, reverse=True)  # longest first: "coinbase stock" before "coinbase"
    if not ordered:
        return None
    return re.compile(r"(?<![\w$])(" + "|".join(re.escape(w) for w in ordered) + r")(?![\w])", re.IGNORECASE)


class TickerExtractor:
    """Tickers per post, remembering recent posts' tickers so a reply can inherit them (bounded: ``remember`` posts)."""

    def __init__(self, lexicon: Lexicon, remember: int = 100_000) -> None:
        self.lexicon = lexicon
        self._names = _words_pattern(self.lexicon.names)
        self._ambiguous = _words_pattern(self.lexicon.ambiguous)
        self._context = _words_pattern(self.lexicon.context)
        self.remember = remember
        self._seen: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def mentioned(self, text: str) -> list[str]:
        """The tickers a text names itself, in order of first mention."""
        text = text[:MAX_TEXT_CHARS]
        found: dict[str, None] = {}
        for match in CASHTAG.finditer(text):
            found[match.group(1).upper()] = None
        for match in self._names.finditer(text) if self._names else ():
            found[self.lexicon.names[match.group(1).lower()]] = None
        if self._ambiguous is not None:
            candidates = [self.lexicon.ambiguous[m.group(1).lower()] for m in self._ambiguous.finditer(text)]
            if candidates and (found or (self._context is not None and self._context.search(text))):
                found.update(dict.fromkeys(candidates))
        return list(found)[:MAX_TICKERS]

    def for_post(self, post_id: str, text: str, reply_to: str | None = None, thread_id: str | None = None) -> list[str]:
        """The post's own tickers; for one that names none, those of the post it replies to, else of its thread's
        first post (when either was seen). Remembered for the replies to come."""
        tickers = tuple(self.mentioned(text))
        if not tickers:
            tickers = self._seen.get(reply_to or "", ()) or self._seen.get(thread_id or "", ())
        self._seen[post_id] = tickers
        self._seen.move_to_end(post_id)
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        return list(tickers)
