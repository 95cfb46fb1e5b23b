"""ADWIN on seeded synthetic error streams: detection delay after abrupt and gradual changes, false alarms.

    .venv/bin/python bench/drift.py [--seeds 20] [--delta 0.002]

Each stream is 0/1 errors at a base rate, then (after 5,000 labels) a higher rate, reached at once (abrupt) or
linearly over 500 labels (gradual). Delay = labels from the change to the first detection. False alarms are
counted on 20,000-label streams with no change, per 10,000 labels. Uses bizstream.learning.drift.ErrorMonitor,
the same code the drift monitor runs. Prints JSON. Targets: a 15-point jump caught within 300 labels, 0 false
alarms over 20,000 stationary labels.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bizstream.learning.drift import ErrorMonitor  # noqa: E402

CHANGE_AT = 5000
AFTER = 3000


def first_detection(rates: list[float], seed: int, delta: float, clock: int) -> list[int]:
    rnd = random.Random(seed)
    monitor = ErrorMonitor("bench", delta=delta, min_labels=0, clock=clock)
    return [i for i, p in enumerate(rates) if monitor.update(rnd.random() < p, 0.0, "-") is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--delta", type=float, default=0.002)
    parser.add_argument("--clock", type=int, default=32, help="ADWIN checks for a change every CLOCK labels")
    args = parser.parse_args()

    changes = []
    for base in (0.1, 0.2, 0.3):
        for jump in (0.05, 0.10, 0.15, 0.20, 0.30):
            for kind in ("abrupt", "gradual"):
                delays, missed, early = [], 0, 0
                for seed in range(args.seeds):
                    ramp = 1 if kind == "abrupt" else 500
                    rates = [base] * CHANGE_AT + [base + jump * min(1.0, (i + 1) / ramp) for i in range(AFTER)]
                    hits = first_detection(rates, seed, args.delta, args.clock)
                    early += sum(1 for h in hits if h < CHANGE_AT)
                    after = [h for h in hits if h >= CHANGE_AT]
                    if after:
                        delays.append(after[0] - CHANGE_AT)
                    else:
                        missed += 1
                changes.append({
                    "base_error": base, "jump": jump, "kind": kind,
                    "median_delay": statistics.median(delays) if delays else None,
                    "max_delay": max(delays) if delays else None,
                    "missed": missed, "false_alarms_before_change": early, "streams": args.seeds,
                })  # fmt: skip
    stationary = []
    for base in (0.1, 0.2, 0.3):
        alarms = sum(len(first_detection([base] * 20_000, 1000 + seed, args.delta, args.clock)) for seed in range(args.seeds))
        stationary.append({"base_error": base, "labels_per_stream": 20_000, "streams": args.seeds, "false_alarms": alarms,
                           "false_alarms_per_10k_labels": round(alarms / (args.seeds * 2), 3)})  # fmt: skip
    fifteen = [c for c in changes if c["jump"] == 0.15 and c["kind"] == "abrupt"]
    print(orjson.dumps({
        "benchmark": "drift", "detector": f"river ADWIN(delta={args.delta}, clock={args.clock})", "seeds": args.seeds,
        "target_15pt_abrupt_caught_within_300": all(c["missed"] == 0 and (c["max_delay"] or 1e9) <= 300 for c in fifteen),
        "target_0_false_alarms_in_20k_stationary": all(s["false_alarms"] == 0 for s in stationary),
        "changes": changes, "stationary": stationary,
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
