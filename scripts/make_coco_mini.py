"""Rebuild coco-mini (the shipped weights' training and dev-val data) from an official COCO 2017 download.

    python scripts/make_coco_mini.py --coco COCO_DIR --out "$PICOSAM2_DATA/coco-mini"

COCO_DIR holds ``annotations/instances_train2017.json``, ``annotations/instances_val2017.json``,
``train2017/`` and ``val2017/`` (https://cocodataset.org/#download: 2017 Train images, 2017 Val
images, 2017 Train/Val annotations). The selection (image and annotation ids per split) ships in
``src/picosam2/data/coco_mini/``; each copied image is checked against the sha256 of the file the
documented figures were measured on, and a mismatch is reported (``--no-verify`` skips the check).
``--link`` hard-links the images instead of copying them (about 140 MB).
"""

from __future__ import annotations

import argparse
import sys

from picosam2.data.coco_mini import build
from picosam2.errors import PicoSAM2Error


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--coco", required=True, metavar="DIR", help="COCO 2017 folder (annotations/, train2017/, val2017/)"
    )
    ap.add_argument(
        "--out", required=True, metavar="DIR", help="coco-mini folder to create (must not exist or be empty)"
    )
    ap.add_argument("--link", action="store_true", help="hard-link the images instead of copying them")
    ap.add_argument("--no-verify", action="store_true", help="do not compare the images' sha256 with the definition")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        report = build(
            args.coco, args.out, link=args.link, verify=not args.no_verify, progress=False if args.quiet else None
        )
    except PicoSAM2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, c in report.counts.items():
        print(f"{split}: {c['images']} images, {c['annotations']} annotations")
    if report.mismatched:
        shown = ", ".join(report.mismatched[:5])
        print(
            f"warning: {len(report.mismatched)} image(s) differ from the files the documented figures were measured on "
            f"({shown}{', ...' if len(report.mismatched) > 5 else ''}); figures may differ slightly",
            file=sys.stderr,
        )
    print(f"coco-mini written to {report.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
