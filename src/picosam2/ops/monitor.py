"""Drift monitoring: a rotating log of per-frame statistics on the device, a reference
distribution shipped in the bundle, and a comparison of the two.

* :class:`StatsLog` appends one JSON line per frame through the standard library's
  ``logging.handlers.RotatingFileHandler`` (size-capped: ``LOG``, ``LOG.1`` ... ``LOG.<backups>``).
* :func:`build_reference` stores, per statistic, the reference sample (calibration windows run
  through the bundled network) and its decile bin edges.
* :func:`compare` takes the most recent ``window`` frames and computes, per statistic, the
  population stability index (PSI) over the reference's decile bins and the two-sample
  Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``). A statistic **drifts** when
  ``PSI > PSI_DRIFT`` **and** the KS p-value ``< KS_ALPHA``; the verdict is ``drift`` when any
  statistic drifts, else ``ok``. Requiring both keeps a short window's sampling noise (which
  inflates PSI) from raising false alarms, while a real shift moves both far past their limits.
* :func:`write_prometheus` writes the figures in the Prometheus text format for node_exporter's
  textfile collector (written to a temporary name, then renamed).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from . import OpsError
from .stats import STATISTICS

#: PSI above this is a major shift (the usual credit-risk convention: < 0.1 stable, 0.1-0.25 moderate)
PSI_DRIFT = 0.25
#: KS two-sample p-value below this rejects "same distribution" (strict: several statistics are tested)
KS_ALPHA = 0.001
#: reference quantile bins for the PSI
PSI_BINS = 10
#: smallest window the monitor will judge
MIN_FRAMES = 30
#: most recent frames the monitor compares unless told otherwise
DEFAULT_WINDOW = 200
_SMOOTH = 0.5


class StatsLog:
    """Append-only, size-capped JSON-lines log of frame records (rotated like logrotate's
    ``size``: at ``max_bytes`` the file becomes ``.1``, ``.1`` becomes ``.2`` ...)."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = 1_000_000, backups: int = 3):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
        self.handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, record: dict) -> None:
        msg = json.dumps(record, separators=(",", ":"))
        self.handler.emit(logging.LogRecord("picosam2.stats", logging.INFO, "", 0, msg, None, None))
        self.handler.flush()

    def close(self) -> None:
        self.handler.close()


def log_files(path: str | os.PathLike) -> list[Path]:
    """The log and its rotated backups, oldest first."""
    path = Path(path)
    backups = sorted(
        path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0
    )
    return [p for p in backups if p.suffix[1:].isdigit()] + ([path] if path.exists() else [])


def read_recent(path: str | os.PathLike, window: int) -> list[dict]:
    """The last ``window`` records of the log (rotated files included); torn or foreign lines are skipped."""
    files = log_files(path)
    if not files:
        raise OpsError(f"no statistics log at {path}")
    records: list[dict] = []
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
    return records[-window:] if window > 0 else records


def bin_edges(values: np.ndarray, bins: int = PSI_BINS) -> list[float]:
    """Inner edges of ``bins`` quantile bins of the reference (duplicates removed)."""
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return sorted({float(q) for q in qs})


def build_reference(records: list[dict], source: str) -> dict:
    """The reference distribution stored in a bundle (``monitor/reference.json``)."""
    stats = {}
    for name in STATISTICS:
        vals = np.array([r[name] for r in records if r.get(name) is not None], dtype=np.float64)
        if len(vals) == 0:
            continue
        stats[name] = {
            "values": [float(f"{v:.6g}") for v in vals],
            "edges": bin_edges(vals),
            "median": float(np.median(vals)),
        }
    return {"n": len(records), "source": source, "psi_drift": PSI_DRIFT, "ks_alpha": KS_ALPHA, "statistics": stats}


