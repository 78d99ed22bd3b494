"""Prompt rules: how a ground-truth mask becomes a prompt. Each takes the full-size boolean
mask (and the COCO ``bbox`` where it needs it) and returns image pixel coordinates.

* :func:`paper_point` – the reference code's rule: the centre of the mask's pixel bounding box,
  or the nearest mask pixel when that centre is not on the mask;
* :func:`interior_point` – the field's 1-click rule: the mask pixel farthest from the mask's
  border (argmax of the Euclidean distance transform; the image border counts as border);
* :func:`random_point` – a uniformly drawn mask pixel (training);
* :func:`box_prompt` – the ground-truth box as ``(x0, y0, x1, y1)``.

Points are pixel indices ``(x, y)`` (the pixel's integer coordinate).
"""

from __future__ import annotations

import numpy as np

from ..errors import PicoSAM2Error


class EmptyMaskError(PicoSAM2Error, ValueError):
    """The mask has no pixel: no point prompt can be drawn from it."""


def _require_pixels(mask: np.ndarray) -> None:
    if not mask.any():
        raise EmptyMaskError("empty mask")


def paper_point(mask: np.ndarray, bbox=None) -> tuple[int, int]:
    """The reference code's point: the centre ``((min_x + max_x) // 2, (min_y + max_y) // 2)`` of
    the decoded mask's pixel extent (not the json ``bbox``, which can differ by a pixel), moved to
    the nearest mask pixel (Euclidean; ties to the first in row-major order) when that centre is
    not on the mask. ``bbox`` is accepted for a uniform rule signature and ignored."""
    _require_pixels(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    cx = (int(cols[0]) + int(cols[-1])) // 2
    cy = (int(rows[0]) + int(rows[-1])) // 2
    if mask[cy, cx]:
        return cx, cy
    ys, xs = np.nonzero(mask)
    d2 = (xs - cx) ** 2 + (ys - cy) ** 2
    k = int(np.argmin(d2))
    return int(xs[k]), int(ys[k])


def interior_point(mask: np.ndarray, bbox=None) -> tuple[int, int]:
    """The most interior mask pixel: argmax of the distance transform (first in row-major
    order on ties). Pixels outside the image count as background."""
    from scipy.ndimage import distance_transform_edt

    _require_pixels(mask)
    # Only the mask's bounding box (plus a background ring) matters: the nearest background pixel
    # of any mask pixel is never farther than the ring, and row-major order is kept, so the result
    # is the same as on the whole image, at a fraction of the cost.
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    sub = mask[y0 : int(rows[-1]) + 1, x0 : int(cols[-1]) + 1]
    dist = distance_transform_edt(np.pad(sub, 1))[1:-1, 1:-1]
    k = int(np.argmax(dist))
    y, x = divmod(k, sub.shape[1])
    return x + x0, y + y0


def random_point(mask: np.ndarray, bbox=None, rng: np.random.Generator | None = None) -> tuple[int, int]:
    """A uniformly random mask pixel."""
    _require_pixels(mask)
    rng = rng or np.random.default_rng()
    ys, xs = np.nonzero(mask)
    k = int(rng.integers(len(xs)))
    return int(xs[k]), int(ys[k])


def box_prompt(mask: np.ndarray | None, bbox) -> tuple[float, float, float, float]:
    """The COCO box ``(x, y, w, h)`` as corners ``(x0, y0, x1, y1)``."""
    x, y, w, h = (float(v) for v in bbox)
    return x, y, x + w, y + h


PROMPT_RULES = {
    "paper": paper_point,
    "interior": interior_point,
    "random": random_point,
    "box": box_prompt,
}
