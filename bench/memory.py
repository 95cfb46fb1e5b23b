"""Where a worker's memory goes: a real `bizstream worker` serving the defaults (VADER + the SetFit starter, INT8 ONNX)
after it scored the sample posts, beside the same pipeline in a bare process with and without torch + transformers
imported (which is what serving used to pull in: CryptoBERT's and LLaVA's availability checks imported them even
where they could not run). Prints JSON: resident memory (MiB) of each, the ratios, the heavy modules each imported.

    .venv/bin/python bench/memory.py [--posts data/sample_posts.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local import broker_settings, running, worker  # noqa: E402

from bizstream.stream import topics  # noqa: E402
from bizstream.stream.client import publish, read  # noqa: E402

HEAVY = ["torch", "transformers", "setfit", "sentence_transformers", "sklearn", "pandas", "onnxruntime", "faust"]

# Run in a fresh interpreter: load the default pipeline, score the posts, report RSS (and peak) and heavy modules.
PIPELINE = """
import json, resource, sys
{extra}
from bizstream.plugins import load_pipeline
from bizstream.records import Post
from bizstream.settings import load_settings
import orjson
posts = [orjson.loads(line) for line in open(sys.argv[1], "rb") if line.strip()]
pipeline = load_pipeline(load_settings(None), report=lambda status: None)
for i in range(0, len(posts), 256):
    pipeline.process([Post(id=str(p["id"]), thread_id=str(p.get("thread_id") or p["id"]), text=p["text"]) for p in posts[i:i + 256]])
status = open("/proc/self/status").read()
rss = int(status.split("VmRSS:")[1].split()[0]) / 1024
print(json.dumps({{"rss_mib": round(rss, 1), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "analyzers": [a.name for a in pipeline.analyzers], "imported": [m for m in {heavy} if m in sys.modules]}}))
"""


def in_process(posts: Path, extra: str = "") -> dict[str, object]:
    code = PIPELINE.format(extra=extra, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code, str(posts)], capture_output=True, text=True, cwd=ROOT, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rss_of(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def real_worker(posts: Path) -> dict[str, object]:
    lines = [line for line in posts.read_bytes().splitlines() if line.strip()]
    broker, settings, work = broker_settings("memory")
    with running(broker, settings), worker(settings, work) as process:
        asyncio.run(publish(settings.kafka, topics.POSTS, [(None, line) for line in lines]))

        async def count() -> int:
            return sum([1 async for _ in read(settings.kafka, topics.SCORES, len(lines), timeout_s=300)])

        scored = asyncio.run(count())
        time.sleep(1)
        return {"scored": scored, "of": len(lines), "rss_mib": round(rss_of(process.pid), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=Path, default=ROOT / "data" / "sample_posts.jsonl")
    args = parser.parse_args()
    serving = in_process(args.posts)
    with_torch = in_process(args.posts, extra="import torch, transformers")
    report = {
        "worker": real_worker(args.posts),
        "pipeline": serving,
        "pipeline_with_torch_imported": with_torch,
        "ratio_rss_pipeline_over_with_torch": round(float(serving["rss_mib"]) / float(with_torch["rss_mib"]), 3),  # type: ignore[arg-type]
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
