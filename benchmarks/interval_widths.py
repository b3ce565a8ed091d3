"""What a world size costs in statistical power: the 95 % interval widths of two finished runs.

Not a speed figure. Reads the ``results.jsonl`` of each run directory and prints, per scenario
and metric, the median width (high - low, in points) of the accuracy intervals (distance to
the oracle and general capability too) and of the paired changes against ``before`` over
every state and modality, side by side, with their ratio. Run a
demo on each world size first, for example::

    pulse demo --out runs/demo
    pulse demo --out runs/demo-large --set models.world.size=large
    .venv/bin/python benchmarks/interval_widths.py runs/demo runs/demo-large
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import median

# The accuracies whose intervals a world's size sets (general capability: the dev set's).
METRICS = ("accuracy", "oracle_distance", "circular")
# (row field holding the low end, row field holding the high end, label)
WIDTHS = (("low", "high", "interval"), ("change_low", "change_high", "change vs before"))


def widths(run: Path) -> dict[tuple[str, str, str, str], float]:
    """Median interval width in points per (scenario, split, metric, kind of interval)."""
    found: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    with (run / "results.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("metric") not in METRICS or row.get("status") != "ok":
                continue
            for low, high, label in WIDTHS:
                if row.get(low) is not None and row.get(high) is not None:
                    key = (row["scenario"], row.get("split") or "", row["metric"], label)
                    found[key].append(100 * (row[high] - row[low]))
    return {key: median(values) for key, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory")
    parser.add_argument("other", type=Path, help="the run directory to compare with")
    args = parser.parse_args()
    a, b = widths(args.run), widths(args.other)
    name_a, name_b = str(args.run), str(args.other)
    print(f"{'scenario / split / metric':<40} {'interval':<17} {name_a:>14} {name_b:>14} ratio")
    for key in sorted(set(a) & set(b)):
        label = " / ".join(key[:3])
        print(f"{label:<40} {key[3]:<17} {a[key]:>14.1f} {b[key]:>14.1f} {a[key] / b[key]:5.2f}")


if __name__ == "__main__":
    main()