def psi(reference: np.ndarray, current: np.ndarray, edges) -> float:
    """Population stability index sum((c - r) * ln(c / r)) over bins cut at ``edges``, with
    add-one-half smoothing of the bin counts (an empty bin would otherwise weigh ln(0))."""
    n = len(edges) + 1
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=n) + _SMOOTH
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=n) + _SMOOTH
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def compare(reference: dict, records: list[dict], min_frames: int = MIN_FRAMES) -> dict:
    """Per-statistic PSI and KS test of ``records`` against ``reference``, and the verdict."""
    from scipy.stats import ks_2samp

    if len(records) < min_frames:
        raise OpsError(f"the log has {len(records)} frames; the monitor needs at least {min_frames} (--min-frames)")
    out = {"frames": len(records), "reference_n": reference.get("n"), "psi_drift": PSI_DRIFT, "ks_alpha": KS_ALPHA}
    rows = {}
    for name, ref in reference["statistics"].items():
        cur = np.array([r[name] for r in records if isinstance(r.get(name), (int, float))], dtype=np.float64)
        cur = cur[np.isfinite(cur)]
        if len(cur) < min_frames:
            continue  # e.g. no quality score on this network
        refv = np.asarray(ref["values"], dtype=np.float64)
        ks = ks_2samp(refv, cur)
        value = psi(refv, cur, ref["edges"])
        rows[name] = {
            "psi": round(value, 4),
            "ks_stat": round(float(ks.statistic), 4),
            "ks_p": float(f"{ks.pvalue:.3g}"),
            "ref_median": float(f"{np.median(refv):.4g}"),
            "median": float(f"{np.median(cur):.4g}"),
            "n": len(cur),
            "drift": bool(value > PSI_DRIFT and ks.pvalue < KS_ALPHA),
        }
    if not rows:
        raise OpsError("the log has no statistic in common with the bundle's reference")
    out["statistics"] = rows
    out["drifting"] = [k for k, v in rows.items() if v["drift"]]
    out["verdict"] = "drift" if out["drifting"] else "ok"
    return out


def format_report(report: dict) -> str:
    """Human-readable table of :func:`compare`'s figures and the verdict."""
    lines = [
        f"{report['frames']} recent frames vs {report['reference_n']} reference windows "
        f"(drift = PSI > {report['psi_drift']} and KS p < {report['ks_alpha']})",
        f"{'statistic':<14}{'PSI':>8}{'KS D':>8}{'KS p':>11}{'ref median':>12}{'median':>10}  verdict",
    ]
    for name, r in report["statistics"].items():
        lines.append(
            f"{name:<14}{r['psi']:>8.3f}{r['ks_stat']:>8.3f}{r['ks_p']:>11.3g}{r['ref_median']:>12.4g}"
            f"{r['median']:>10.4g}  {'DRIFT' if r['drift'] else 'ok'}"
        )
    lines.append(
        f"verdict: {report['verdict']}" + (f" ({', '.join(report['drifting'])})" if report["drifting"] else "")
    )
    return "\n".join(lines)


def _num(v: float) -> str:
    return "NaN" if isinstance(v, float) and math.isnan(v) else repr(float(v))


def prometheus_text(report: dict, bundle_version: str) -> str:
    """The report as Prometheus text exposition format (one gauge family per figure)."""
    fams = [
        (
            "picosam2_drift",
            "1 when any statistic drifts from the bundle's reference",
            [("", report["verdict"] == "drift")],
        ),
        ("picosam2_drift_frames", "frames in the compared window", [("", report["frames"])]),
    ]
    per = {"psi": "population stability index", "ks_stat": "KS statistic", "ks_p": "KS p-value", "drift": "drifting"}
    for key, help_ in per.items():
        samples = [(f'statistic="{name}"', r[key]) for name, r in report["statistics"].items()]
        fams.append((f"picosam2_drift_{key}", f"{help_} per statistic", samples))
    fams.append(("picosam2_bundle_info", "bundle compared against", [(f'version="{bundle_version}"', 1)]))
    out = []
    for name, help_, samples in fams:
        out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        out += [f"{name}{{{lab}}} {_num(v)}" if lab else f"{name} {_num(v)}" for lab, v in samples]
    return "\n".join(out) + "\n"


def write_prometheus(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
