"""The worker as it was before issue 15, kept only so bench/throughput.py can run it beside today's in one run: a
faust agent that takes up to worker.batch_size events (or what came within worker.batch_timeout_s), scores them
with the same pipeline, sends each Score, and waits for all of them before taking the next batch.

    .venv/bin/python bench/faust_worker.py     (settings from the environment, as for `bizstream worker`)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, cast

import faust

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.cli.app import run_faust  # noqa: E402
from bizstream.plugins import load_pipeline  # noqa: E402
from bizstream.scoring import Message, score_messages  # noqa: E402
from bizstream.settings import load_settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.apps import new_app  # noqa: E402


def main() -> None:
    settings = load_settings(None)
    pipeline = load_pipeline(settings)
    app, declared = new_app(settings, settings.worker.app_id)
    scores = declared[topics.SCORES]

    @app.agent(declared[topics.POSTS], name="bench.faust-worker")
    async def score_posts(stream: faust.StreamT[bytes]) -> None:
        loop = asyncio.get_running_loop()
        async for events in cast(faust.Stream[bytes], stream).take_events(settings.worker.batch_size, within=settings.worker.batch_timeout_s):
            messages = [Message(bytes(e.message.value or b""), None, e.message.topic, e.message.partition, e.message.offset) for e in events]
            handled = await loop.run_in_executor(None, score_messages, pipeline, messages, settings.limits)
            pending: list[Any] = [await scores.send(key=s.thread_id.encode(), value=s.to_json(), force=True) for s in handled.scores]
            await asyncio.gather(*pending)

    run_faust(app, "warning", settings)


if __name__ == "__main__":
    main()
