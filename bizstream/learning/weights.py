"""Where large optional weights come from: a folder, or a hub id already in the local Hugging Face cache — never a
download at run time. Plugins that load such weights (CryptoBERT, LLaVA) load them inside :func:`offline_weights`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bizstream.errors import AnalyzerUnavailable


@contextmanager
def offline_weights(model: str, setting: str) -> Iterator[str]:
    """The source to load ``model`` from (a folder when one exists, else the hub id, for the local cache only); a
    loading error inside the block becomes AnalyzerUnavailable saying what to configure."""
    local = Path(model).expanduser()
    if not local.exists() and not _in_hub_cache(model):  # said before the caller imports torch for nothing
        raise AnalyzerUnavailable(_missing(model, setting, "not in the local Hugging Face cache"))
    try:
        yield str(local) if local.exists() else model
    except (OSError, ValueError) as exc:
        raise AnalyzerUnavailable(_missing(model, setting, type(exc).__name__)) from None


def _missing(model: str, setting: str, why: str) -> str:
    return (f"no weights for {model!r} on this machine ({why}); nothing is downloaded at run time: put the model "
            f"(safetensors) in a folder and point {setting} at it")  # fmt: skip


def _in_hub_cache(model: str) -> bool:
    """Whether the local Hugging Face cache holds a config for hub id ``model`` (no network; no torch import)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a valid hub id either: nothing to find
        return False
