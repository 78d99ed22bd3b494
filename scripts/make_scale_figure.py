"""The README's picture of a scale-aware click: every window the click runs at, its mask and its
calibrated score, the chosen one framed in green, beside the single fixed window.

    python scripts/make_scale_figure.py --image src/picosam2/samples/dog.jpg --point 570 200 \
        --out docs/images/scale_aware_click.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="src/picosam2/samples/dog.jpg")
    ap.add_argument("--point", type=float, nargs=2, default=[570, 200], metavar=("X", "Y"))
    ap.add_argument("--weights", default=None, help="weights (default: shipped)")
    ap.add_argument("--out", default="docs/images/scale_aware_click.png")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from picosam2 import Predictor
    from picosam2.image_io import load_image, overlay
    from picosam2.io_utils import write_atomic

    image = load_image(args.image)
    point = [list(args.point)]
    every = Predictor.from_pretrained(args.weights, multimask=True).predict(image, points=point)
    chosen = Predictor.from_pretrained(args.weights).predict(image, points=point)
    fixed = Predictor.from_pretrained(args.weights, point_scales=None).predict(image, points=point)
    best = int(np.argmax(every.scores))
    panels = [(fixed.mask(0), fixed.windows[0], "one fixed window", None, False)]
    for k in range(len(every.windows)):
        panels.append((every.mask(k), every.windows[k], "candidate", float(every.scores[k]), k == best))
    assert chosen.windows[0] == every.windows[best], "multimask and the default disagree on the best window"

    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.1 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (mask, win, label, score, is_best) in zip(axes.flat, panels):
        ax.imshow(overlay(image, [mask], points=point))
        ax.add_patch(
            Rectangle(
                (win.x0, win.y0),
                win.width,
                win.height,
                fill=False,
                lw=2,
                ec="lime" if is_best else "white",
                ls="-" if is_best else "--",
            )
        )
        text = f"{label}: {win.width} px" + ("" if score is None else f", score {score:.2f}")
        text += f"\n{int(mask.sum()):,} mask px" + ("  <- returned" if is_best else "")
        ax.set_title(text, fontsize=10, color="green" if is_best else "black")
    fig.suptitle(
        f"One click at ({args.point[0]:g}, {args.point[1]:g}): every window size in one batch, "
        "the best calibrated score returned",
        fontsize=12,
    )
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=80), suffix=".png")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
