"""The drift monitor end to end: references recorded through the camera loop versus the older
instance-window reference, the false-alarm rate over many in-distribution windows, and shifted
photos.

    python benchmarks/field/monitor_false_alarms.py --data-root DATA --site runs/field/site \
        --network runs/field/base-int8.onnx --out benchmarks/field/monitor.json

``--network``: the INT8 ONNX a bundle ships (``picosam2 export --format onnx-int8``). Every log is
``picosam2 camera --simulate FOLDER --weights NETWORK --stats-log LOG`` (centre prompt, the weights'
point scales), the path a camera records its statistics through.

* reference ``camera``: the camera loop on the 103 coco-mini dev-val photos (what
  ``bundle create --annotations instances_val.json`` now stores);
* reference ``windows``: 200 instance windows of the same dev-val annotations, as bundles were
  built before (``windows_from_coco``), for comparison;
* in-distribution: the camera loop on the 796 coco-mini train-pool photos (never in the reference);
  ``trials`` windows of ``window`` frames drawn at random from them, and the whole log;
* shifted: the same dev-val photos darkened (x 0.5), blurred (Gaussian radius 2), and the simulated
  dusk site (benchmarks/field/make_site.py, site-test photos).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from picosam2.ops.monitor import build_reference, compare
from picosam2.ops.reference import camera_reference, photos_of, run_camera_log


def shifted_copies(photos, folder: Path, kind: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in photos:
        im = Image.open(p).convert("RGB")
        if kind == "dark":
            im = Image.fromarray((np.asarray(im, dtype=np.float32) * 0.5).astype(np.uint8))
        else:
            im = im.filter(ImageFilter.GaussianBlur(2.0))
        dst = folder / (Path(p).stem + ".png")
        im.save(dst)
        out.append(dst)
    return out


def window_reference(network, annotations, images, count=200) -> dict:
    from picosam2.export.calibration import windows_from_coco
    from picosam2.ops.network import SlotNetwork
    from picosam2.ops.stats import records_from_windows

    windows = windows_from_coco(annotations, list(images), count=count)
    from picosam2.models.registry import resolve_weights

    net = SlotNetwork(network, resolve_weights(None) / "config.json")  # the network's config
    logits, scores = net(windows, batch_size=32)
    return build_reference(records_from_windows(windows, logits, scores), source="instance windows")


def verdict(ref, recs) -> dict:
    r = compare(ref, recs)
    return {"verdict": r["verdict"], "drifting": r["drifting"],
            "psi": {k: v["psi"] for k, v in r["statistics"].items()},
            "ks_p": {k: v["ks_p"] for k, v in r["statistics"].items()}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--network", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--window", type=int, default=200)
    a = ap.parse_args()
    coco = Path(a.data_root) / "coco-mini"
    val_ann, val_img = coco / "annotations" / "instances_val.json", coco / "images" / "val"
    val = photos_of(val_ann, [val_img])
    pool = photos_of(folder=coco / "images" / "train")
    res = {"network": Path(a.network).name, "window": a.window, "trials": a.trials}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        refs = {"camera": camera_reference(a.network, val), "windows": None}
        try:
            refs["windows"] = window_reference(a.network, val_ann, [val_img])
        except Exception as exc:  # noqa: BLE001 - the comparison row is optional
            print("windows reference skipped:", exc)
        logs = {"in-distribution (796 train-pool photos)": run_camera_log(a.network, pool, tmp / "pool.log")}
        for kind in ("dark", "blur"):
            logs[f"dev-val photos, {kind}"] = run_camera_log(
                a.network, shifted_copies(val, tmp / kind, kind), tmp / f"{kind}.log"
            )
        site = photos_of(folder=Path(a.site) / "test" / "images")
        logs["dusk site (site-test photos)"] = run_camera_log(a.network, site, tmp / "site.log")
        rng = np.random.default_rng(0)
        pool_recs = logs["in-distribution (796 train-pool photos)"]
        for name, ref in refs.items():
            if ref is None:
                continue
            row = {"reference": ref["source"], "reference_frames": ref["n"]}
            alarms, which = 0, {}
            for _ in range(a.trials):
                idx = np.sort(rng.choice(len(pool_recs), size=a.window, replace=False))
                r = compare(ref, [pool_recs[i] for i in idx])
                alarms += r["verdict"] == "drift"
                for k in r["drifting"]:
                    which[k] = which.get(k, 0) + 1
            row["false_alarm_rate"] = alarms / a.trials
            row["false_alarms_by_statistic"] = which
            row["logs"] = {k: verdict(ref, v) for k, v in logs.items()}
            res[f"reference: {name}"] = row
        # references recorded by the camera loop on random train-pool photos vs disjoint windows
        alarms = 0
        for _ in range(a.trials):
            perm = rng.permutation(len(pool_recs))
            ref = build_reference([pool_recs[i] for i in perm[:300]], source="300 pool frames")
            alarms += compare(ref, [pool_recs[i] for i in perm[300 : 300 + a.window]])["verdict"] == "drift"
        res["camera reference of 300 random pool frames vs a disjoint window: false-alarm rate"] = alarms / a.trials
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
