"""The growth charts in docs/, from bench/results/*.json (`--quick`: the quick runs' charts, in bench/results/):

- docs/benchmarks-runner.png: seconds to apply N migrations against N, for ours, dbmate and psql, over
  each transport the run measured;
- docs/benchmarks-data.png: operations per second against concurrent clients, one panel per operation,
  for every data-layer variant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT


def runner_chart(plt: Any, data: dict[str, Any], target: Path) -> None:
    transports = list(data["apply"])
    figure, panels = plt.subplots(1, len(transports), figsize=(6.5 * len(transports), 4.5), dpi=110, squeeze=False)
    for axes, transport in zip(panels[0], transports, strict=True):
        by_n = data["apply"][transport]
        sizes = [int(n) for n in by_n]
        for name in by_n[str(sizes[0])]:
            axes.plot(sizes, [by_n[str(n)][name]["median_s"] for n in sizes], marker="o", label=name)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("migrations applied to an empty database (N)")
        axes.set_ylabel("wall-clock seconds (median)")
        axes.set_title(f"over {transport}")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    machine = data["machine"]
    figure.suptitle(f"Apply N tiny migrations: PostgreSQL {data['server']['version']}, {machine['cores']} cores")
    figure.tight_layout()
    figure.savefig(target)
    print(f"wrote {target.relative_to(ROOT)}")


def data_chart(plt: Any, data: dict[str, Any], target: Path) -> None:
    results = data["throughput"]
    operations = list(dict.fromkeys(r["operation"] for r in results.values()))
    figure, panels = plt.subplots(1, len(operations), figsize=(4.2 * len(operations), 4.2), dpi=110, squeeze=False)
    for axes, operation in zip(panels[0], operations, strict=True):
        points = sorted((r["clients"], r["ops_s"]) for r in results.values() if r["operation"] == operation)
        clients = [c for c, _ in points]
        for name in data["variants"]:
            axes.plot(clients, [ops[name] for _, ops in points], marker="o", label=name)
        axes.set_xscale("log", base=2)
        axes.set_xticks(clients, [str(c) for c in clients])
        axes.set_yscale("log")
        axes.set_xlabel("concurrent clients")
        axes.set_title(operation)
        axes.grid(True, which="both", alpha=0.3)
    panels[0][0].set_ylabel("operations per second (median)")
    handles, labels = panels[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels))
    figure.suptitle(
        f"Data layer throughput: PostgreSQL {data['server']['version']} over {data['server']['transport']}, "
        f"{data['machine']['cores']} cores, pool {data['pool']}"
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(target)
    print(f"wrote {target.relative_to(ROOT)}")


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    # The full runs' charts go in docs/ (committed, shown by docs/benchmarks.md); the quick runs' stay with
    # their results (not committed).
    quick = "--quick" in sys.argv
    suffix, folder = ("-quick", RESULTS) if quick else ("", ROOT / "docs")
    runner = RESULTS / f"runner{suffix}.json"
    if runner.exists():
        runner_chart(plt, json.loads(runner.read_text()), folder / f"benchmarks-runner{suffix}.png")
    data = RESULTS / f"data{suffix}.json"
    if data.exists() and "throughput" in json.loads(data.read_text()):
        data_chart(plt, json.loads(data.read_text()), folder / f"benchmarks-data{suffix}.png")


if __name__ == "__main__":
    main()
