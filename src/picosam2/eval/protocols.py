"""The two evaluation protocols.

``paper`` (the PicoSAM2 paper's "Track A"): the first ``N`` (default 1000) non-crowd instances in
pycocotools ``imgToAnns`` order (images in the json's order); the prompt is the paper point
(:func:`picosam2.data.paper_point`) and its window the reference clip-and-stretch crop
(``prompts.point_window(mode="paper")``); the score is the IoU of the 96 x 96 window mask
(``logit > 0``) against the ground truth cut to the same window (``prompts.crop_mask``).

``full`` (the field's protocol, as EfficientViT-SAM / EdgeSAM / NanoSAM): every non-crowd
instance (or the first ``limit``); the prompt is the most interior mask point
(:func:`picosam2.data.interior_point`, window ``centered``) or the ground-truth box
(``prompts.box_window``); the window's logits are pasted back into the full image
(``prompts.paste_mask``) and scored against the full ground-truth mask.

With ``prompt="box"`` the paper protocol scores the box window instead (IoU inside the window).

Scale-aware clicks (``point_scales``, full protocol, point prompt only): every click is tried
at several centred window sizes (``"auto"``: :func:`picosam2.prompts.auto_point_scales`, or a
list of sides) in one batch; the chosen mask is the one with the highest predicted IoU (quality
head) or, for weights without one, the no-score border rule of :mod:`picosam2.selection` (or their
score calibration, when ``calibrate-scores`` fitted one: the network's score feature is then 0). Each
sample keeps every candidate's window side, real full-image IoU and score, so the report can
give the oracle (best candidate per click), the fixed-window figures and how well the score
ranks masks (Spearman).

A *window model* is anything with ``predict_windows(image, windows) -> (N, 96, 96) logits``:
:class:`picosam2.Predictor`, the baselines of :mod:`picosam2.eval.baselines`, or the SAM 2.1
teacher adapter :class:`picosam2.teacher.TeacherWindowModel`. A model whose ``takes_points`` is
true also gets ``points=`` (the point prompts, image pixels): SAM 2.1 is clicked there.

Instances that cannot be scored are counted, never fatal: ``missing_images`` (only with
``skip_missing``; otherwise the first missing file is an error), ``bad_images`` (unreadable, or
not the width x height the json gives), ``degenerate_polygons``
(undecodable segmentation), ``empty_masks`` (decodes to no pixel), ``bad_prompts`` (e.g. a zero-size
box). They are left out of every mean. The instance list is taken first (the first ``N``) and bad
ones are then dropped, so the paper protocol scores *at most* ``N`` instances.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np

from ..data import DataError, InstanceSet, box_prompt, interior_point, paper_point
from ..data.coco import Instance
from ..data.prompt_rules import EmptyMaskError
from ..errors import UsageError
from ..image_io import ImageError, check_pixels, load_image
from ..prompts import (
    MODEL_SIZE,
    PromptError,
    Window,
    box_window,
    crop_mask,
    parse_point_scales,
    paste_mask,
    point_scales_for,
    point_window,
    point_windows,
    refine_window,
)
from ..selection import choose_candidate, click_features
from . import metrics

PROTOCOLS = ("paper", "full")
PROMPTS = ("point", "box")
PAPER_DEFAULT_N = 1000
SKIP_KEYS = ("missing_images", "bad_images", "degenerate_polygons", "empty_masks", "bad_prompts")


def load_dataset_image(path) -> np.ndarray:
    """An annotated image as (H, W, 3) uint8 *as stored*: the EXIF orientation tag is ignored,
    because COCO-format annotations are drawn on the stored pixels (as pycocotools and the
    reference code read them)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            check_pixels(img, name=str(path))  # too large: counted as a bad image, never decoded
            img.load()
            exif = img.getexif()
            if exif.get(0x0112, 1) != 1:
                del exif[0x0112]  # the cached EXIF that load_image's exif_transpose reads
            return load_image(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, MemoryError) as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from exc


