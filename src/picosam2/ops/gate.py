"""``picosam2 gate``: may a fine-tuned candidate replace the weights in the field?

Both weights are scored on the same instances of two labelled sets, with the full-image click
protocol (one click at each object's most interior point, the full-image mask against the ground
truth, the weights' own scale-aware point windows and score calibration, as ``picosam2 predict``
runs them):

* the **site** set (site-test labels the fine-tune never saw): the candidate must beat the
  baseline by at least ``min_gain`` mIoU points;
* the **reference** set (the release's dev data): the candidate may lose at most ``max_drop``.

The report (written atomically) keeps both figures, their paired 95 % bootstrap intervals, the
weights' sha256 and the verdict; the command exits 0 only when the candidate passes.
``bundle create --gate-report`` embeds it (``gate/report.json``) and ``--require-gate`` refuses a
bundle whose weights are not the passing candidate's; so does the Ansible rollout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import OpsError

FORMAT = "picosam2-gate/1"
DEFAULT_MIN_GAIN = 2.0
DEFAULT_MAX_DROP = 1.0


def weights_digest(weights) -> dict:
    """Where weights are and the sha256 of their tensors file (what a bundle is checked against)."""
    from ..io_utils import sha256_file
    from ..models.registry import _files

    tensors, _ = _files(weights)
    return {"weights": str(weights or "default"), "sha256": sha256_file(tensors)}


def _paired(cand: dict, base: dict, rounds: int = 2000, seed: int = 0) -> dict:
    ids = sorted(set(cand) & set(base))
    if not ids:
        raise OpsError("the candidate and the baseline scored no instance in common")
    c = np.array([cand[i] for i in ids]) * 100
    b = np.array([base[i] for i in ids]) * 100
    d = c - b
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(rounds, len(d)))].mean(1)
    return {
        "instances": len(ids),
        "candidate_miou": round(float(c.mean()), 3),
        "baseline_miou": round(float(b.mean()), 3),
        "difference": round(float(d.mean()), 3),
        "difference_ci95": [round(float(np.quantile(boots, 0.025)), 3), round(float(np.quantile(boots, 0.975)), 3)],
        "candidate_better": int((d > 0.5).sum()),
        "candidate_worse": int((d < -0.5).sum()),
    }


def score(weights, annotations, images, limit=None, point_scales=None, progress=False, cache=None) -> dict:
    """Full-image click IoU per annotation id of ``weights`` on a labelled set. With ``cache`` (a
    folder), scores are kept under a key of the sha256 of the weights' tensors, of their config.json
    (score calibration, point scales) and of the labels, the limit and the point scales, so a
    baseline is scored once for several candidates."""
    from ..data import InstanceSet
    from ..io_utils import sha256_file, write_json_atomic

    path = None
    if cache is not None:
        import hashlib

        from ..models.registry import _files

        config = _files(weights)[1]  # its score calibration and point scales change the scores too
        config_sha = sha256_file(config) if config.is_file() else None
        key = json.dumps([weights_digest(weights)["sha256"], config_sha, sha256_file(annotations), limit, point_scales])
        path = Path(cache) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
        if path.is_file():
            return {int(k): v for k, v in json.loads(path.read_text()).items()}
    from ..eval.protocols import evaluate
    from ..predictor import Predictor

    predictor = Predictor.from_pretrained(weights, warn_untrained=False, **({"point_scales": point_scales} if point_scales else {}))  # fmt: skip
    scales = predictor.point_scales if point_scales is None else point_scales
    result = evaluate(InstanceSet(annotations, images), predictor, "full", "point", limit=limit,
                      progress=progress, point_scales=scales)  # fmt: skip
    if path is not None:
        write_json_atomic({str(k): v for k, v in result.per_instance.items()}, path)
    return result.per_instance


def run_gate(candidate, baseline, site, reference, min_gain=DEFAULT_MIN_GAIN, max_drop=DEFAULT_MAX_DROP,
             limit=None, reference_limit=None, point_scales=None, progress=False, cache=None) -> dict:  # fmt: skip
    """Score both weights on both sets; the gate report (see the module docstring)."""
    from .bundle import utc_now

    if min_gain < 0 or max_drop < 0:
        raise OpsError("--min-gain and --max-drop must not be negative")
    report = {"format": FORMAT, "created": utc_now(), "protocol": "full-image click mIoU (interior point)",
              "point_scales": point_scales or "the weights' own", "min_gain": min_gain, "max_drop": max_drop,
              "candidate": weights_digest(candidate), "baseline": weights_digest(baseline)}  # fmt: skip
    for name, (ann, imgs), lim in (("site", site, limit), ("reference", reference, reference_limit)):
        imgs = [imgs] if isinstance(imgs, (str, os.PathLike)) else list(imgs)
        c = score(candidate, ann, imgs, lim, point_scales, progress, cache)
        b = score(baseline, ann, imgs, lim, point_scales, progress, cache)
        report[name] = {"annotations": str(ann), "limit": lim, **_paired(c, b)}
    gain, drop = report["site"]["difference"], -report["reference"]["difference"]
    reasons = []
    if gain < min_gain:
        reasons.append(f"site gain {gain:+.2f} points < required {min_gain:g}")
    if drop > max_drop:
        reasons.append(f"reference drop {drop:.2f} points > allowed {max_drop:g}")
    report["passed"] = not reasons
    report["reasons"] = reasons or [f"site gain {gain:+.2f} >= {min_gain:g}, reference drop {drop:.2f} <= {max_drop:g}"]
    return report


def summary(report: dict) -> dict:
    """The few figures a manifest and ``device status`` show."""
    return {
        "passed": bool(report.get("passed")),
        "site_gain": report.get("site", {}).get("difference"),
        "reference_drop": None if "reference" not in report else -report["reference"]["difference"],
        "min_gain": report.get("min_gain"),
        "max_drop": report.get("max_drop"),
        "candidate_sha256": report.get("candidate", {}).get("sha256"),
        "created": report.get("created"),
        "reason": "; ".join(report.get("reasons", [])),
    }


def read_report(path) -> dict:
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OpsError(f"cannot read gate report {path}: {exc}") from exc
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise OpsError(f"{path} is not a picosam2 gate report")
    return report


def check_bundle_gate(manifest: dict, folder=None) -> dict:
    """Raise :class:`OpsError` unless the bundle carries a passing gate report for its own weights."""
    gate = manifest.get("gate")
    name = f"bundle {manifest.get('version', '?')}"
    if not gate:
        raise OpsError(f"{name} has no gate report (bundle create --gate-report GATE.json after picosam2 gate)")
    if not gate.get("passed"):
        raise OpsError(f"{name}: its candidate did not pass the gate ({gate.get('reason', 'failed')})")
    weights_sha = manifest.get("build", {}).get("weights_sha256")
    if weights_sha and gate.get("candidate_sha256") != weights_sha:
        raise OpsError(f"{name}: the gate report is about other weights than the bundle's")
    if folder is not None and not (Path(folder) / GATE_REPORT).is_file():
        raise OpsError(f"{name}: {GATE_REPORT} is missing")
    return gate


GATE_REPORT = "gate/report.json"


# -- command line -------------------------------------------------------------------------------
def add_parser(sub) -> list[str]:
    g = sub.add_parser(
        "gate",
        help="may fine-tuned weights ship? better on the site, no worse on the reference (exit 0 = pass)",
        description=(
            "Score a candidate and the baseline weights with the full-image click protocol on the site's "
            "held-out labels and on the reference (dev) labels; write a report; exit 0 only when the "
            "candidate gains at least --min-gain mIoU points on the site and loses at most --max-drop on "
            "the reference (1 when it does not, 2 on bad input). See docs/field-learning.md."
        ),
    )
    g.add_argument("--candidate", required=True, metavar="W2", help="fine-tuned weights")
    g.add_argument("--baseline", default=None, metavar="W1", help="weights in the field (default: shipped)")
    g.add_argument("--site", nargs=2, required=True, metavar=("ANNOTATIONS", "IMAGES"), help="site test labels")
    g.add_argument("--reference", nargs=2, required=True, metavar=("ANNOTATIONS", "IMAGES"), help="dev labels")
    g.add_argument("--min-gain", type=float, default=DEFAULT_MIN_GAIN, metavar="G", help="points (default 2)")
    g.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP, metavar="D", help="points (default 1)")
    g.add_argument("--limit", type=int, default=None, metavar="N", help="first N site instances")
    g.add_argument("--reference-limit", type=int, default=None, metavar="N", help="first N reference instances")
    g.add_argument("--point-scales", default=None, help="override the weights' point scales (e.g. auto:4)")
    g.add_argument("--cache", metavar="DIR", help="keep per-instance scores here (the baseline is scored once)")
    g.add_argument("--out", required=True, metavar="GATE.json", help="report to write")
    g.add_argument("--json", action="store_true")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=run_gate_cmd)
    return ["gate"]


def run_gate_cmd(args) -> int:
    from ..io_utils import write_json_atomic

    for flag in ("limit", "reference_limit"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise OpsError(f"--{flag.replace('_', '-')} must be positive")
    r = run_gate(args.candidate, args.baseline, tuple(args.site), tuple(args.reference), args.min_gain,
                 args.max_drop, args.limit, args.reference_limit, args.point_scales, not args.quiet, args.cache)  # fmt: skip
    write_json_atomic(r, args.out, indent=2)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        for name in ("site", "reference"):
            s = r[name]
            print(f"{name:<9} {s['instances']} instances: candidate {s['candidate_miou']:.2f}, baseline "
                  f"{s['baseline_miou']:.2f}, difference {s['difference']:+.2f} (95% CI {s['difference_ci95'][0]:+.2f}"
                  f" .. {s['difference_ci95'][1]:+.2f})")  # fmt: skip
        print(f"gate: {'PASS' if r['passed'] else 'FAIL'}: {'; '.join(r['reasons'])} -> {args.out}")
    return 0 if r["passed"] else 1
