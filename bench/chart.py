"""docs/benchmarks-runner.png: time to apply N migrations, per runner, from bench/results/runner.json."""

from __future__ import annotations

import json
import sys

from common import RESULTS, ROOT


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    source = RESULTS / ("runner-quick.json" if "--quick" in sys.argv else "runner.json")
    data = json.loads(source.read_text())
    sizes = [int(n) for n in data["apply"]]
    names = list(data["apply"][str(sizes[0])])
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name in names:
        axes.plot(sizes, [data["apply"][str(n)][name]["median_s"] for n in sizes], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("migrations applied to an empty database (N)")
    axes.set_ylabel("wall-clock seconds (median)")
    axes.set_title(f"Apply N tiny migrations, PostgreSQL {data['server']['version']}, {data['machine']['cores']} cores")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    target = ROOT / "docs" / "benchmarks-runner.png"
    figure.savefig(target)
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
