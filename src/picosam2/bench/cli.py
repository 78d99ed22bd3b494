"""``picosam2 bench``."""

from __future__ import annotations


def add_parser(sub) -> list[str]:
    """Register ``picosam2 bench``; returns its name."""
    p = sub.add_parser(
        "bench",
        help="speed, size and the SAM 2.1 peer, measured in one run",
        description="Measure parameters, MACs, file sizes, single-thread batch-1 latency (median after warm-up) "
        "of every runtime form, batch-16 throughput, end-to-end photo-to-mask time, the core's peak MAC rate and "
        "SAM 2.1 Hiera-Tiny on the same CPU. With --json the last line of stdout is one JSON object.",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")
    p.add_argument("--threads", type=int, default=None, help="threads for the throughput figures (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, no IMX500 package, one peer run")
    p.add_argument("--no-peers", action="store_true", help="skip the SAM 2.1 row (about 5 s a run)")
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    p.set_defaults(func=run)
    return ["bench"]


def run(args) -> int:
    """``picosam2 bench``: run the suite, print its table (or JSON) and write the results file."""
    import json

    from ..io_utils import write_json_atomic
    from .suite import run_bench

    if args.threads is not None and args.threads < 1:
        from ..errors import UsageError

        raise UsageError("--threads must be at least 1")
    result = run_bench(weights=args.weights, threads=args.threads, quick=args.quick, peers=not args.no_peers)
    text = json.dumps(result)
    if args.out:
        write_json_atomic(result, args.out, indent=2)
    if args.json:
        print(text)
    else:
        print(format_table(result))
    return 0


def format_table(r: dict) -> str:
    """The human-readable table of a bench result dictionary (:func:`~picosam2.bench.suite.run_suite`)."""
    lines = [
        f"picosam2 {r['picosam2']} on {r['machine']['cpu']} ({r['machine']['cores']} cores)",
        f"params {r['params']:,}   conv MACs {r['macs'] / 1e6:.1f} M at {r['input_size']}x{r['input_size']}",
        "",
        f"{'form':<28}{'latency ms (1 thr)':>20}{'G MAC/s':>10}{'prompts/s (b16)':>18}",
    ]
    for k, v in r["latency_ms"].items():
        thr = r["throughput"].get(k.replace("_channels_last", ""), "")
        lines.append(f"{k:<28}{v:>20.2f}{r['measured_gmacs'][k]:>10.1f}{thr if thr == '' else f'{thr:.0f}':>18}")
    lines.append("")
    lines.append(
        "end to end (photo -> full mask): " + ", ".join(f"{k} {v:.1f} ms" for k, v in r["end_to_end_ms"].items())
    )
    for spec, ms in r.get("auto_click_ms", {}).items():
        lines.append(
            f"scale-aware click {spec} ({r['auto_click_candidates'][spec]} windows, one batch): "
            + ", ".join(
                f"{k} {v:.1f} ms ({r['auto_vs_single_click'][spec][k]:.1f}x its one-window click"
                + (
                    f", {r['auto_vs_one_window'][spec][k]:.1f}x one window through the model"
                    if k in r["auto_vs_one_window"][spec]
                    else ""
                )
                + ")"
                for k, v in ms.items()
            )
        )
    if "tracker_fps" in r:
        lines.append(
            "tracker, one object, 480p clip (frames/s, x its one-window click): "
            + ", ".join(f"{k} {v:.0f} ({r['tracker_vs_single_click'][k]:.2f}x)" for k, v in r["tracker_fps"].items())
            + f"; {r['tracker_windows_per_frame']} windows a frame"
        )
    if "tracker_vs_same_window_click" in r:
        lines.append(
            f"tracker vs a one-window click at the very window it runs (median side {r['tracker_window_side_median']} px): "
            + ", ".join(f"{k} {v:.2f}x" for k, v in r["tracker_vs_same_window_click"].items())
        )
    pk = r["peak_gmacs_per_core"]
    lines.append(f"one core's peak: fp32 {pk['fp32_gmacs']:.0f} G MAC/s, int8 {pk['int8_gmacs']:.0f} G MAC/s")
    if "peers" in r:
        s = r["peers"]["sam2.1-hiera-tiny"]
        lines.append(
            f"SAM 2.1 Hiera-Tiny: {s['latency_ms']:.0f} ms per prompt ({s.get('macs', 0) / 1e9:.0f} G MACs); "
            f"best INT8 form ({r.get('best_int8')}) is {r.get('speedup_vs_sam2.1_tiny', '?')}x faster"
        )
        for spec, x in r.get("auto_click_speedup_vs_sam2.1_tiny", {}).items():
            lines.append(f"  scale-aware click {spec}: " + ", ".join(f"{k} {v:.0f}x faster" for k, v in x.items()))
    lines.append("sizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in r["sizes_bytes"].items()))
    return "\n".join(lines)
