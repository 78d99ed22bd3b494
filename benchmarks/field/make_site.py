"""Build the simulated site of the field-learning benchmark from coco-mini.

A camera installed at dusk behind a tinted, slightly soft window: every photo is darkened (gamma
1.6 then x 0.55), given a blue cast, blurred (Gaussian, radius 1.2 px), given sensor noise
(sigma 3 % of full scale, seeded by the image id) and saved as JPEG quality 85. The labels are the
photos' own COCO instances.

* ``site-train``: the shifted photos of the first ``--train-images`` COCO train2017 images of the
  coco-mini train pool (those labelled for all classes), in id order;
* ``site-test``: the shifted coco-mini dev-val photos (103 images, 953 instances), which neither the
  base weights nor the fine-tune ever see unshifted or shifted;
* the unshifted dev-val split stays the reference ("no worse elsewhere").

    python benchmarks/field/make_site.py --data-root DATA --out runs/field/site

writes OUT/{train,test}/images/*.jpg and OUT/{train,test}/instances.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

CAST = np.array([0.85, 0.95, 1.25], dtype=np.float32)


def dusk(image: np.ndarray, seed: int) -> np.ndarray:
    """The site's shift of one uint8 RGB photo."""
    x = (np.asarray(image, dtype=np.float32) / 255.0) ** 1.6 * 0.55 * CAST
    x = np.asarray(Image.fromarray(np.clip(x * 255, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)))
    noise = np.random.default_rng(seed).normal(0.0, 0.03 * 255, x.shape)
    return np.clip(x.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def write_split(ann: dict, image_ids: list[int], src: Path, out: Path) -> dict:
    (out / "images").mkdir(parents=True, exist_ok=True)
    keep = set(image_ids)
    images = [im for im in ann["images"] if im["id"] in keep]
    for im in images:
        dst = out / "images" / im["file_name"]
        if not dst.exists():
            photo = np.asarray(Image.open(src / im["file_name"]).convert("RGB"))
            Image.fromarray(dusk(photo, im["id"])).save(dst, quality=85)
    sub = {
        "info": {"description": "simulated dusk site from coco-mini (benchmarks/field/make_site.py)"},
        "images": images,
        "annotations": [a for a in ann["annotations"] if a["image_id"] in keep],
        "categories": ann["categories"],
    }
    (out / "instances.json").write_text(json.dumps(sub))
    return {"images": len(images), "instances": len(sub["annotations"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True, help="folder holding coco-mini/")
    ap.add_argument("--out", required=True)
    ap.add_argument("--train-images", type=int, default=300)
    a = ap.parse_args()
    coco = Path(a.data_root) / "coco-mini"
    out = Path(a.out)
    train = json.loads((coco / "annotations" / "instances_train.json").read_text())
    # train2017 images of the pool (labelled for every class), by id
    ids = sorted(im["id"] for im in train["images"] if "train2017" in str(im.get("coco_url", "")))
    counts = {"train": write_split(train, ids[: a.train_images], coco / "images" / "train", out / "train")}
    val = json.loads((coco / "annotations" / "instances_val.json").read_text())
    counts["test"] = write_split(val, [im["id"] for im in val["images"]], coco / "images" / "val", out / "test")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
