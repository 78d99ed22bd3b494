"""Synthetic video sequences with exact masks, made from one photo and its instance masks.

No dataset of the project has video with per-frame masks, so development sequences are made:
the target objects are cut out of a photo along their ground-truth masks, the hole they leave is
filled from the surrounding pixels, and every frame re-composes the scene through a moving
virtual camera with the objects on top, each with its own motion. The masks are therefore
exact: a frame's mask is the cut-out's alpha after the same warp, minus what covers it.

What a sequence can contain (each drawn from the seeded ``rng``):

* camera pans and zooms (the view is a moving, zooming, optionally rotating window on the
  photo; outside the photo the scene continues mirrored);
* object motion relative to the scene (``moving``) or none (``static``: the object is glued to
  the scene and only the camera moves); object scale change and in-plane rotation;
* a speed class: ``slow`` (2-5 px/frame on screen), ``medium`` (6-12) or ``fast`` (15-30);
* a global brightness change (gain 0.55-1.45, smooth over time);
* an occluder (another photo's object) crossing over the target;
* the target leaving the frame and entering it again.

Frame 0 always shows every target whole and unoccluded (the first-frame prompt is taken there).
:func:`make_sequence` makes one sequence; :func:`write_davis` writes sequences in the DAVIS
layout (``JPEGImages/480p/SEQ/00000.jpg``, ``Annotations/480p/SEQ/00000.png``) read by
:func:`picosam2.eval.video.read_davis`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

#: default frame size (width, height): DAVIS "480p"
FRAME_SIZE = (854, 480)

#: screen speed of the targets per speed class, pixels per frame (low, high)
SPEEDS = {"slow": (2.0, 5.0), "medium": (6.0, 12.0), "fast": (15.0, 30.0)}


@dataclass
class SyntheticSequence:
    """``frames``: T x H x W x 3 uint8 RGB; ``labels``: T x H x W uint8 (0 background, k = object
    k, 1-based in the order of the masks given); ``meta``: what was drawn (JSON-ready)."""

    frames: np.ndarray
    labels: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def num_objects(self) -> int:
        return int(self.meta.get("num_objects", int(self.labels.max())))


# -- geometry --------------------------------------------------------------------------------


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _affine(lin: np.ndarray, src_point, dst_point) -> np.ndarray:
    """3x3 matrix of ``x -> lin @ (x - src_point) + dst_point``."""
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = np.asarray(dst_point, float) - lin @ np.asarray(src_point, float)
    return m


def _camera(center, zoom: float, theta: float, size) -> np.ndarray:
    """Scene -> screen: the scene point ``center`` lands in the middle of the frame, scene
    pixels are ``zoom`` screen pixels, the view is turned by ``theta`` (radians)."""
    w, h = size
    return _affine(zoom * _rot(-theta), center, (w / 2.0, h / 2.0))


def _warp(img, forward: np.ndarray, size, resample):
    """PIL warp of ``img`` by the source -> output matrix ``forward``."""
    from PIL import Image

    inv = np.linalg.inv(forward)
    coeffs = tuple(float(v) for v in inv[:2].reshape(-1))
    return img.transform(size, Image.Transform.AFFINE, coeffs, resample=resample, fillcolor=0)


def _catmull_rom(keys: np.ndarray, times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Catmull-Rom interpolation of keyframe values ``keys`` (n x d) at ``times`` (increasing)."""
    keys = np.asarray(keys, float)
    n = len(keys)
    out = np.empty((len(t), keys.shape[1]))
    for k, tt in enumerate(t):
        j = int(np.clip(np.searchsorted(times, tt, side="right") - 1, 0, n - 2))
        u = (tt - times[j]) / max(times[j + 1] - times[j], 1e-9)
        p0, p1, p2, p3 = keys[max(j - 1, 0)], keys[j], keys[j + 1], keys[min(j + 2, n - 1)]
        out[k] = 0.5 * (
            2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * u**3
        )
    return out


# -- scene -----------------------------------------------------------------------------------