def prompt_rule_name(protocol: str, prompt: str) -> str:
    """Name of the prompt rule (``picosam2.data.PROMPT_RULES`` key) a protocol uses."""
    check_protocol(protocol, prompt)
    if prompt == "box":
        return "box"
    return "paper" if protocol == "paper" else "interior"


def window_rule(protocol: str, prompt: str) -> str:
    """One sentence saying how a prompt becomes a window under ``protocol``."""
    check_protocol(protocol, prompt)
    if prompt == "box":
        return "box: square of 1.2 x the longer box side, centred on the box, resized to 96"
    if protocol == "paper":
        return "paper: 96 px square around the point clipped to the image, stretched to 96"
    return "centered: 96 px square centred on the point, padded past the border"


def check_protocol(protocol: str, prompt: str) -> None:
    """Raise :class:`~picosam2.errors.UsageError` for an unknown protocol or prompt kind."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if prompt not in PROMPTS:
        raise UsageError(f"unknown prompt {prompt!r}; use one of {', '.join(PROMPTS)}")


def make_prompt(protocol: str, prompt: str, mask: np.ndarray, bbox) -> tuple:
    """The prompt of an instance: a point ``(x, y)`` or a box ``(x0, y0, x1, y1)``."""
    rule = prompt_rule_name(protocol, prompt)
    if rule == "paper":
        return paper_point(mask, bbox)
    if rule == "interior":
        return interior_point(mask, bbox)
    return box_prompt(mask, bbox)


def make_window(protocol: str, prompt: str, value, image_size: tuple[int, int]) -> Window:
    """The model window of a prompt under a protocol (the one place protocols choose windows)."""
    check_protocol(protocol, prompt)
    if prompt == "box":
        return box_window(value, image_size)
    mode = "paper" if protocol == "paper" else "centered"
    return point_window(value[0], value[1], image_size, window_size=MODEL_SIZE, mode=mode)


def prepare_instance(dataset: InstanceSet, inst: Instance, protocol: str, prompt: str, skipped: Counter):
    """Ground-truth mask, prompt and window of one instance, or None after counting why it is
    skipped in ``skipped`` (degenerate polygon, empty mask, unusable prompt)."""
    try:
        gt = dataset.mask(inst)
    except DataError:
        skipped["degenerate_polygons"] += 1
        return None
    height, width = gt.shape
    try:
        value = make_prompt(protocol, prompt, gt, inst.bbox)
        win = make_window(protocol, prompt, value, (width, height))
    except EmptyMaskError:
        skipped["empty_masks"] += 1
        return None
    except PromptError:
        skipped["bad_prompts"] += 1
        return None
    if not gt.any():
        skipped["empty_masks"] += 1  # a box prompt does not look at the mask
        return None
    return gt, value, win


def instance_list(dataset: InstanceSet, protocol: str, limit: int | None) -> list[Instance]:
    """The instances a protocol scores: paper = first ``limit`` (default 1000), full = all or ``limit``."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if protocol == "paper" and limit is None:
        limit = PAPER_DEFAULT_N
    return dataset.instances(include_crowd=False, limit=limit)


@dataclass
class Sample:
    """One scored instance."""

    ann_id: int
    image_id: int
    category_id: int
    area: float
    prompt: tuple
    window: Window
    iou: float
    score: float = 0.0
    #: COCO RLE of the full-image mask (``counts`` as str), when asked for.
    rle: dict | None = None
    #: COCO RLE of the 96 x 96 window mask (paper protocol), when asked for.
    window_rle: dict | None = None
    #: scale-aware clicks: every candidate as ``(window side, full-image IoU, score)``
    candidates: list[tuple[int, float, float]] | None = None
    #: scale-aware clicks: which candidate was chosen (before any coarse-to-fine refinement)
    chosen_index: int | None = None
    #: scale-aware clicks, when asked: every candidate's :func:`~picosam2.selection.click_features`
    #: (the network's own score, before any calibration), (K, F)
    click_features: np.ndarray | None = None

    @classmethod
    def of(cls, inst: Instance, prompt, window: Window, iou: float, score: float) -> Sample:
        """The sample of an instance scored with ``prompt`` in ``window``."""
        return cls(
            ann_id=inst.ann_id,
            image_id=inst.image_id,
            category_id=inst.category_id,
            area=inst.area,
            prompt=tuple(float(v) for v in prompt),
            window=window,
            iou=iou,
            score=score,
        )


