"""``picosam2 bundle``, ``picosam2 device`` and ``picosam2 monitor``: release bundles, A/B
installs on a camera, drift monitoring (see docs/operations.md)."""

from __future__ import annotations

import json
import sys

from ..errors import UsageError


def add_parser(sub) -> list[str]:
    from .collect import DEFAULT_MAX
    from .health import DEFAULT_LATENCY_BUDGET_MS
    from .monitor import DEFAULT_WINDOW, MIN_FRAMES

    b = sub.add_parser("bundle", help="create or verify a signed, versioned deployment bundle")
    bs = b.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    c = bs.add_parser("create", help="weights -> bundle folder + .tar (sensor package, INT8 ONNX, report, reference)")
    c.add_argument("--weights", default=None,
                   help="weights folder, .safetensors, .pt checkpoint, shipped name or hf-hub:owner/name (default: shipped)")  # fmt: skip
    c.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to create (BUNDLE.tar is written too)")
    c.add_argument("--version", required=True, help="release version, dotted integers (e.g. 1.2.0)")
    c.add_argument("--name", default="picosam2")
    c.add_argument("--sign", metavar="KEY.pem", help="Ed25519 private key (openssl genpkey -algorithm ed25519)")
    c.add_argument("--eval-report", nargs="+", metavar="REPORT.json", help="eval reports to ship (paper and full)")
    c.add_argument("--annotations", metavar="JSON", help="or: evaluate on this COCO json (both protocols)")
    c.add_argument("--images", action="append", default=[], metavar="DIR", help="image folder for --annotations")
    c.add_argument("--eval-limit", type=int, default=None, metavar="N", help="instances per protocol")
    c.add_argument("--skip-imx500", action="store_true", help="no sensor package (CPU-only bundle, fast)")
    c.add_argument("--calib-count", type=int, default=None, metavar="N", help="quantization calibration windows")
    c.add_argument("--latency-budget-ms", type=float, default=DEFAULT_LATENCY_BUDGET_MS,
                   help="health check: CPU latency per window (ms)")  # fmt: skip
    c.add_argument("--reference-count", type=int, default=None, metavar="N",
                   help="monitoring reference windows: first N calibration windows (default 128), or N from --annotations (200)")  # fmt: skip
    c.add_argument("--reference-photos", metavar="DIR",
                   help="monitoring reference: the camera loop over these photos (default: the photos of --annotations)")  # fmt: skip
    c.add_argument("--reference-log", metavar="LOG",
                   help="monitoring reference: a statistics log recorded by `picosam2 camera --stats-log`")  # fmt: skip
    c.add_argument("--gate-report", metavar="GATE.json", help="embed this `picosam2 gate` report of the weights")
    c.add_argument("--require-gate", action="store_true", help="refuse unless --gate-report passed for these weights")
    c.set_defaults(func=run_bundle_create)
    v = bs.add_parser("verify", help="check every hash of a bundle (folder or .tar) and its signature")
    v.add_argument("bundle")
    v.add_argument("--pubkey", metavar="PUB.pem", help="trusted Ed25519 public key: the signature must verify")
    v.add_argument("--require-gate", action="store_true", help="also refuse a bundle without a passing gate report")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=run_bundle_verify)

    d = sub.add_parser("device", help="A/B model slots on a camera: install, rollback, status")
    ds = d.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    i = ds.add_parser("install", help="verify, write the inactive slot, health-check, switch")
    i.add_argument("bundle", help="bundle folder or .tar")
    i.add_argument("--root", required=True, help="device root (slots, active link, state)")
    i.add_argument("--pubkey", metavar="PUB.pem", help="trusted key (default: ROOT/trusted.pem when present)")
    i.add_argument("--allow-downgrade", action="store_true", help="install a version older than the active one")
    i.add_argument("--latency-budget-ms", type=float, default=None, help="override the bundle's latency budget")
    i.add_argument("--require-gate", action="store_true", help="refuse a bundle without a passing gate report")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=run_device_install)
    r = ds.add_parser("rollback", help="switch back to the other slot")
    r.add_argument("--root", required=True)
    r.add_argument("--if-active", metavar="VERSION", help="only when VERSION is active (no-op otherwise)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_device_rollback)
    k = ds.add_parser("check", help="health-check the active slot again (exit 1 when it fails)")
    k.add_argument("--root", required=True)
    k.add_argument("--latency-budget-ms", type=float, default=None, help="override the bundle's latency budget")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=run_device_check)
    s = ds.add_parser("status", help="versions of both slots, the active one, the last health result")
    s.add_argument("--root", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_device_status)

    m = sub.add_parser("monitor", help="compare recent frame statistics with the bundle's reference (drift)")
    m.add_argument("log", help="statistics log written by `picosam2 camera --stats-log`")
    m.add_argument("--bundle", required=True, help="bundle folder (or device slot) holding monitor/reference.json")
    m.add_argument("--window", type=int, default=DEFAULT_WINDOW, metavar="N",
                   help=f"most recent frames to compare (default {DEFAULT_WINDOW})")  # fmt: skip
    m.add_argument("--min-frames", type=int, default=MIN_FRAMES, metavar="N")
    m.add_argument("--prom-out", metavar="FILE.prom", help="write Prometheus textfile-collector metrics here")
    m.add_argument("--collect", metavar="DIR",
                   help="on drift, arm frame collection into DIR (the camera's --collect writes it); off on ok")  # fmt: skip
    m.add_argument("--collect-max", type=int, default=DEFAULT_MAX, metavar="N",
                   help="collected frames kept (oldest go first)")  # fmt: skip
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run_monitor)
    return ["bundle", "device", "monitor"]


