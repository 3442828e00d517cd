"""PNG plots of ``bench/fusion_eval.py``'s results, drawn with matplotlib from the Stone Soup bench venv.

Run: bench/.venv-stonesoup/bin/python bench/fusion_plot.py RESULTS.json OUT_DIR

Writes ``fusion-ospa.png`` (OSPA over time of every variant), ``fusion-covered.png`` (each source
alone against the fused picture, on the kinds of object that source sees) and
``fusion-throughput.png`` (observations per CPU second, log scale).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use(): the backend must be chosen first

STYLE = {"fused": ("black", 2.2), "stonesoup-gnn": ("tab:red", 1.6)}


def main(results_path: str, out_dir: str) -> None:
    results = json.loads(Path(results_path).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    times = results["times"]
    variants = results["variants"]
    title = (f"scenario '{results['scenario']}' (seed {results['seed']}): {results['targets']} targets, "
             f"{results['reports']} reports; OSPA c={results['c']:g} m, p={results['p']:g}")

    fig, ax = plt.subplots(figsize=(10, 5))
    for name, v in variants.items():
        color, width = STYLE.get(name, (None, 1.0))
        ax.plot(times, v["ospa"], label=f"{name} (mean {v['mean_ospa']:.0f} m)", color=color, linewidth=width)
    ax.set_xlabel("scenario time (s)")
    ax.set_ylabel("OSPA (m)")
    ax.set_ylim(0, results["c"] * 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "fusion-ospa.png", dpi=100)
    plt.close(fig)

    singles = [(n, v) for n, v in variants.items() if "mean_ospa_covered" in v]
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(singles))
    ax.bar([x - 0.2 for x in xs], [v["mean_ospa_covered"] for _, v in singles], width=0.4, label="source alone")
    ax.bar([x + 0.2 for x in xs], [v["fused_mean_ospa_covered"] for _, v in singles], width=0.4,
           label="fused (all sources)", color="black")
    ax.set_xticks(list(xs), [f"{n}\n({', '.join(v['covered_domains'])})" for n, v in singles], fontsize=8)
    ax.set_ylabel("mean OSPA (m)")
    ax.set_title("On the objects each source can see: that source alone vs the fused picture", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "fusion-covered.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(variants)
    rates = [variants[n]["observations_per_s"] for n in names]
    ax.barh(names, rates, color=[STYLE.get(n, ("tab:blue", 1))[0] or "tab:blue" for n in names])
    ax.set_xscale("log")
    ax.set_xlabel("observations per CPU second (log scale)")
    for y, rate in enumerate(rates):
        ax.text(rate, y, f" {rate:,.0f}", va="center", fontsize=8)
    ax.set_title("Tracker throughput on the same recorded scenario (process CPU time, shared machine)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "fusion-throughput.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: fusion_plot.py RESULTS.json OUT_DIR")
    main(sys.argv[1], sys.argv[2])
