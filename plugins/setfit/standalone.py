"""Train a SetFit model away from the stream, e.g. on a rented GPU box, and bring back a registry folder.

On the box (a fresh clone, `scripts/install.sh`, the labels file copied over)::

    .venv/bin/python -m bizstream_plugins.setfit.standalone --labels labels.jsonl --out registry \\
        --profile seed --device cuda --body sentence-transformers/paraphrase-mpnet-base-v2

Back home::

    .venv/bin/bizstream labels export labels.jsonl        # before: what to send
    .venv/bin/bizstream models import registry --promote   # after: what came back

It needs no broker and no bizstream settings; the labels file is what ``bizstream labels export`` writes (or any
CSV / JSON lines that ``bizstream labels import`` accepts).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bizstream.learning.dataset import Split
from bizstream.learning.embeddings import default_body
from bizstream.learning.registry import ModelRegistry
from bizstream.store.label_files import read_label_file
from bizstream.store.labels import LabelStore
from bizstream_plugins.setfit.training import PROFILES, train_full


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, print the new version's metadata as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bizstream_plugins.setfit.standalone", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--labels", type=Path, required=True, help="labels file (JSON lines or CSV)")
    parser.add_argument("--out", type=Path, required=True, help="registry folder to write (created if missing)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="seed")
    parser.add_argument("--body", default="", help="a folder, or a hub id in the local cache (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-seq-length", type=int, default=128)
    args = parser.parse_args(argv)

    report = read_label_file(args.labels)
    for line, message in report.errors:
        print(f"{args.labels}:{line}: {message}", file=sys.stderr)
    if (skipped := report.skipped()) is not None:
        print(skipped, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bizstream-train-") as scratch:  # the split comes from a label store
        store = LabelStore(Path(scratch) / "labels.sqlite")
        store.add(report.rows)
        split = Split.from_dataset(store.dataset(seed=args.seed))
        store.close()
    registry = ModelRegistry(args.out)
    metadata = train_full(
        registry, split, args.body or str(default_body()),
        PROFILES[args.profile], seed=args.seed, max_seq_length=args.max_seq_length, device=args.device,
    )  # fmt: skip
    registry.promote(metadata.version)
    print(json.dumps({"version": metadata.version, "metrics": metadata.metrics, "registry": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