def _gate_text(gate) -> str:
    if not gate:
        return "none"
    return (f"{'passed' if gate.get('passed') else 'FAILED'} (site {gate.get('site_gain', 0):+.2f} points, "
            f"reference {-(gate.get('reference_drop') or 0):+.2f})")  # fmt: skip


def _print(obj, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2) if as_json else text)


def run_bundle_create(args) -> int:
    from .build import create_bundle

    for flag in ("calib_count", "reference_count"):
        if getattr(args, flag) is not None and getattr(args, flag) < 2:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 2")
    m = create_bundle(
        args.out, weights=args.weights, version=args.version, name=args.name, sign=args.sign,
        eval_reports=args.eval_report, annotations=args.annotations, images=args.images,
        eval_limit=args.eval_limit, skip_imx500=args.skip_imx500, calib_count=args.calib_count,
        latency_budget_ms=args.latency_budget_ms, reference_count=args.reference_count,
        reference_photos=args.reference_photos, reference_log=args.reference_log, gate_report=args.gate_report,
        require_gate=args.require_gate,
    )  # fmt: skip
    print(f"wrote {args.out} ({len(m['files'])} files, version {m['version']}, "
          f"{'signed' if args.sign else 'unsigned'}) and {args.out.rstrip('/')}.tar")  # fmt: skip
    return 0


def run_bundle_verify(args) -> int:
    from .bundle import opened_bundle, verify_bundle

    with opened_bundle(args.bundle) as folder:
        m = verify_bundle(folder, args.pubkey)
        if args.require_gate:
            from .gate import check_bundle_gate

            check_bundle_gate(m, folder)
    summary = {"name": m.get("name"), "version": m["version"], "files": len(m["files"]), "signature": m["signature"],
               "gate": m.get("gate")}  # fmt: skip
    _print(
        summary,
        args.json,
        f"ok: {m.get('name')} {m['version']}, {len(m['files'])} files match, signature {m['signature']}, "
        f"gate {_gate_text(m.get('gate'))}",
    )
    return 0


def run_device_install(args) -> int:
    from .device import Device, HealthCheckFailed

    try:
        r = Device(args.root).install(
            args.bundle, args.pubkey, args.allow_downgrade, args.latency_budget_ms, require_gate=args.require_gate
        )
    except HealthCheckFailed as exc:
        print(f"picosam2 device install: failed: {exc}", file=sys.stderr)
        return 1
    h = r["health"]
    _print(r, args.json, f"installed {r['version']} in slot {r['slot']} (active; previous: {r['previous'] or 'none'}); "
           f"health ok: mask IoU {h['mask_iou']:.3f}, {h['latency_ms']:.2f} ms; signature {r['signature']}")  # fmt: skip
    return 0


def run_device_check(args) -> int:
    from .device import Device

    h = Device(args.root).check(args.latency_budget_ms)
    text = f"slot {h['slot']} ({h['version']}): {'ok' if h['ok'] else 'FAILED'} ({h['reason']})"
    _print(h, args.json, text)
    return 0 if h["ok"] else 1


def run_device_rollback(args) -> int:
    from .device import Device

    r = Device(args.root).rollback(args.if_active)
    text = (f"rolled back: active slot {r['active']} ({r['version']}), was {r['from']}" if r["changed"]
            else f"no rollback: active version is {r['version']}, not {args.if_active}")  # fmt: skip
    _print(r, args.json, text)
    return 0


def run_device_status(args) -> int:
    from .device import Device

    st = Device(args.root).status()
    lines = [f"root: {st['root']}", f"active: slot {st['active'] or 'none'} ({st['active_version'] or '-'})"]
    for s, info in st["slots"].items():
        lines.append(f"slot {s}: {info['version'] if info else 'empty'}{'  (active)' if s == st['active'] else ''}"
                     + (f"; gate {_gate_text(info.get('gate'))}" if info else ""))  # fmt: skip
    h = st["last_health"]
    if h:
        lines.append(f"last health check: {'ok' if h['ok'] else 'FAILED'} ({h['reason']}), {h.get('version')} in slot "
                     f"{h.get('slot')} at {h['checked_at']}")  # fmt: skip
    if st["last_fallback"]:
        fb = st["last_fallback"]
        lines.append(f"last fallback: {fb['from']} -> {fb['to']} at {fb['at']}: {fb['reason']}")
    _print(st, args.json, "\n".join(lines))
    return 0


def run_monitor(args) -> int:
    from pathlib import Path

    from . import OpsError
    from .bundle import MANIFEST, REFERENCE
    from .monitor import compare, format_report, prometheus_text, read_recent, write_prometheus

    if args.window < 1 or args.min_frames < 1:
        raise UsageError("--window and --min-frames must be positive")
    bundle = Path(args.bundle)
    try:
        reference = json.loads((bundle / REFERENCE).read_text())
        version = json.loads((bundle / MANIFEST).read_text()).get("version", "?")
    except (OSError, ValueError) as exc:
        raise OpsError(f"no readable reference in bundle {bundle}: {exc}") from exc
    from .reference import reference_note

    report = compare(reference, read_recent(args.log, args.window), min_frames=args.min_frames)
    report["bundle_version"] = version
    note = reference_note(reference)
    if note:
        report["note"] = note
        print(note, file=sys.stderr)
    if args.collect:
        from .collect import arm, disarm

        if report["verdict"] == "drift":
            arm(args.collect, report, args.collect_max)
            report["collect"] = f"armed: the camera keeps up to {args.collect_max} frames in {args.collect}"
        else:
            report["collect"] = "disarmed" if disarm(args.collect) else "off"
    if args.prom_out:
        write_prometheus(prometheus_text(report, version), args.prom_out)
    _print(report, args.json, format_report(report) + (f"\ncollection: {report['collect']}" if args.collect else ""))
    return 1 if report["verdict"] == "drift" else 0
