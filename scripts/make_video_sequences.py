"""Make synthetic video sequences with exact masks from coco-mini photos, in the DAVIS layout.

Targets are instances of one photo (sometimes two of the same photo); about a quarter of the
sequences follow a thin object. Which photos: ``--split devval`` = the dev-val images
(``coco-mini/annotations/instances_val.json``); ``--split select`` = the model-selection part of
the train pool, made by ``scripts/make_select_split.py`` (pass its ``instances_select.json`` with
``--select-json``, or let this script make it with that script's defaults, fraction 0.1, seed 0).
Everything depends only on ``--seed`` and the data.

    python scripts/make_video_sequences.py --data-root DATA --split devval --out OUT/devval
    python scripts/make_video_sequences.py --data-root DATA --split select --out OUT/select

``OUT/<split>`` then holds ``JPEGImages/480p/SEQ/*.jpg``, ``Annotations/480p/SEQ/*.png``,
``ImageSets/2017/val.txt`` and ``meta.json``; ``picosam2 eval-video OUT/<split>`` reads it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: a target is thin when its most interior pixel is this close to the border, relative to sqrt(area)
#: (a w x h rectangle: 0.5 * sqrt(w / h), so 0.25 is 1:4 or thinner)
THIN = 0.25


def thinness(mask: np.ndarray) -> float:
    """Largest distance to the border divided by sqrt(area) (a disc: about 0.56; a line: near 0)."""
    from scipy.ndimage import distance_transform_edt

    return float(distance_transform_edt(np.pad(mask, 1)).max() / np.sqrt(mask.sum()))


def candidates(dataset, min_area: float, max_fraction: float):
    """Instances usable as targets: not crowd, not cut by the photo's border, between
    ``min_area`` pixels and ``max_fraction`` of the photo, at most 45 % of its width and height."""
    out = []
    for inst in dataset.instances():
        if inst.image_path is None or inst.area < min_area or inst.area > max_fraction * inst.width * inst.height:
            continue
        x, y, w, h = inst.bbox
        if x < 2 or y < 2 or x + w > inst.width - 2 or y + h > inst.height - 2:
            continue
        if w > 0.45 * inst.width or h > 0.45 * inst.height:  # too large to move around in the view
            continue
        out.append(inst)
    return out


def select_json(data_root: Path, out_dir: Path) -> Path:
    import make_select_split

    data = json.loads((data_root / "coco-mini" / "annotations" / "instances_train.json").read_text())
    _, sel = make_select_split.split(data, 0.1, 0)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "instances_select.json"
    path.write_text(json.dumps(sel))
    return path


def main(argv=None) -> int:
    from tqdm import tqdm

    from picosam2.data import InstanceSet
    from picosam2.data.root import dataset_dir
    from picosam2.data.synthetic_video import make_sequence, write_davis_index, write_davis_sequence
    from picosam2.image_io import load_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", help="folder holding coco-mini/ (default: $PICOSAM2_DATA)")
    ap.add_argument("--split", choices=("select", "devval"), required=True)
    ap.add_argument("--select-json", help="instances_select.json of scripts/make_select_split.py (split 'select')")
    ap.add_argument("--out", required=True, help="output folder (DAVIS layout)")
    ap.add_argument("--n", type=int, default=30, help="number of sequences (default 30)")
    ap.add_argument("--frames", type=int, default=50, help="frames per sequence (default 50)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--two-objects", type=float, default=0.2, help="share of sequences with two targets")
    ap.add_argument("--thin", type=float, default=0.25, help="share of sequences whose target is thin")
    args = ap.parse_args(argv)

    coco = dataset_dir("coco-mini", args.data_root)
    if args.split == "devval":
        ann, images = coco / "annotations" / "instances_val.json", coco / "images" / "val"
    else:
        ann = Path(args.select_json) if args.select_json else select_json(coco.parent, Path(tempfile.mkdtemp()))
        images = coco / "images" / "train"
    dataset = InstanceSet(ann, [images])
    pool = candidates(dataset, min_area=1500, max_fraction=0.15)
    occluders = [i for i in dataset.instances() if i.image_path is not None and i.area >= 2000]
    if not pool:
        print(f"no usable instances in {ann}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    masks = {}

    def mask_of(inst):
        if inst.ann_id not in masks:
            masks[inst.ann_id] = dataset.mask(inst)
        return masks[inst.ann_id]

    thin_flags = {i.ann_id: thinness(mask_of(i)) < THIN for i in pool}
    thin_pool = [i for i in pool if thin_flags[i.ann_id]]
    thick_pool = [i for i in pool if not thin_flags[i.ann_id]]
    by_image: dict[int, list] = {}
    for i in pool:
        by_image.setdefault(i.image_id, []).append(i)

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        made = out / "meta.json"
        if not made.is_file() or "make_video_sequences" not in made.read_text()[-2000:]:
            print(f"{out} is not empty and not an output of this script: give a new folder", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    sequences = {}
    used: set[int] = set()
    bar = tqdm(total=args.n, desc=f"sequences ({args.split})", file=sys.stderr, disable=not sys.stderr.isatty())
    attempts = 0
    while len(sequences) < args.n and attempts < 10 * args.n:
        attempts += 1
        k = len(sequences)
        want_thin = thin_pool and (rng.random() < args.thin or not thick_pool)
        src = thin_pool if want_thin else thick_pool
        fresh = [i for i in src if i.image_id not in used] or src
        target = fresh[int(rng.integers(len(fresh)))]
        used.add(target.image_id)
        targets = [target]
        if rng.random() < args.two_objects:
            c0 = np.array(target.bbox[:2]) + np.array(target.bbox[2:]) / 2
            near = [
                i
                for i in by_image[target.image_id]
                if i.ann_id != target.ann_id
                and np.hypot(*(np.array(i.bbox[:2]) + np.array(i.bbox[2:]) / 2 - c0)) < 0.3 * target.width
            ]
            if near:
                targets.append(near[int(rng.integers(len(near)))])
        image = load_image(target.image_path)
        if image.shape[:2] != mask_of(target).shape:  # an EXIF-rotated photo: masks do not fit
            used.add(target.image_id)
            thick_pool = [i for i in thick_pool if i.image_id != target.image_id] or thick_pool
            thin_pool = [i for i in thin_pool if i.image_id != target.image_id]
            continue
        tmasks = [mask_of(i) for i in targets]
        if len(tmasks) == 2:
            tmasks[1] = tmasks[1] & ~tmasks[0]
            if tmasks[1].sum() < 500:
                targets, tmasks = targets[:1], tmasks[:1]
        others = [i for i in occluders if i.image_id != target.image_id]
        occ = None
        if others:
            o = others[int(rng.integers(len(others)))]
            occ_img = load_image(o.image_path)
            if occ_img.shape[:2] == (o.height, o.width):
                occ = (occ_img, dataset.mask(o))
        seq = make_sequence(image, tmasks, rng, frames=args.frames, occluder=occ)
        seq.meta.update(
            image_id=target.image_id,
            annotation_ids=[i.ann_id for i in targets],
            categories=[i.category_id for i in targets],
            thin=[bool(thin_flags[i.ann_id]) for i in targets],
        )
        name = f"{args.split}-{k:03d}"
        write_davis_sequence(out, name, seq)
        sequences[name] = seq.meta
        bar.update()
    bar.close()
    meta = {
        "made_by": "scripts/make_video_sequences.py",
        "split": args.split,
        "seed": args.seed,
        "n": args.n,
        "frames": args.frames,
        "annotations": ann.name,
    }
    write_davis_index(out, sequences, meta=meta)
    n_thin = sum(any(m["thin"]) for m in sequences.values())
    n_two = sum(m["num_objects"] > 1 for m in sequences.values())
    print(f"wrote {len(sequences)} sequences ({n_thin} thin, {n_two} with two objects) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