def fill_holes(image: np.ndarray, hole: np.ndarray, blur: float = 3.0) -> np.ndarray:
    """``image`` with the ``hole`` pixels replaced by the nearest pixel outside it, smoothed: the
    scene without the cut-out objects (a plain fill; it only has to hide their shapes)."""
    from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter

    if not hole.any():
        return image.copy()
    hole = binary_dilation(hole, iterations=3)
    _, (iy, ix) = distance_transform_edt(hole, return_indices=True)
    filled = image[iy, ix].astype(np.float32)
    smooth = np.stack([gaussian_filter(filled[..., c], blur) for c in range(3)], axis=-1)
    out = image.astype(np.float32)
    out[hole] = smooth[hole]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _mask_geometry(mask: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Centre of the mask's box, its half-diagonal, and its box width and height (pixels)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    w, h = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
    center = np.array([(cols[0] + cols[-1] + 1) / 2.0, (rows[0] + rows[-1] + 1) / 2.0])
    return center, 0.5 * math.hypot(w, h), float(w), float(h)


def _random_walk(rng, start, n_keys: int, step: float, lo, hi) -> np.ndarray:
    """Keyframe positions: steps of length ``step`` in random directions, reflected into [lo, hi]."""
    pts = [np.asarray(start, float)]
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    for _ in range(n_keys - 1):
        a = rng.uniform(0, 2 * math.pi)
        p = pts[-1] + step * rng.uniform(0.6, 1.4) * np.array([math.cos(a), math.sin(a)])
        for d in range(2):
            if hi[d] <= lo[d]:
                p[d] = (lo[d] + hi[d]) / 2
                continue
            span = hi[d] - lo[d]
            q = (p[d] - lo[d]) % (2 * span)
            p[d] = lo[d] + (q if q <= span else 2 * span - q)
        pts.append(p)
    return np.array(pts)


def make_sequence(
    image: np.ndarray,
    masks: list[np.ndarray],
    rng: np.random.Generator,
    frames: int = 50,
    size: tuple[int, int] = FRAME_SIZE,
    occluder: tuple[np.ndarray, np.ndarray] | None = None,
    speed: str | None = None,
    moving: bool | None = None,
    rotation: bool | None = None,
    brightness: bool | None = None,
    leave: bool | None = None,
    occlusion: bool | None = None,
) -> SyntheticSequence:
    """One synthetic sequence following the objects ``masks`` (full-size boolean masks of
    ``image``, H x W x 3 uint8; 1-based object ids in this order, the first on top).

    ``occluder``: (image, mask) of another object that crosses over the first target (used when
    ``occlusion`` is drawn true). Any of ``speed``/``moving``/``rotation``/``brightness``/
    ``leave``/``occlusion`` left ``None`` is drawn from ``rng``."""
    from PIL import Image

    if frames < 2:
        raise UsageError("a sequence needs at least 2 frames")
    masks = [np.asarray(m, bool) for m in masks]
    if not masks or any(not m.any() for m in masks):
        raise UsageError("every target needs a non-empty mask")
    img_h, img_w = image.shape[:2]
    out_w, out_h = size

    speed = speed or str(rng.choice(list(SPEEDS), p=[0.4, 0.35, 0.25]))
    moving = bool(rng.random() < 0.7) if moving is None else moving
    rotation = bool(rng.random() < 0.5) if rotation is None else rotation
    brightness = bool(rng.random() < 0.5) if brightness is None else brightness
    leave = bool(rng.random() < 0.3) if leave is None else leave
    occlusion = (occluder is not None and bool(rng.random() < 0.4)) if occlusion is None else occlusion
    occlusion = occlusion and occluder is not None

    geo = [_mask_geometry(m) for m in masks]
    centers = np.array([g[0] for g in geo])
    # zoom: the view stays inside the photo (at most 70 % of its height, 95 % of its width), and
    # no target is wider or taller than 65 % of the frame, also at the largest zoom reached later
    max_w = max(g[2] for g in geo)
    max_h = max(g[3] for g in geo)
    zoom_in = 1.0 if speed == "slow" else 1.4  # the largest zoom-in during the sequence
    zoom0 = min(
        max(out_h / (0.7 * img_h), out_w / (0.95 * img_w)),
        0.65 * out_w / max_w / zoom_in,
        0.65 * out_h / max_h / zoom_in,
    )

    key_every = int(rng.integers(8, 13))
    n_keys = int(math.ceil((frames - 1) / key_every)) + 2
    key_t = np.arange(n_keys) * float(key_every)
    t = np.arange(frames, dtype=float)
    v_lo, v_hi = SPEEDS[speed]
    step = rng.uniform(v_lo, v_hi) * key_every  # screen pixels between keyframes

    zooms = zoom0 * np.exp(rng.uniform(0.0, math.log(zoom_in) + 1e-9, n_keys))
    zooms[0] = zoom0
    thetas = np.deg2rad(rng.uniform(-12, 12, n_keys)) if rotation else np.zeros(n_keys)
    thetas[0] = 0.0

    # screen path of the first target (margins keep it inside the frame)
    r0 = geo[0][1] * zoom0
    margin = np.array([min(r0 * 0.6, out_w * 0.4), min(r0 * 0.6, out_h * 0.4)])
    lo, hi = margin, np.array([out_w, out_h]) - margin
    # the camera's range over the photo at the starting zoom (centred where the view is larger)
    view = np.array([out_w, out_h]) / zoom0 / 2
    cam_lo = np.minimum(view, [img_w / 2, img_h / 2])
    cam_hi = np.maximum(np.array([img_w, img_h]) - view, [img_w / 2, img_h / 2])
    group_center = np.clip(centers.mean(axis=0), cam_lo, cam_hi)
    start = np.array([out_w / 2, out_h / 2]) + zoom0 * (centers[0] - group_center)
    if not moving:
        # glued to the scene: where the first target can be on screen with the camera in range
        mid = np.array([out_w / 2, out_h / 2])
        lo = np.maximum(lo, mid + zoom0 * (centers[0] - cam_hi))
        hi = np.minimum(hi, mid + zoom0 * (centers[0] - cam_lo))
        lo, hi = np.minimum(lo, start), np.maximum(hi, start)
    screen = _random_walk(rng, start, n_keys, step, lo, hi)

    leave_keys: list[int] = []
    last_in = (frames - 1) // key_every  # the last keyframe inside the sequence
    if leave and last_in >= 3:
        # out at one or two keyframes, back in view at the next one, all inside the sequence
        span = 2 if (rng.random() < 0.5 and last_in >= 4) else 1
        j = int(rng.integers(2, last_in - span + 1))
        side = int(rng.integers(4))
        leave_keys = list(range(j, j + span))
        for jj in leave_keys:
            out = zooms[jj] * geo[0][1] * 1.4 + 20
            p = screen[jj].copy()
            if side == 0:
                p[0] = -out
            elif side == 1:
                p[0] = out_w + out
            elif side == 2:
                p[1] = -out
            else:
                p[1] = out_h + out
            screen[jj] = p

    # camera centres and the targets' displacements in the scene (keyframes)
    n_obj = len(masks)
    disp = np.zeros((n_obj, n_keys, 2))
    scales = np.ones((n_obj, n_keys))
    spins = np.zeros((n_obj, n_keys))
    cam = np.zeros((n_keys, 2))
    cam[0] = group_center
    if moving:
        # the camera wanders over the photo; the targets follow their own screen paths
        cam_step = rng.uniform(0.3, 0.8) * step
        cam = _random_walk(rng, group_center, n_keys, cam_step / zoom0, cam_lo, cam_hi)
        for i in range(n_obj):
            path = (
                screen
                if i == 0
                else _random_walk(
                    rng, np.array([out_w / 2, out_h / 2]) + zoom0 * (centers[i] - group_center), n_keys, step, lo, hi
                )
            )
            for j in range(n_keys):
                to_scene = np.linalg.inv(_camera(cam[j], zooms[j], thetas[j], size))
                disp[i, j] = (to_scene @ np.array([*path[j], 1.0]))[:2] - centers[i]
            disp[i, 0] = 0.0
            scales[i] = np.exp(rng.uniform(-0.3, 0.3, n_keys))
            scales[i, 0] = 1.0
            if rotation:
                spins[i] = np.deg2rad(rng.uniform(-25, 25, n_keys))
                spins[i, 0] = 0.0
    else:
        # the targets are glued to the scene: the camera moves so the first lands on its path;
        # to leave, the target moves out while the camera holds still (leaving by the camera
        # alone would only show the mirrored scene)
        for j in range(n_keys):
            if j in leave_keys:
                cam[j] = cam[j - 1]
                to_scene = np.linalg.inv(_camera(cam[j], zooms[j], thetas[j], size))
                disp[0, j] = (to_scene @ np.array([*screen[j], 1.0]))[:2] - centers[0]
                continue
            lin = zooms[j] * _rot(-thetas[j])
            cam[j] = centers[0] - np.linalg.solve(lin, screen[j] - np.array([out_w / 2, out_h / 2]))
        cam[0] = group_center

    cam_t = _catmull_rom(cam, key_t, t)
    zoom_t = np.exp(_catmull_rom(np.log(zooms)[:, None], key_t, t)[:, 0])
    theta_t = _catmull_rom(thetas[:, None], key_t, t)[:, 0]
    disp_t = [_catmull_rom(disp[i], key_t, t) for i in range(n_obj)]
    scale_t = [np.exp(_catmull_rom(np.log(scales[i])[:, None], key_t, t)[:, 0]) for i in range(n_obj)]
    spin_t = [_catmull_rom(spins[i][:, None], key_t, t)[:, 0] for i in range(n_obj)]

    if brightness:
        gains = np.exp(rng.uniform(math.log(0.55), math.log(1.45), n_keys))
        gains[0] = 1.0
        gain_t = np.exp(_catmull_rom(np.log(gains)[:, None], key_t, t)[:, 0])
    else:
        gain_t = np.ones(frames)

    # the scene without the targets, continued mirrored around the photo
    pad = int(math.ceil(max(out_w, out_h) / max(zoom_t.min(), 0.05) + max(np.abs(np.concatenate(disp_t)).max(), 0)))
    pad = min(pad, 4 * max(img_w, img_h))
    background = fill_holes(image, np.logical_or.reduce(masks))
    background = np.pad(background, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    bg_img = Image.fromarray(background)
    shift = _affine(np.eye(2), (pad, pad), (0, 0))  # padded -> scene coordinates
    cutouts = [Image.fromarray(np.dstack([image, m.astype(np.uint8) * 255])) for m in masks]

    occ = None
    if occlusion:
        occ_img, occ_mask = occluder
        occ_geo = _mask_geometry(np.asarray(occ_mask, bool))
        t_mid = int(rng.integers(max(8, frames // 4), max(9, frames - 6)))
        dur = float(rng.uniform(8, 20))
        target_at_mid = _camera(cam_t[t_mid], zoom_t[t_mid], theta_t[t_mid], size) @ np.array(
            [*(centers[0] + disp_t[0][t_mid]), 1.0]
        )
        target_h = geo[0][3] * zoom_t[t_mid] * scale_t[0][t_mid]
        occ_zoom = rng.uniform(0.7, 1.5) * target_h / occ_geo[3]
        travel = 2.2 * (occ_geo[1] * occ_zoom + geo[0][1] * zoom_t[t_mid])
        a = rng.uniform(0, 2 * math.pi)
        vel = travel / dur * np.array([math.cos(a), math.sin(a)])
        occ = {
            "cutout": Image.fromarray(np.dstack([occ_img, np.asarray(occ_mask, np.uint8) * 255])),
            "center": occ_geo[0],
            "zoom": occ_zoom,
            "at_mid": target_at_mid[:2],
            "vel": vel,
            "t_mid": t_mid,
        }

    out_frames = np.empty((frames, out_h, out_w, 3), np.uint8)
    labels = np.zeros((frames, out_h, out_w), np.uint8)
    for k in range(frames):
        camera = _camera(cam_t[k], zoom_t[k], theta_t[k], size)
        frame = np.asarray(_warp(bg_img, camera @ shift, size, Image.Resampling.BILINEAR), np.float32)
        taken = np.zeros((out_h, out_w), bool)
        layers = []
        for i in range(n_obj):
            obj = _affine(scale_t[i][k] * _rot(spin_t[i][k]), centers[i], centers[i] + disp_t[i][k])
            warped = np.asarray(_warp(cutouts[i], camera @ obj, size, Image.Resampling.BILINEAR), np.float32)
            layers.append(warped)
        for i in reversed(range(n_obj)):  # the first target ends on top
            alpha = layers[i][..., 3:4] / 255.0
            frame = frame * (1 - alpha) + layers[i][..., :3] * alpha
        for i in range(n_obj):
            m = (layers[i][..., 3] >= 128) & ~taken
            labels[k][m] = i + 1
            taken |= m
        if occ is not None:
            pos = occ["at_mid"] + occ["vel"] * (k - occ["t_mid"])
            lin = occ["zoom"] * np.eye(2)
            warped = np.asarray(_warp(occ["cutout"], _affine(lin, occ["center"], pos), size, Image.Resampling.BILINEAR))
            alpha = warped[..., 3:4].astype(np.float32) / 255.0
            frame = frame * (1 - alpha) + warped[..., :3] * alpha
            labels[k][warped[..., 3] >= 128] = 0
        out_frames[k] = np.clip(frame * gain_t[k] + 0.5, 0, 255).astype(np.uint8)

    visible = (labels.reshape(frames, -1)[:, :, None] == np.arange(1, n_obj + 1)).any(axis=1)
    meta = {
        "num_objects": n_obj,
        "frames": frames,
        "size": [out_w, out_h],
        "speed": speed,
        "screen_speed_px_per_frame": round(step / key_every, 2),
        "moving": moving,
        "rotation": rotation,
        "brightness": brightness,
        "leave": bool(leave_keys),
        "occlusion": occ is not None,
        "keyframe_every": key_every,
        "zoom0": round(float(zoom0), 4),
        "frames_without_object": [int((~visible[:, i]).sum()) for i in range(n_obj)],
    }
    if occ is not None:
        meta["occluder_mid_frame"] = occ["t_mid"]
    return SyntheticSequence(out_frames, labels, meta)


# -- DAVIS layout ----------------------------------------------------------------------------


def davis_palette() -> list[int]:
    """The DAVIS-2017 annotation palette (the PASCAL VOC colour map): 256 RGB triples, flat."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def save_annotation(labels: np.ndarray, path: str | os.PathLike, palette: bool) -> None:
    """One annotation PNG: 0/255 grey for a single object (``palette=False``), else a palette PNG
    of object ids (DAVIS-2017)."""
    from PIL import Image

    labels = np.asarray(labels, np.uint8)
    if palette:
        img = Image.fromarray(labels, mode="P")
        img.putpalette(davis_palette())
    else:
        img = Image.fromarray(np.where(labels > 0, 255, 0).astype(np.uint8), mode="L")
    img.save(path)


def write_davis_sequence(
    root: str | os.PathLike, name: str, seq: SyntheticSequence, resolution: str = "480p", quality: int = 92
) -> None:
    """Write one sequence under ``root`` in the DAVIS layout (``JPEGImages/<resolution>/<name>``,
    ``Annotations/<resolution>/<name>``); each folder is written under a temporary name and
    renamed into place."""
    import shutil

    from PIL import Image

    root = Path(root)
    palette = seq.num_objects > 1
    for base, kind in ((root / "JPEGImages" / resolution, "jpg"), (root / "Annotations" / resolution, "png")):
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for k in range(len(seq.frames)):
            if kind == "jpg":
                Image.fromarray(seq.frames[k]).save(tmp / f"{k:05d}.jpg", quality=quality)
            else:
                save_annotation(seq.labels[k], tmp / f"{k:05d}.png", palette)
        final = base / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)


def write_davis_index(
    root: str | os.PathLike, metas: dict[str, dict], image_set: str = "val", meta: dict | None = None
) -> None:
    """``ImageSets/2017/<image_set>.txt`` listing the sequences and ``meta.json`` describing them."""
    root = Path(root)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / f"{image_set}.txt").write_text("".join(f"{n}\n" for n in metas))
    info = {"sequences": metas, **(meta or {})}
    (root / "meta.json").write_text(json.dumps(info, indent=1) + "\n")


def write_davis(
    root: str | os.PathLike,
    sequences: dict[str, SyntheticSequence],
    resolution: str = "480p",
    image_set: str = "val",
    meta: dict | None = None,
    quality: int = 92,
) -> Path:
    """Write ``{name: sequence}`` under ``root`` in the DAVIS layout, with
    ``ImageSets/2017/<image_set>.txt`` listing the names and ``meta.json`` describing them."""
    for name, seq in sequences.items():
        write_davis_sequence(root, name, seq, resolution, quality)
    write_davis_index(root, {n: s.meta for n, s in sequences.items()}, image_set, meta)
    return Path(root)


__all__ = [
    "FRAME_SIZE",
    "SPEEDS",
    "SyntheticSequence",
    "davis_palette",
    "fill_holes",
    "make_sequence",
    "save_annotation",
    "write_davis",
    "write_davis_index",
    "write_davis_sequence",
]