@dataclass
class EvalResult:
    """Per-instance samples and skip counts of one evaluation, with their summary."""

    protocol: str
    prompt: str
    samples: list[Sample] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    requested: int = 0
    elapsed_s: float = 0.0
    #: window logits of each sample, in ``samples`` order (float16), if kept
    logits: np.ndarray | None = None
    #: scale-aware clicks: ``"auto"`` or the window sides tried (None: one window)
    point_scales: str | list[int] | None = None
    #: keep each click's candidate features on its sample (fitting a score calibration)
    keep_features: bool = False

    @property
    def per_instance(self) -> dict[int, float]:
        """Annotation id -> IoU of every scored instance."""
        return {s.ann_id: s.iou for s in self.samples}

    def summary(self) -> dict:
        """mIoU, paper mAP and counts per size class (plus the click-scale summary when candidates were kept)."""
        out = metrics.summarize(self.per_instance, {s.ann_id: s.area for s in self.samples})
        if any(s.candidates for s in self.samples):
            out["point_scales"] = metrics.scale_summary(self.samples, self.point_scales)
        return out


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a boolean mask, ``counts`` as str (JSON-ready)."""
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """Boolean mask of a COCO RLE (``counts`` str/bytes, or an uncompressed list)."""
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if isinstance(rle.get("counts"), list):
            h, w = rle["size"]
            rle = mask_utils.frPyObjects(rle, h, w)
        elif isinstance(rle.get("counts"), str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        return mask_utils.decode(rle).astype(bool)


def _score_from_logits(logits: np.ndarray, mask: np.ndarray) -> float:
    """Confidence of a window mask: mean sigmoid over its positive pixels (0 when empty)."""
    if not mask.any():
        return 0.0
    probs = 1.0 / (1.0 + np.exp(-np.clip(logits[mask].astype(np.float64), -60, 60)))
    return float(probs.mean())


def check_images(dataset: InstanceSet, instances: list[Instance], skip_missing: bool) -> list[Instance]:
    """Raise for missing image files (naming the first and the count) unless ``skip_missing``."""
    missing = dataset.missing_images(instances)
    if missing and not skip_missing:
        images = list(dict.fromkeys(i.image_id for i in missing))
        name = dataset.image_name(dataset.coco.imgs[images[0]])
        dirs = ", ".join(str(d) for d in dataset.image_dirs) or "(no --images folder given)"
        raise FileNotFoundError(
            f"{len(images)} image file(s) not found ({len(missing)} instances), first: {name} "
            f"(searched {dirs}); pass --skip-missing to evaluate the rest"
        )
    return missing


def window_outputs(model, image: np.ndarray, windows: list[Window], points=None):
    """``(logits (N, S, S) float32, scores (N,) or None)`` of a window model. Models with
    ``run_windows`` (the :class:`~picosam2.Predictor`) give the quality score too."""
    if points is not None and getattr(model, "takes_points", False):
        return np.asarray(model.predict_windows(image, windows, points=points), dtype=np.float32), None
    run = getattr(model, "run_windows", None)
    if run is not None:
        out = run(image, windows)
        scores = None if out.scores is None else np.asarray(out.scores, dtype=np.float32).reshape(-1)
        return np.asarray(out.logits, dtype=np.float32), scores
    return np.asarray(model.predict_windows(image, windows), dtype=np.float32), None


def _image_groups(dataset: InstanceSet, todo: list[Instance], result: EvalResult, bar):
    """``(image, instances)`` per image; unreadable or wrongly sized images are counted."""
    for _image_id, group in groupby(todo, key=lambda i: i.image_id):
        group = list(group)
        try:
            image = load_dataset_image(group[0].image_path)
        except ImageError:
            image = None
        if image is None or image.shape[:2] != (group[0].height, group[0].width):
            result.skipped["bad_images"] += len(group)  # unreadable, or not the size the json says
            bar.update(len(group))
            continue
        yield image, group


def _score_single(model, image, ready, result: EvalResult, keep_rle: bool, kept_logits: list | None) -> None:
    """One window per instance (both protocols)."""
    height, width = image.shape[:2]
    wins = [r[3] for r in ready]
    points = [r[2] for r in ready] if result.prompt == "point" else None
    logits, scores = window_outputs(model, image, wins, points)
    for k, ((inst, gt, value, win), lg) in enumerate(zip(ready, logits)):
        win_mask = metrics.logits_to_mask(lg)
        full = None
        if result.protocol == "paper":
            value_iou = metrics.iou(win_mask, crop_mask(gt, win, lg.shape[-1]))
        else:
            full = paste_mask(lg, win, (width, height))
            value_iou = metrics.iou(full, gt)
        score = float(scores[k]) if scores is not None else _score_from_logits(lg, win_mask)
        sample = Sample.of(inst, value, win, value_iou, score)
        if keep_rle:
            sample.rle = encode_rle(full if full is not None else paste_mask(lg, win, (width, height)))
            if result.protocol == "paper":
                sample.window_rle = encode_rle(win_mask)
        result.samples.append(sample)
        if kept_logits is not None:
            kept_logits.append(lg.astype(np.float16))


def _refine(model, image, lg, wins, best, scores):
    """Coarse to fine: the chosen candidates' masks looked at again in their box windows; a
    refined mask replaces the chosen one when its predicted IoU is higher. Returns, per click,
    None or ``(logits, window, score)`` of the refined mask that wins."""
    height, width = image.shape[:2]
    boxes = [refine_window(lg[b], wins[b], (width, height)) for b in best]
    todo = [i for i, w in enumerate(boxes) if w is not None]
    out = [None] * len(best)
    if not todo or scores is None:
        return out
    r_logits, r_scores = window_outputs(model, image, [boxes[i] for i in todo])
    for j, i in enumerate(todo):
        if r_scores[j] > scores[best[i]]:
            out[i] = (r_logits[j], boxes[i], float(r_scores[j]))
    return out


def _has_calibration(model) -> bool:
    return getattr(model, "score_calibration", None) is not None


def _score_multiscale(model, image, ready, spec, result: EvalResult, keep_rle: bool, kept_logits, refine=False):
    """Several centred windows per click in one batch; the chosen one is scored."""
    height, width = image.shape[:2]
    sizes = point_scales_for(spec, (width, height))
    wins = [w for (_, _, value, _) in ready for w in point_windows(value[0], value[1], (width, height), sizes)]
    logits, scores = window_outputs(model, image, wins)
    k = len(sizes)
    per_click = logits.reshape(len(ready), k, *logits.shape[1:])
    # a network without a quality head: its score feature is 0 (a calibration fitted so still ranks)
    raw = scores if scores is not None or not _has_calibration(model) else np.zeros(len(wins), np.float32)
    click_scores = None if raw is None else raw.reshape(len(ready), k).copy()
    calibrate = getattr(model, "click_scores", None)
    if click_scores is not None and calibrate is not None:
        for i in range(len(ready)):
            click_scores[i] = calibrate(per_click[i], wins[i * k : (i + 1) * k], (width, height), click_scores[i])
    chosen = [choose_candidate(per_click[i], None if raw is None else click_scores[i])[0] for i in range(len(ready))]
    flat_best = [i * k + b for i, b in enumerate(chosen)]
    # refinement weighs the network's own scores (a box window has no click to calibrate against)
    refined = _refine(model, image, logits, wins, flat_best, scores) if refine else [None] * len(ready)
    for i, (inst, gt, value, _) in enumerate(ready):
        lg, b = per_click[i], chosen[i]
        fulls = [paste_mask(g, w, (width, height)) for g, w in zip(lg, wins[i * k : (i + 1) * k])]
        ious = [metrics.iou(f, gt) for f in fulls]
        if click_scores is not None:
            cand_scores = click_scores[i]
        else:
            cand_scores = [_score_from_logits(g, metrics.logits_to_mask(g)) for g in lg]
        best_logits, best_full = lg[b], fulls[b]
        sample = Sample.of(inst, value, wins[flat_best[i]], ious[b], float(cand_scores[b]))
        if refined[i] is not None:
            best_logits, r_win, r_score = refined[i]
            best_full = paste_mask(best_logits, r_win, (width, height))
            sample = Sample.of(inst, value, r_win, metrics.iou(best_full, gt), r_score)
        sample.candidates = [(int(s), float(v), float(c)) for s, v, c in zip(sizes, ious, cand_scores)]
        sample.chosen_index = b
        if result.keep_features:
            net = scores.reshape(-1, k)[i] if scores is not None else np.zeros(k, np.float32)
            sample.click_features = click_features(lg, wins[i * k : (i + 1) * k], (width, height), net)
        if keep_rle:
            sample.rle = encode_rle(best_full)
        result.samples.append(sample)
        if kept_logits is not None:
            kept_logits.append(best_logits.astype(np.float16))


def evaluate(
    dataset: InstanceSet,
    model,
    protocol: str = "paper",
    prompt: str = "point",
    limit: int | None = None,
    skip_missing: bool = False,
    progress: bool = True,
    keep_rle: bool = False,
    keep_logits: bool = False,
    point_scales=None,
    refine: bool = False,
    keep_features: bool = False,
) -> EvalResult:
    """Run a window model under a protocol. ``model.predict_windows(image, windows)`` gives the
    (N, 96, 96) window logits of an HWC uint8 image (``run_windows`` also the quality scores).
    ``point_scales`` (full protocol, point prompt): ``"auto"`` or window sides for scale-aware
    clicks; None = one 96 px window. ``keep_features`` keeps each click's candidate features on its
    sample. ``progress``: a bar on a terminal (never off one). Returns per-instance IoUs and skip counts."""
    from ..progress import progress_bar

    check_protocol(protocol, prompt)
    spec = parse_point_scales(point_scales)
    if spec is not None and (protocol != "full" or prompt != "point"):
        raise UsageError("point scales apply to the full protocol with point prompts only")
    t0 = time.perf_counter()
    instances = instance_list(dataset, protocol, limit)
    result = EvalResult(
        protocol=protocol, prompt=prompt, requested=len(instances), point_scales=spec, keep_features=keep_features
    )
    missing = check_images(dataset, instances, skip_missing)
    result.skipped["missing_images"] = len(missing)
    kept_logits = [] if keep_logits else None
    bar = progress_bar(total=len(instances), desc=f"eval {protocol}/{prompt}", unit="inst", enabled=progress)
    bar.update(len(missing))
    for image, group in _image_groups(dataset, [i for i in instances if i.image_path is not None], result, bar):
        ready = []  # (instance, gt mask, prompt, window)
        for inst in group:
            prepared = prepare_instance(dataset, inst, protocol, prompt, result.skipped)
            if prepared is not None:
                ready.append((inst, *prepared))
        if ready and spec is not None:
            _score_multiscale(model, image, ready, spec, result, keep_rle, kept_logits, refine)
        elif ready:
            _score_single(model, image, ready, result, keep_rle, kept_logits)
        bar.update(len(group))
    bar.close()
    if keep_logits:
        result.logits = np.stack(kept_logits) if kept_logits else np.zeros((0, MODEL_SIZE, MODEL_SIZE), np.float16)
    result.elapsed_s = time.perf_counter() - t0
    for key in SKIP_KEYS:
        result.skipped.setdefault(key, 0)
    return result
