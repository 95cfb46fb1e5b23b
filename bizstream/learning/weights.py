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
    try:
        yield str(local) if local.exists() else model
    except (OSError, ValueError) as exc:
        raise AnalyzerUnavailable(
            f"no weights for {model!r} on this machine ({type(exc).__name__}); nothing is downloaded at run time: "
            f"put the model (safetensors) in a folder and point {setting} at it"
        ) from None
