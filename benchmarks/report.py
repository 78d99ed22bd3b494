"""Turn benchmarks/results.json (from `picosam2 bench --json --out ...`) into the RESULTS.md
table and the latency-vs-accuracy plot.

    .venv/bin/python benchmarks/report.py benchmarks/results.json \
        --accuracy torch_fp32=41.2 --accuracy onnx_int8=40.9 --accuracy-source "coco-mini dev-val, paper protocol"

Accuracy figures are given on the command line (from `picosam2 eval` reports) because the
benchmark itself measures speed only. SAM 2.1 Hiera-Tiny's accuracy is the PicoSAM2 paper's
figure (COCO val2017, first 1,000 instances, same 96 px crops) and is labelled as such.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SAM21_TINY_PAPER_MIOU = 50.45  # PicoSAM2 paper, Track A COCO, SAM 2.1 Tiny on the same crops


def plot(result: dict, accuracy: dict[str, float], out: Path, source: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for form, miou in accuracy.items():
        if form in result["latency_ms"]:
            ax.scatter(result["latency_ms"][form], miou, s=60, label=f"picosam2 {form}")
    peer = result.get("peers", {}).get("sam2.1-hiera-tiny")
    if peer:
        ax.scatter(
            peer["latency_ms"],
            SAM21_TINY_PAPER_MIOU,
            s=80,
            marker="s",
            color="black",
            label="SAM 2.1 Hiera-Tiny (mIoU: paper figure)",
        )
        ax.annotate(
            "SAM 2.1 Tiny",
            (peer["latency_ms"], SAM21_TINY_PAPER_MIOU),
            textcoords="offset points",
            xytext=(-70, 6),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("latency per prompt, ms (batch 1, one thread, log scale)")
    ax.set_ylabel("mIoU, paper protocol")
    ax.set_title(f"Speed vs accuracy on {result['machine']['cpu']}\n(picosam2 mIoU: {source})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo - 1.5, hi + 0.5)
    ax.legend(fontsize=7, loc="center")
    fig.tight_layout()
    fig.savefig(out)


def table(result: dict) -> str:
    rows = [
        "| form | latency ms (1 thread, batch 1) | G MAC/s | share of core's int8 peak | prompts/s (batch 16, all threads) |",
        "|---|---:|---:|---:|---:|",
    ]
    peak = result["peak_gmacs_per_core"]["int8_gmacs"]
    for form, ms in result["latency_ms"].items():
        gm = result["measured_gmacs"][form]
        thr = result["throughput"].get(form)
        rows.append(
            f"| {form} | {ms:.2f} | {gm:.0f} | {100 * gm / peak:.0f} % | {'' if thr is None else f'{thr:.0f}'} |"
        )
    peer = result.get("peers", {}).get("sam2.1-hiera-tiny")
    if peer:
        rows.append(
            f"| SAM 2.1 Hiera-Tiny (image encoder + decoder, 1024 px) | {peer['latency_ms']:.0f} | "
            f"{peer['macs'] / peer['latency_ms'] / 1e6:.0f} | | |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--accuracy", action="append", default=[], metavar="FORM=MIOU")
    ap.add_argument("--accuracy-source", default="coco-mini dev-val, paper protocol")
    ap.add_argument("--plot", default=str(Path(__file__).resolve().parent / "latency_vs_accuracy.png"))
    args = ap.parse_args()
    result = json.loads(Path(args.results).read_text())
    acc = {k: float(v) for k, v in (a.split("=", 1) for a in args.accuracy)}
    print(table(result))
    plot(result, acc, Path(args.plot), args.accuracy_source)
    print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
